"""FilterConfig: defaults equal the filters' published defaults; bad values are named; speed knobs unversioned."""

from __future__ import annotations

import inspect

import pytest

from data_code.filters.c4 import C4QualityFilter
from data_code.filters.config import FILTER_NAMES, FilterConfig
from data_code.filters.fineweb import FineWebQualityFilter
from data_code.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from data_code.filters.language import LanguageFilter
from data_code.filters.pii import PIIRedactionFilter
from data_code.filters.quality_classifier import QualityClassifierFilter
from lineage.identity import versioned_fields


def defaults(filter_class) -> dict:
    parameters = inspect.signature(filter_class).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize(
    "filter_class, prefix, renames",
    [
        (GopherQualityFilter, "gopher_", {}),
        (GopherRepetitionFilter, "gopher_", {}),
        (FineWebQualityFilter, "fineweb_", {}),
        (C4QualityFilter, "c4_", {}),
        (LanguageFilter, "", {"threshold": "language_threshold"}),
        (QualityClassifierFilter, "", {"threshold": "quality_threshold"}),
        (PIIRedactionFilter, "", {"types": "pii_types"}),
    ],
)
def test_config_defaults_match_filter_defaults(filter_class, prefix, renames):
    config = FilterConfig()
    for name, default in defaults(filter_class).items():
        field = renames.get(name, prefix + name)
        if hasattr(config, field):
            assert getattr(config, field) == default, field


def test_default_order_and_list_coercion():
    assert FilterConfig().enabled == FILTER_NAMES
    config = FilterConfig(enabled=["language", "pii"], languages=["en", "fr"])
    assert config.enabled == ("language", "pii") and config.languages == ("en", "fr")


@pytest.mark.parametrize(
    "field, value",
    [
        ("enabled", ("language", "toxicity")),
        ("enabled", ("pii", "pii")),
        ("max_text_chars", 0),
        ("workers", 0),
        ("language_threshold", 1.5),
        ("fineweb_short_line_ratio", -0.1),
        ("gopher_min_mean_word_length", -1.0),
        ("gopher_dup_ngram_char_fracs", ((5, 1.5),)),
        ("pii_types", ("email", "ssn")),
        ("languages", ()),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FilterConfig(**{field: value})


def test_speed_knobs_do_not_change_the_version():
    versioned = versioned_fields(FilterConfig())
    assert "workers" not in versioned and "batch_documents" not in versioned
    assert "language_threshold" in versioned and "max_text_chars" in versioned
