"""FilterPipeline: order, counting, transforms and rejection rows, with toy filters."""

from __future__ import annotations

import pytest

from data_code.filters.base import DocumentFilter, FilterPipeline, NonEmptyFilter
from tests.filters.texts import make_doc


class DropShort(DocumentFilter):
    name = "drop_short"

    def filter(self, doc):
        words = len(doc["text"].split())
        return True if words >= 3 else (False, "too_short", words, f"{words} words")


class Shout(DocumentFilter):
    name = "shout"

    def filter(self, doc):
        return "quiet" not in doc["text"]  # a bare False: the filter's name is the reason

    def transform(self, doc):
        self.count("shouted")
        return {**doc, "text": doc["text"].upper() + " EXTRA"}


def test_pipeline_counts_routes_and_transforms():
    docs = [
        make_doc("one two three", url="https://a.example/1"),
        make_doc("one two", url="https://a.example/2"),
        make_doc("be quiet now please", url="https://b.example/3"),
        make_doc("four five six seven", url="https://b.example/4"),
        make_doc("   ", url="https://b.example/5"),
    ]
    result = FilterPipeline([NonEmptyFilter(), DropShort(), Shout()]).run(docs)

    assert [doc["text"] for doc in result.kept] == ["ONE TWO THREE EXTRA", "FOUR FIVE SIX SEVEN EXTRA"]
    assert docs[0]["text"] == "one two three"  # the caller's documents are not modified
    assert [(row["stage"], row["reason"], row["score"], row["detail"]) for row in result.rejections] == [
        ("drop_short", "too_short", 2.0, "2 words"),
        ("shout", "shout", None, None),
        ("non_empty", "no_words", None, None),
    ]
    assert result.rejections[0]["doc_id"] == docs[1]["doc_id"] and result.rejections[0]["url"] == docs[1]["url"]
    assert result.excerpts == ["one two", "be quiet now please", "   "]
    short, shout = result.counts["drop_short"], result.counts["shout"]
    assert (short.documents_in, short.documents_kept, short.tokens_in, short.tokens_kept) == (4, 3, 13, 11)
    assert (shout.documents_in, shout.documents_kept, shout.tokens_in, shout.tokens_kept) == (3, 2, 11, 9)
    assert dict(shout.kept_by_domain) == {"a.example": 1, "b.example": 1}
    assert dict(shout.counters) == {"shouted": 2}
    assert dict(result.domains_in) == {"a.example": 2, "b.example": 3}
    assert dict(result.domains_kept) == {"a.example": 1, "b.example": 1}


def test_counters_cover_one_run_only():
    pipeline = FilterPipeline([Shout()])
    pipeline.run([make_doc("a b c")])
    assert dict(pipeline.run([make_doc("d e f")]).counts["shout"].counters) == {"shouted": 1}


def test_a_malformed_decision_is_an_error():
    class Broken(DocumentFilter):
        name = "broken"

        def filter(self, doc):
            return "nope"

    with pytest.raises(AssertionError, match="broken"):
        FilterPipeline([Broken()]).run([make_doc("a b c")])
