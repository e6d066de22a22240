"""Configuration of the dedupe stage, and the memory it is predicted to need."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

ENGINES = ("local", "spark")
HISTORY_ALL, HISTORY_NONE = "all", "none"
_LAST_DAYS = re.compile(r"^last_(\d+)_days?$")
_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields


def _cpu_count() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class DedupeConfig:
    """How documents are deduplicated (exact, then MinHash LSH). Invalid values raise ValueError naming the field."""

    # Both engines give the same answer (a test proves it), so the engine does not change the artifact version.
    engine: str = field(default="local", metadata=_SPEED_ONLY)  # local (process pool) | spark (PySpark)
    ngram: int = 5  # words per shingle
    num_perm: int = 112  # MinHash permutations (signature width)
    bands: int = 14  # LSH bands; two documents are candidates when any band matches
    rows: int = 8  # signature values per band; bands * rows must equal num_perm
    threshold: float = 0.8  # Jaccard similarity of shingle sets at which documents are near-duplicates
    verify_candidates: bool = True  # drop candidate pairs whose true Jaccard is below threshold
    seed: int = 1  # seed of the MinHash permutations and of the calibration sample
    calibration_sample: int = 2000  # documents sampled for the calibration report (all their pairs are scored)
    max_text_chars: int = 1_000_000  # longer documents are hashed on their first max_text_chars characters
    # Which earlier days a day is deduplicated against: all (the nightly default: nothing kept before comes back) |
    # none (per-day dedupe, as FineWeb does for independent Common Crawl dumps) | last_N_days.
    history: str = "all"
    # Speed-only fields: they never change the output, so they are left out of the artifact version.
    workers: int = field(default_factory=_cpu_count, metadata=_SPEED_ONLY)  # hashing processes; 1 = in-process
    batch_size: int = field(default=2048, metadata=_SPEED_ONLY)  # documents per Arrow record batch / worker task
    spark_master: str = field(default="local[*]", metadata=_SPEED_ONLY)  # Spark master URL when engine=spark

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for name in ("ngram", "num_perm", "bands", "rows", "max_text_chars", "workers", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.bands * self.rows != self.num_perm:
            raise ValueError(f"bands * rows must equal num_perm, got {self.bands} * {self.rows} != {self.num_perm}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be within (0, 1], got {self.threshold}")
        if not isinstance(self.verify_candidates, bool):
            raise ValueError(f"verify_candidates must be a bool, got {self.verify_candidates!r}")
        if self.calibration_sample < 0:
            raise ValueError(f"calibration_sample must be >= 0, got {self.calibration_sample}")
        check_history_setting(self.history)
        if not self.spark_master:
            raise ValueError("spark_master must not be empty")


def check_history_setting(history: str) -> None:
    """ValueError unless `history` is all | none | last_N_days (N >= 1)."""
    match = _LAST_DAYS.match(history) if isinstance(history, str) else None
    if history not in (HISTORY_ALL, HISTORY_NONE) and not (match and int(match.group(1)) >= 1):
        raise ValueError(f"history must be 'all', 'none' or 'last_N_days' (N >= 1), got {history!r}")


def history_window(history: str) -> int | None:
    """Days of history a setting keeps: None for all, 0 for none, N for last_N_days."""
    if history == HISTORY_ALL:
        return None
    return 0 if history == HISTORY_NONE else int(_LAST_DAYS.match(history).group(1))


# Bytes held per document for the whole run by the local engine: band keys (8 per band), exact key (16), quality
# (4), fetch time (8), word count (4), doc_id in Arrow (~24 + 4 offset), union-find parent (8) and order (8).
PER_DOCUMENT_BYTES = 76
# Working bytes per text byte while a batch is hashed: the Arrow text as read (1) and as sent to a worker (1), and
# a non-ASCII document's Unicode-folded copy (~2 in UTF-8). The one-pass kernel (core.hash_arrow) stores neither
# the normalized text nor the shingles of the batch.
WORK_BYTES_PER_TEXT_BYTE = 4
# Kernel scratch per byte of the longest document of a batch: per word (>= 2 bytes with its separator) its hash
# state and length (2 x 8 bytes) and its shingle folded to 32 bits (4 bytes).
SCRATCH_BYTES_PER_TEXT_BYTE = 10


def predict_peak_memory_bytes(documents: int, mean_text_bytes: float, config: DedupeConfig) -> int:
    """Peak memory of the local engine, stated before work begins.

    peak = documents * (PER_DOCUMENT_BYTES + 8 * bands)                     resident per-document state
         + in_flight * batch_size * (WORK * min(mean_text_bytes, 4 * max_text_chars) + 4 * num_perm)
                                                                            batches being hashed (texts + signatures)
         + (WORK + SCRATCH) * 4 * max_text_chars                            one maximal (truncated) document
    where in_flight = min(2 * workers + 1, number of batches) (the pool keeps two tasks per worker queued, plus
    the batch being read) and a batch holds min(batch_size, documents) documents.
    Not included (known only after LSH, reported as verification_store_bytes): 8 bytes per shingle of every
    document in a candidate pair, held while pairs are verified.
    """
    # A corpus smaller than the pipeline never fills it: count only the batches it has, each no larger than it.
    batch_documents = min(config.batch_size, documents)
    in_flight = min(2 * config.workers + 1, -(-documents // config.batch_size))
    text_bytes = min(mean_text_bytes, 4 * config.max_text_chars)  # UTF-8 takes at most 4 bytes per character
    resident = documents * (PER_DOCUMENT_BYTES + 8 * config.bands)
    batches = in_flight * batch_documents * (WORK_BYTES_PER_TEXT_BYTE * text_bytes + 4 * config.num_perm)
    longest = (WORK_BYTES_PER_TEXT_BYTE + SCRATCH_BYTES_PER_TEXT_BYTE) * 4 * config.max_text_chars
    return int(resident + batches + longest)
