"""What the UI shows when a number cannot be computed: the reason, never a blank cell."""

from __future__ import annotations

from assets.dedupe import _estimate


def test_dedupe_estimates_say_why_they_are_missing():
    none_similar = {"sample_size": 40, "threshold": 0.8, "precision": None, "recall": None}
    assert "no candidate pair" in _estimate(none_similar, "precision")
    assert "reaches Jaccard 0.8" in _estimate(none_similar, "recall")
    assert "fewer than 2 documents" in _estimate({"sample_size": 1}, "recall")
    assert _estimate({"precision": 0.987654321}, "precision") == 0.9877
