"""C4 line cleaning and FineWeb rules: rewritten text, and the exact drop reason."""

from __future__ import annotations

import pytest

from data_code.filters.base import FilterPipeline
from data_code.filters.c4 import C4QualityFilter
from data_code.filters.fineweb import FineWebQualityFilter
from tests.filters.texts import GOOD_TEXT, make_doc

LINES = GOOD_TEXT.splitlines()


def test_c4_removes_boilerplate_lines_and_keeps_prose():
    noisy = "\n".join(
        [
            "Home | Docs | Blog",
            LINES[0],
            "Please enable JavaScript to view the comments.",
            LINES[1] + "[3]",
            "Read more.",
            "This site uses cookies to improve your experience.",
            *LINES[2:],
            "",
            "Share this page",
        ]
    )
    result = FilterPipeline([C4QualityFilter()]).run([make_doc(noisy)])
    assert result.kept[0]["text"] == GOOD_TEXT
    assert dict(result.counts["c4"].counters) == {
        "lines_dropped_few_words": 1,
        "lines_dropped_javascript": 1,
        "lines_dropped_no_terminal_punct": 2,
        "lines_dropped_policy": 1,
    }


@pytest.mark.parametrize(
    "text, reason",
    [
        (GOOD_TEXT + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_lorem_ipsum"),
        (GOOD_TEXT + '\nThe settings file holds {"retries": 3} by default.', "c4_curly_bracket"),
        (
            "The first sentence is here. The second one follows it.\nA third line ends the page.",
            "c4_too_few_sentences",
        ),
        ("Home\nAbout us\nContact\nSign in", "c4_too_few_sentences"),
    ],
)
def test_c4_drop_reasons(text, reason):
    assert C4QualityFilter().filter(make_doc(text))[:2] == (False, reason)


def test_c4_counts_sentences_left():
    text = "The first sentence is here. The second one follows it.\nA third line ends the page."
    assert C4QualityFilter().filter(make_doc(text)) == (False, "c4_too_few_sentences", 3)
    assert C4QualityFilter(min_sentences=3).filter(make_doc(text)) is True


SHORT_LINES = [f"It works in case {i}." for i in range(13)]  # distinct, each under 30 characters


@pytest.mark.parametrize(
    "text, reason",
    [
        ("\n".join(line.rstrip(".") + " and more" for line in LINES), "fineweb_line_punct_ratio"),
        ("\n".join(LINES + SHORT_LINES), "fineweb_short_line_ratio"),
        ("\n".join(LINES + [LINES[2]]), "fineweb_char_dup_ratio"),
        ("\n".join(f"Internationalization consideration{i}." for i in range(10)), "fineweb_list_ratio"),
    ],
)
def test_fineweb_drop_reasons(text, reason):
    assert FineWebQualityFilter().filter(make_doc(text))[:2] == (False, reason)


def test_fineweb_passes_prose():
    assert FineWebQualityFilter().filter(make_doc(GOOD_TEXT)) is True
    assert FineWebQualityFilter().filter(make_doc("\n".join(LINES + SHORT_LINES[:5]))) is True
