"""Configuration of the filter stage: which filters run, in which order, with which thresholds.

Threshold defaults equal the filters' own keyword defaults (the published values; a test keeps them in sync).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from data_code.filters.gopher import DUP_NGRAM_CHAR_FRACS, TOP_NGRAM_CHAR_FRACS
from data_code.filters.pii import PII_TYPES

FILTER_NAMES = (
    "optout",
    "policy",
    "blocklist",
    "language",
    "gopher_quality",
    "gopher_repetition",
    "c4",
    "fineweb",
    "quality",
    "pii",
)
# Thresholds a language's rule set may switch off (`off` in a .rules file; FineWeb-2 does not use them everywhere).
OPTIONAL_THRESHOLDS = frozenset(
    (
        "gopher_dup_line_frac",
        "gopher_dup_para_frac",
        "gopher_dup_line_char_frac",
        "gopher_dup_para_char_frac",
        "fineweb_line_punct_ratio",
        "fineweb_short_line_ratio",
    )
)
UNRULED_POLICIES = ("drop", "keep")
ROUTED_FILTERS = ("gopher_quality", "gopher_repetition", "c4", "fineweb", "quality")  # judged per language
_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields


def _cpu_count() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class FilterConfig:
    """How documents are filtered. Invalid values raise ValueError naming the field."""

    enabled: tuple[str, ...] = FILTER_NAMES  # filters to run, in this order (a 'non_empty' check always runs first)
    max_text_chars: int = 100_000  # longer texts are cut to this many characters before filtering (and counted)
    policy_path: str | None = None  # YAML/JSON opt-out + licence policy; None: drop `noai` and robots-disallowed
    blocklist_path: str | None = None  # domains / URL prefixes, one per line; None: block nothing
    # Owners' opt-out requests (blocklist format). The asset versions the file's content, not its path.
    optout_path: str | None = field(default=None, metadata={"versioned": False})
    languages: tuple[str, ...] = ("en",)  # ISO 639 codes (lid.176 labels) to keep
    language_threshold: float = 0.65  # minimum probability of the top language
    # Rule sets of languages beyond English (data_code.filters.rules): a directory of <lang>.rules and
    # <lang>.stopwords files that adds to or replaces the shipped ones. None: the shipped rule sets only.
    rules_dir: str | None = None
    # A kept language without a rule set: "drop" it (reason language_without_rules:<lang>), or "keep" it unjudged
    # by the quality rules (counted as unruled:<lang>). English rules never judge another language.
    unruled_languages: str = "drop"
    gopher_min_words: int = 50
    gopher_max_words: int = 100_000
    gopher_min_mean_word_length: float = 3  # characters
    gopher_max_mean_word_length: float = 10
    gopher_max_symbol_word_ratio: float = 0.1  # '#' and '...' per word
    gopher_max_bullet_lines_ratio: float = 0.9
    gopher_max_ellipsis_lines_ratio: float = 0.3
    gopher_min_alpha_words_ratio: float = 0.8
    gopher_min_stop_words: int = 2
    gopher_dup_line_frac: float | None = 0.3
    gopher_dup_para_frac: float | None = 0.3
    gopher_dup_line_char_frac: float | None = 0.2
    gopher_dup_para_char_frac: float | None = 0.2
    gopher_top_ngram_char_fracs: tuple[tuple[int, float], ...] = TOP_NGRAM_CHAR_FRACS
    gopher_dup_ngram_char_fracs: tuple[tuple[int, float], ...] = DUP_NGRAM_CHAR_FRACS
    c4_min_sentences: int = 5  # sentences left after C4 line cleaning
    c4_min_words_per_line: int = 3
    fineweb_line_punct_ratio: float | None = 0.12
    fineweb_short_line_ratio: float | None = 0.67
    fineweb_short_line_chars: int = 30
    fineweb_char_duplicates_ratio: float = 0.01
    fineweb_list_ratio: float = 0.3  # newlines per word
    quality_threshold: float = 0.5  # minimum P(hq) from the quality classifier
    pii_types: tuple[str, ...] = PII_TYPES  # PII to redact: secret, email, credit_card, ip_address, phone
    rejected_samples_per_reason: int = 20  # rejected documents kept per reason for review
    # Speed-only fields: they never change the output, so they are left out of the artifact version.
    workers: int = field(default_factory=_cpu_count, metadata=_SPEED_ONLY)  # filter processes; 1 = in-process
    batch_documents: int = field(default=256, metadata=_SPEED_ONLY)  # documents per worker task
    # Both engines give the same output, byte for byte (a test proves it), so the engine is not in the version.
    engine: str = field(default="local", metadata=_SPEED_ONLY)  # local (process pool) | spark (mapInArrow)

    def __post_init__(self):
        for name in (
            "enabled",
            "languages",
            "pii_types",
            "gopher_top_ngram_char_fracs",
            "gopher_dup_ngram_char_fracs",
        ):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))  # lists from YAML / Dagster config
        if self.unruled_languages not in UNRULED_POLICIES:
            raise ValueError(f"unruled_languages must be 'drop' or 'keep', got {self.unruled_languages!r}")
        if self.engine not in ("local", "spark"):
            raise ValueError(f"engine must be 'local' or 'spark', got {self.engine!r}")
        unknown = [name for name in self.enabled if name not in FILTER_NAMES]
        if unknown or len(set(self.enabled)) != len(self.enabled):
            raise ValueError(f"enabled must list distinct filters from {FILTER_NAMES}, got {self.enabled}")
        if "language" in self.enabled:
            routed = [name for name in self.enabled[: self.enabled.index("language")] if name in ROUTED_FILTERS]
            if routed:
                raise ValueError(f"enabled must run 'language' before {routed}: they judge by the language it finds")
        for name in ("max_text_chars", "workers", "batch_documents", "gopher_min_words", "gopher_max_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "rejected_samples_per_reason",
            "c4_min_sentences",
            "c4_min_words_per_line",
            "gopher_min_stop_words",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for each in fields(self):
            value = getattr(self, each.name)
            if value is None and each.name in OPTIONAL_THRESHOLDS:
                continue  # the check is off
            if each.type.startswith("float") and not 0.0 <= value <= (
                float("inf") if "word_length" in each.name else 1.0
            ):
                raise ValueError(f"{each.name} must be within [0, 1] (a ratio or probability), got {value}")
        if self.gopher_min_words > self.gopher_max_words:
            raise ValueError(f"gopher_min_words ({self.gopher_min_words}) must be <= gopher_max_words")
        for name in ("gopher_top_ngram_char_fracs", "gopher_dup_ngram_char_fracs"):
            for pair in getattr(self, name):
                if len(pair) != 2 or int(pair[0]) < 1 or not 0.0 <= float(pair[1]) <= 1.0:
                    raise ValueError(f"{name} must hold (n >= 1, fraction in [0, 1]) pairs, got {pair!r}")
        if not self.languages:
            raise ValueError("languages must name at least one language")
        if unknown := sorted(set(self.pii_types) - set(PII_TYPES)):
            raise ValueError(f"pii_types must be among {PII_TYPES}, got unknown {unknown}")


def _as_tuple(value):
    if isinstance(value, str):
        return (value,)
    return tuple(tuple(item) if isinstance(item, list) else item for item in value)
