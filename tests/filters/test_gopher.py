"""Gopher quality and repetition rules: the exact drop reason for short realistic texts."""

from __future__ import annotations

import pytest

from data_code.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from data_code.filters.reference import duplicate_ngram_chars
from tests.filters.texts import GOOD_TEXT, make_doc

LINES = GOOD_TEXT.splitlines()


def quality(text: str, **kwargs):
    return GopherQualityFilter(**kwargs).filter(make_doc(text))


def repetition(text: str, **kwargs):
    return GopherRepetitionFilter(**kwargs).filter(make_doc(text))


def test_prose_passes_both():
    assert quality(GOOD_TEXT) is True
    assert repetition(GOOD_TEXT) is True


@pytest.mark.parametrize(
    "text, reason",
    [
        ("The cat sat on the mat and looked at the door.", "gopher_short_document"),
        (" ".join(["it is so"] * 20), "gopher_mean_word_length_too_short"),
        (" ".join(["internationalization considerations"] * 30), "gopher_mean_word_length_too_long"),
        (GOOD_TEXT + " #python #code #tips" * 5, "gopher_too_many_hashes"),
        (GOOD_TEXT + " and so on... and more…" * 10, "gopher_too_many_ellipsis"),
        ("\n".join(f"• item number {i} with a few more words here" for i in range(8)), "gopher_too_many_bullet_lines"),
        ("\n".join(line[:-1] + "..." for line in LINES), "gopher_too_many_ellipsis_lines"),
        (GOOD_TEXT + " " + " ".join(str(n) for n in range(1000, 1040)), "gopher_too_few_alpha_words"),
        (" ".join(["Quick brown foxes jump over lazy dogs."] * 8), "gopher_too_few_stop_words"),
    ],
)
def test_quality_drop_reasons(text, reason):
    assert quality(text)[:2] == (False, reason)


def test_quality_scores_are_the_measured_values():
    assert quality("The cat sat on the mat and looked at the door.") == (False, "gopher_short_document", 11)
    assert quality(GOOD_TEXT, max_words=20)[:2] == (False, "gopher_long_document")


@pytest.mark.parametrize(
    "text, reason",
    [
        (f"{LINES[0]}\n\n{LINES[1]}\n\n{LINES[0]}", "gopher_dup_para_frac"),
        ("\n".join(LINES + LINES[:3]), "gopher_dup_line_frac"),
        ("\n".join(LINES + [LINES[3], LINES[4]]), "gopher_dup_line_char_frac"),
        ("\n".join(f"Line {i}: we sell shoes." for i in range(15)), "gopher_top_2_gram"),
        (GOOD_TEXT + "\nNote that " + LINES[1], "gopher_dup_5_gram"),
    ],
)
def test_repetition_drop_reasons(text, reason):
    assert repetition(text)[:2] == (False, reason)


def test_duplicate_ngrams_count_every_occurrence_once():
    words = "a b c d e x a b c d e".split()
    assert duplicate_ngram_chars(words, 5) == 10  # both copies of 'a b c d e', the 'x' is not duplicated
    assert duplicate_ngram_chars(words, 6) == 0
