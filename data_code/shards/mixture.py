"""Deterministic per-document decisions: the train/validation split and the mixture's up/down-sampling.

Both hash the doc_id with the seed, so a document's fate depends on nothing else: not on batch size, file order
or the other documents (except through its source's sampling rate).

Mixture (train only; validation keeps the corpus as it is, each document once): with n_i train documents from
source i and N in all, the base share q_i is mixture_weights[i] normalized (or n_i / N without weights); the
target share is p_i = q_i^(1/T) / sum_j q_j^(1/T); each document of source i is then written r_i = p_i * N / n_i
times in expectation: floor(r_i) copies, plus one more when its hash falls below the fractional part. The default
(no weights, T = 1) gives r_i = 1: every document once.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

from data_code.document import TRAIN, VALIDATION
from data_code.shards.config import ShardConfig
from data_code.tokenizer.corpus import iter_batches


def unit_hash(purpose: str, seed: int, doc_id: str) -> float:
    """A uniform number in [0, 1) determined by (purpose, seed, doc_id)."""
    digest = hashlib.blake2b(f"{purpose}\x00{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_of(doc_id: str, config: ShardConfig) -> str:
    """'validation' when the document's split hash falls below validation_fraction, else 'train'."""
    return VALIDATION if unit_hash("split", config.seed, doc_id) < config.validation_fraction else TRAIN


def copies_of(doc_id: str, rate: float, seed: int) -> int:
    """How many times a train document is written, for its source's sampling rate."""
    whole = math.floor(rate)
    return whole + (1 if unit_hash("mixture", seed, doc_id) < rate - whole else 0)


def source_counts(documents_path: str | Path, config: ShardConfig) -> Counter:
    """Train documents per source (one streaming pass over doc_id and the mixture field only)."""
    counts: Counter = Counter()
    columns = ["doc_id", config.mixture_field]
    for batch in iter_batches(documents_path, columns, config.batch_documents):
        for doc_id, source in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            if split_of(doc_id, config) == TRAIN:
                counts[str(source)] += 1
    return counts


def sampling_rates(counts: Counter, config: ShardConfig) -> dict[str, float]:
    """Expected copies per train document of each source (see the module docstring)."""
    total = sum(counts.values())
    if total == 0:
        return {}
    if config.mixture_weights is None:
        base = {source: n / total for source, n in counts.items()}
    else:
        base = {source: float(config.mixture_weights.get(source, 0.0)) for source in counts}
    tempered = {source: q ** (1.0 / config.temperature) if q > 0 else 0.0 for source, q in base.items()}
    norm = sum(tempered.values())
    if norm <= 0:
        raise ValueError(f"mixture_weights name none of the corpus's sources {sorted(counts)[:10]}")
    return {source: (tempered[source] / norm) * total / counts[source] for source in counts}


def mixture_table(counts: Counter, rates: dict[str, float]) -> list[dict]:
    """Per source: train documents before, sampling rate, expected documents after (for stats and the UI)."""
    return [
        {"source": source, "documents": n, "rate": round(rates[source], 6), "expected": round(n * rates[source], 1)}
        for source, n in sorted(counts.items(), key=lambda item: -item[1])
    ]
