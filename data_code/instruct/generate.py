"""Instruction and preference examples derived offline from the filtered corpus (no model, no download).

For each document (in a seeded order) up to two instruction tasks are made:
    title:     "Write the passage titled '<title>'."    -> the document's opening text
    continue:  "Continue: <first sentence>"             -> the text that follows that sentence
Each answer is trimmed to max_answer_chars at a sentence (else word) boundary; every trim is counted.
Each instruction also yields one preference pair: chosen = the true answer, rejected = one of
    other_document:      the answer of the same task for another document (its doc_id joins source_doc_ids)
    shuffled_sentences:  the true answer with its sentences in another order
    truncated:           the true answer cut to its first third (at a word boundary)
Every example carries a stable `example_id`, `source_doc_ids` (lineage back to the documents), `task` and
`split` ("train" | "validation"); a pair has its instruction's split, so a held-out prompt is never trained on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass

import fsspec
import pyarrow.parquet as pq

from data_code.corpus import is_corpus, read_documents

TASKS = ("title", "continue")
REJECTION_KINDS = ("other_document", "shuffled_sentences", "truncated")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TITLE_SUFFIX = re.compile(r"\s+[—|-]\s+[^—|]*$")  # " — Python 3.11 documentation": the site, not the page


@dataclass(frozen=True)
class GeneratorConfig:
    """How examples are derived from documents. Invalid values raise ValueError naming the field."""

    max_examples: int = 1000  # instruction examples at most (each also yields one preference pair)
    max_answer_chars: int = 600  # answers longer than this are trimmed at a sentence or word boundary (counted)
    min_answer_chars: int = 40  # a task whose answer would be shorter is skipped (counted by reason)
    max_prompt_chars: int = 300  # the sentence quoted by a "continue" prompt is cut to this many characters
    validation_fraction: float = 0.1  # share of examples flagged split="validation" (by a seeded hash of example_id)
    seed: int = 0  # document order, rejection choice and held-out assignment
    tasks: tuple[str, ...] = TASKS  # which instruction tasks to make
    rejection_kinds: tuple[str, ...] = REJECTION_KINDS  # how a rejected answer may be made
    system_prompt: str = ""  # when set, every conversation opens with this system turn

    def __post_init__(self):
        for name in ("max_examples", "max_answer_chars", "min_answer_chars", "max_prompt_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.min_answer_chars > self.max_answer_chars:
            raise ValueError(f"min_answer_chars ({self.min_answer_chars}) must be <= max_answer_chars")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        for name, allowed in (("tasks", TASKS), ("rejection_kinds", REJECTION_KINDS)):
            values = getattr(self, name)
            if not values or any(value not in allowed for value in values):
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values!r}")


def generate_examples(documents_parquet: str, config: GeneratorConfig) -> tuple[list[dict], list[dict], dict]:
    """(instructions, preferences, stats) derived from the Document Parquet at `documents_parquet`.

    Stats: documents, documents_used, instructions, preferences, validation_instructions, answers_trimmed,
    skipped (task skips by reason), tasks and rejection_kinds (counts). Same file and config: same output.
    """
    documents = _read_documents(documents_parquet)
    rng = random.Random(config.seed)
    rng.shuffle(documents)
    stats = {"answers_trimmed": 0, "skipped": Counter()}
    instructions = []
    for document in documents:
        for task in config.tasks:
            if len(instructions) < config.max_examples:
                example = _instruction(document, task, config, stats)
                if example:
                    instructions.append(example)
    preferences = [_preference(example, instructions, config, rng) for example in instructions]
    return instructions, preferences, _summary(documents, instructions, preferences, stats)


def _read_documents(uri: str) -> list[dict]:
    """doc_id, title and text of every document, sorted by doc_id so file order never matters. `uri` is a Document
    Parquet file or a corpus directory (data_code.corpus: its days' documents minus its exclusions)."""
    if is_corpus(uri):
        rows = read_documents(uri, ["doc_id", "title", "text"]).to_pylist()
        return sorted(rows, key=lambda row: row["doc_id"])
    filesystem, path = fsspec.core.url_to_fs(uri)
    if not filesystem.isfile(path):
        raise FileNotFoundError(f"documents file not found: {uri}")
    with filesystem.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        missing = [name for name in ("doc_id", "text") if name not in parquet.schema_arrow.names]
        if missing:
            raise ValueError(f"{uri} has no column(s) {missing}; it has {parquet.schema_arrow.names}")
        columns = [name for name in ("doc_id", "title", "text") if name in parquet.schema_arrow.names]
        rows = parquet.read(columns=columns).to_pylist()
    return sorted(rows, key=lambda row: row["doc_id"])


def _instruction(document: dict, task: str, config: GeneratorConfig, stats: dict) -> dict | None:
    """One chat example of `task` for `document`, or None (the reason counted in stats["skipped"])."""
    text = (document.get("text") or "").strip()
    if task == "title":
        title = _TITLE_SUFFIX.sub("", (document.get("title") or "").strip())
        prompt, answer = f"Write the passage titled '{title}'.", text
        if not title:
            stats["skipped"]["title:no_title"] += 1
            return None
    else:
        first, _, rest = _split_first_sentence(text)
        prompt, answer = f"Continue: {first[: config.max_prompt_chars]}", rest
        if not first or not rest:
            stats["skipped"]["continue:single_sentence"] += 1
            return None
    answer, trimmed = trim_text(answer, config.max_answer_chars)
    if len(answer) < config.min_answer_chars:
        stats["skipped"][f"{task}:answer_too_short"] += 1
        return None
    stats["answers_trimmed"] += trimmed
    system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    messages = [*system, {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    example_id = stable_id(task, document["doc_id"], prompt, answer)
    return {
        "example_id": example_id,
        "source_doc_ids": [document["doc_id"]],
        "task": task,
        "split": _split(example_id, config),
        "messages": messages,
    }


def _split_first_sentence(text: str) -> tuple[str, str, str]:
    """(first sentence, separator, the rest); the first line counts as a sentence when it has no full stop."""
    line_end = text.find("\n")
    parts = _SENTENCE_END.split(text, maxsplit=1)
    first = parts[0] if len(parts) == 2 else text
    if 0 <= line_end < len(first):
        first = text[:line_end]
    return first.strip(), " ", text[len(first) :].strip()


def trim_text(text: str, max_chars: int) -> tuple[str, bool]:
    """(text cut to at most max_chars at the last sentence end, else the last space, else hard; was it cut)."""
    if len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    sentence_end = max(head.rfind(". "), head.rfind(".\n"), head.rfind("? "), head.rfind("! "))
    if sentence_end >= max_chars // 2:
        return head[: sentence_end + 1], True
    space = head.rfind(" ")
    return (head[:space] if space >= max_chars // 2 else head).rstrip(), True


def stable_id(*parts: str) -> str:
    """16 hex digits of sha256 over the parts: the same content always gets the same id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _split(example_id: str, config: GeneratorConfig) -> str:
    """'validation' for a seeded-hash share of validation_fraction of ids, else 'train' (independent of order)."""
    draw = int(hashlib.sha256(f"{config.seed}:{example_id}".encode()).hexdigest()[:15], 16) / 16**15
    return "validation" if draw < config.validation_fraction else "train"


def _preference(example: dict, instructions: list[dict], config: GeneratorConfig, rng: random.Random) -> dict:
    """The preference pair of one instruction: its answer chosen, a corrupted or mismatched answer rejected."""
    chosen = example["messages"][-1]["content"]
    kinds = list(config.rejection_kinds)
    rng.shuffle(kinds)
    kinds += [kind for kind in REJECTION_KINDS if kind not in kinds]  # fallbacks when the chosen kinds cannot differ
    for kind in kinds:
        rejected, extra_doc = _rejected(kind, example, instructions, rng)
        if rejected and rejected.strip() != chosen.strip():
            break
    else:
        raise AssertionError(f"no rejected answer differs from the chosen one for {example['example_id']}")
    doc_ids = example["source_doc_ids"] + ([extra_doc] if extra_doc else [])
    return {
        "example_id": stable_id(example["example_id"], kind, rejected),
        "source_doc_ids": doc_ids,
        "instruction_id": example["example_id"],
        "task": example["task"],
        "split": example["split"],
        "rejection_kind": kind,
        "prompt": example["messages"][:-1],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def _rejected(kind: str, example: dict, instructions: list[dict], rng: random.Random) -> tuple[str, str | None]:
    """(rejected answer, the other document's id or None); an empty answer when `kind` cannot apply."""
    answer = example["messages"][-1]["content"]
    if kind == "other_document":
        doc_id = example["source_doc_ids"][0]
        others = [other for other in instructions if other["source_doc_ids"][0] != doc_id]
        if not others:
            return "", None
        other = rng.choice(others)
        return other["messages"][-1]["content"], other["source_doc_ids"][0]
    if kind == "shuffled_sentences":
        sentences = _SENTENCE_END.split(answer)
        if len(set(sentences)) < 2:
            return "", None
        shuffled = sentences[:]
        while shuffled == sentences:
            rng.shuffle(shuffled)
        return " ".join(shuffled), None
    return trim_text(answer, max(1, len(answer) // 3))[0], None


def _summary(documents: list[dict], instructions: list[dict], preferences: list[dict], stats: dict) -> dict:
    return {
        "documents": len(documents),
        "documents_used": len({example["source_doc_ids"][0] for example in instructions}),
        "instructions": len(instructions),
        "preferences": len(preferences),
        "validation_instructions": sum(example["split"] == "validation" for example in instructions),
        "answers_trimmed": stats["answers_trimmed"],
        "skipped": dict(sorted(stats["skipped"].items())),
        "tasks": dict(Counter(example["task"] for example in instructions)),
        "rejection_kinds": dict(Counter(pair["rejection_kind"] for pair in preferences)),
    }
