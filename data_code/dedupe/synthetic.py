"""Generated corpora with planted near-duplicates at measured Jaccard similarities (for tests and bench/dedupe.py).

Base documents are sentences of pseudo-words drawn from a Zipfian vocabulary (frequent words short, as in English).
A variant of a base document is made by a fixed random sequence of word replacements and insertions; the number
of edits applied is searched so that the true Jaccard of 5-gram shingle sets lands near a target, and the achieved
Jaccard is measured and recorded, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_code.dedupe.core import jaccard, normalize_text, shingle_hashes
from data_code.document import DOCUMENT_SCHEMA, domain_of, make_doc_id

DEFAULT_TARGETS = (0.5, 0.65, 0.75, 0.85, 0.9, 0.95)  # Jaccard targets of the variants in each planted group
_LETTERS = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class SyntheticCorpus:
    """Records in DOCUMENT_SCHEMA order plus what was planted: groups of row indices and measured similarities."""

    records: list[dict]
    groups: list[list[int]] = field(default_factory=list)  # row indices: the base document first, then variants
    similarity_to_base: dict[int, float] = field(default_factory=dict)  # variant row -> achieved true Jaccard

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.records, schema=DOCUMENT_SCHEMA)

    def write(self, path) -> None:
        pq.write_table(self.table(), path)


class _Vocabulary:
    """Pseudo-words whose frequency follows Zipf's law (exponent 1.1) and whose length grows with rank."""

    def __init__(self, rng: np.random.Generator, size: int = 30_000):
        ranks = np.arange(1, size + 1)
        lengths = np.clip(np.round(1.5 + 1.1 * np.log2(ranks) ** 0.8 + rng.normal(0, 1, size)), 1, 14).astype(int)
        letter_p = np.linspace(2.0, 0.2, len(_LETTERS))  # letters, like words, are not equally frequent
        letter_p /= letter_p.sum()
        self.words = list(dict.fromkeys("".join(rng.choice(_LETTERS, n, p=letter_p)) for n in lengths))
        weights = 1.0 / np.arange(1, len(self.words) + 1) ** 1.1
        self.probabilities = weights / weights.sum()

    def draw(self, rng: np.random.Generator, count: int) -> list[str]:
        return [self.words[i] for i in rng.choice(len(self.words), count, p=self.probabilities)]


def _words_for_bytes(vocabulary: _Vocabulary, rng: np.random.Generator, doc_bytes: int) -> list[str]:
    words = vocabulary.draw(rng, max(8, doc_bytes // 4))
    lengths = np.cumsum([len(w) + 1 for w in words])
    return words[: max(1, int(np.searchsorted(lengths, doc_bytes)))]


def _render(words: list[str], rng: np.random.Generator) -> str:
    """Sentences: capitalized first word, an occasional comma, a full stop every 8-20 words."""
    out, until_stop, capital = [], int(rng.integers(8, 21)), True
    for i, word in enumerate(words):
        word, capital = (word.capitalize() if capital else word), False
        until_stop -= 1
        if until_stop == 0 or i == len(words) - 1:
            word, capital = word + ".", True
            until_stop = int(rng.integers(8, 21))
        elif rng.random() < 0.06:
            word += ","
        out.append(word)
    return " ".join(out)


def _edited(words: list[str], edits: list[tuple[str, int, str]], count: int) -> list[str]:
    result = list(words)
    for kind, position, word in edits[:count]:
        position %= len(result) + (kind == "insert")
        if kind == "insert":
            result.insert(position, word)
        else:
            result[position] = word
    return result


def _shingles(words: list[str], ngram: int) -> np.ndarray:
    return shingle_hashes(normalize_text(" ".join(words)), ngram)


def make_variant(words, target, vocabulary, rng, ngram=5) -> tuple[list[str], float]:
    """Words of a variant of `words` whose shingle Jaccard to it is as close to `target` as edits allow; returns
    (variant words, achieved Jaccard)."""
    base = _shingles(words, ngram)
    replacements = vocabulary.draw(rng, 4 * len(words))
    edits = [
        ("insert" if rng.random() < 0.3 else "replace", int(rng.integers(0, 1 << 30)), replacements[i])
        for i in range(len(replacements))
    ]
    low, high = 0, len(edits)  # Jaccard falls (almost monotonically) with the number of edits: bisect it
    while low < high:
        middle = (low + high) // 2
        if jaccard(base, _shingles(_edited(words, edits, middle), ngram)) > target:
            low = middle + 1
        else:
            high = middle
    candidates = [c for c in (low - 1, low) if c >= 0]
    scored = [(abs(jaccard(base, _shingles(_edited(words, edits, c), ngram)) - target), c) for c in candidates]
    variant = _edited(words, edits, min(scored)[1])
    return variant, jaccard(base, _shingles(variant, ngram))


def _record(row: int, text: str, rng: np.random.Generator, domains: int) -> dict:
    url = f"https://site{row % domains}.example/page/{row}"
    quality = None if rng.random() < 0.1 else float(np.float32(rng.random()))
    return {
        "doc_id": make_doc_id(url, f"sha1:{row}"),
        "url": url,
        "domain": domain_of(url),
        "fetch_time": _EPOCH + timedelta(seconds=int(rng.integers(0, 86_400 * 30))),
        "source": "crawl",
        "text": text,
        "quality_score": quality,
    }


def generate_corpus(
    documents: int,
    *,
    doc_bytes: int = 1000,
    groups: int | None = None,
    targets: tuple[float, ...] = DEFAULT_TARGETS,
    ngram: int = 5,
    domains: int = 20,
    seed: int = 0,
) -> SyntheticCorpus:
    """`documents` records of ~doc_bytes characters; `groups` planted groups (default: a tenth of the documents'
    worth) of a base document plus one variant per target; the rest unique. Rows are shuffled."""
    rng = np.random.default_rng(seed)
    vocabulary = _Vocabulary(rng)
    group_size = 1 + len(targets)
    groups = documents // (10 * group_size) if groups is None else groups
    if groups * group_size > documents:
        raise ValueError(f"groups * (1 + len(targets)) must be <= documents, got {groups * group_size} > {documents}")
    texts, planted, similarity = [], [], {}
    for _ in range(groups):
        words = _words_for_bytes(vocabulary, rng, doc_bytes)
        members = [len(texts)]
        texts.append(_render(words, rng))
        for target in targets:
            variant, achieved = make_variant(words, target, vocabulary, rng, ngram)
            similarity[len(texts)] = achieved
            members.append(len(texts))
            texts.append(_render(variant, rng))
        planted.append(members)
    while len(texts) < documents:
        texts.append(_render(_words_for_bytes(vocabulary, rng, doc_bytes), rng))
    order = rng.permutation(len(texts))  # row order -> original index
    where = np.argsort(order)  # original index -> row
    records = [_record(row, texts[original], rng, domains) for row, original in enumerate(order)]
    return SyntheticCorpus(
        records=records,
        groups=[[int(where[i]) for i in members] for members in planted],
        similarity_to_base={int(where[i]): s for i, s in similarity.items()},
    )


def true_pairs(corpus: SyntheticCorpus, threshold: float, ngram: int = 5) -> set[tuple[int, int]]:
    """Ground truth: pairs (row a < row b) within a planted group whose true shingle Jaccard is >= threshold."""
    pairs = set()
    for members in corpus.groups:
        sets = {row: shingle_hashes(normalize_text(corpus.records[row]["text"]), ngram) for row in members}
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if jaccard(sets[a], sets[b]) >= threshold:
                    pairs.add((min(a, b), max(a, b)))
    return pairs
