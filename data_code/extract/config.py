"""Configuration and statistics of the extract stage."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

EXTRACTORS = ("trafilatura", "resiliparse")
ENGINES = ("local", "spark")  # where extraction runs: this machine's process pool, or Spark (one task per WARC)
# The two standard WARC revisit profiles (http://netpreserve.org/warc/1.1/revisit/<name>), by their last segment.
REVISIT_PROFILES = ("identical-payload-digest", "server-not-modified")
_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields


def _cpu_count() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ExtractConfig:
    """How crawl WARC records become Documents. Invalid values raise ValueError naming the field."""

    extractor: str = "resiliparse"  # main-content extractor: resiliparse (fast, the default) | trafilatura (precise)
    min_text_chars: int = 200  # main text shorter than this (in characters) is rejected as too_short
    max_replacement_char_ratio: float = 0.01  # share of U+FFFD in the decoded page above which it is undecodable
    include_tables: bool = True  # keep the text of <table> elements in the main content
    # Speed-only fields: they never change the output, so they are left out of the artifact version.
    workers: int = field(default_factory=_cpu_count, metadata=_SPEED_ONLY)  # extraction processes; 1 = in-process
    batch_records: int = field(default=64, metadata=_SPEED_ONLY)  # records per worker task (2 tasks per worker)
    # Both engines give the same output, byte for byte (a test proves it), so the engine is not in the version.
    engine: str = field(default="local", metadata=_SPEED_ONLY)  # local (process pool) | spark (a task per WARC file)

    def __post_init__(self):
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {EXTRACTORS}, got {self.extractor!r}")
        if self.engine not in ENGINES:
            moved = (
                f" (the main-content extractor is now `extractor: {self.engine}`)" if self.engine in EXTRACTORS else ""
            )
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}{moved}")
        if self.min_text_chars < 0:
            raise ValueError(f"min_text_chars must be >= 0, got {self.min_text_chars}")
        if not 0.0 <= self.max_replacement_char_ratio <= 1.0:
            raise ValueError(
                f"max_replacement_char_ratio must be within [0, 1], got {self.max_replacement_char_ratio}"
            )
        if not isinstance(self.include_tables, bool):
            raise ValueError(f"include_tables must be a bool, got {self.include_tables!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.batch_records < 1:
            raise ValueError(f"batch_records must be >= 1, got {self.batch_records}")


@dataclass
class ExtractStats:
    """What one extraction run read, kept and rejected."""

    warc_files: int = 0
    records_read: int = 0  # HTTP response records read; each became one document or one rejection
    documents: int = 0
    rejected: int = 0  # rejection rows, including one per corrupt WARC file
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    # Revisit records (WARC-Type: revisit): pages unchanged since an earlier capture. They make no row and are
    # no rejection (nothing is lost: the page's text is that of the capture they refer to).
    revisits: int = 0
    revisits_by_profile: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REVISIT_PROFILES, 0))
    chars: int = 0  # characters of main text over all documents
    languages: dict[str, int] = field(default_factory=dict)  # declared language -> documents ("und": none)
    domains: dict[str, int] = field(default_factory=dict)  # domain -> documents
    extractor: str = ""
    engine: str = ""  # local | spark
    elapsed_s: float = 0.0

    def as_stats(self) -> dict:
        """Plain dict of every field (for a manifest's stats and MLflow metrics)."""
        return asdict(self)
