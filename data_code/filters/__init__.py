"""The filter stage: documents -> kept documents (cleaned, PII redacted) + a rejection row per dropped document.

from data_code.filters import FilterConfig, filter_documents
stats = filter_documents("documents.parquet", out_dir, FilterConfig(), quality_model_path="quality/model.bin")

Each filter is a small module answering keep or (False, reason): policy (opt-out, licences), blocklist, language
(fastText lid.176), gopher (quality + repetition), c4 (line cleaning), fineweb, quality (DCLM-style fastText
classifier, trained by `train_quality_classifier`) and pii (redaction). base.FilterPipeline counts and routes.
"""

from data_code.filters.base import DocumentFilter, FilterPipeline
from data_code.filters.config import FILTER_NAMES, FilterConfig
from data_code.filters.pii import find_pii, redact_pii
from data_code.filters.quality_classifier import (
    QualityClassifierConfig,
    default_training_examples,
    load_examples,
    train_quality_classifier,
)
from data_code.filters.stage import OUTPUT_FILES, FilterStats, build_filters, filter_documents

__all__ = [
    "FILTER_NAMES",
    "OUTPUT_FILES",
    "DocumentFilter",
    "FilterConfig",
    "FilterPipeline",
    "FilterStats",
    "QualityClassifierConfig",
    "build_filters",
    "default_training_examples",
    "filter_documents",
    "find_pii",
    "load_examples",
    "redact_pii",
    "train_quality_classifier",
]
