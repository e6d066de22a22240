"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A1.1 and table A1), with the thresholds of the paper and of datatrove's
GopherQualityFilter / GopherRepetitionFilter as keyword defaults.

Words are whitespace tokens with surrounding ASCII punctuation stripped (datatrove uses spaCy's tokenizer; the
rules only need word boundaries, and this keeps spaCy out of the dependencies). The word statistics and n-gram
counts run compiled (data_code.filters.kernels), once per document for both filters; the same rules in plain
Python are data_code.filters.reference, and tests hold the two to the same decisions and scores.
"""

from __future__ import annotations

import numpy as np

from data_code.filters.base import Decision, DocumentFilter
from data_code.filters.kernels import (
    WordStats,
    analyse,
    ngram_chars,
    repeated_lines,
    repeated_paragraphs,
    unicode_punctuation,
)
from data_code.filters.segment import word_view

# (n, largest share of characters) for the most frequent n-gram, and for duplicated n-grams (Gopher table A1).
TOP_NGRAM_CHAR_FRACS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUP_NGRAM_CHAR_FRACS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

STOP_WORDS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))  # Gopher's; any case matches
BULLETS = ("•", "‣", "◦", "▪", "●", "·", "-", "*")  # characters that start a bullet-point line


class GopherQualityFilter(DocumentFilter):
    """Drops documents whose length, word shape, symbols, bullets or stop words are unlike natural prose."""

    name = "gopher_quality"

    def __init__(
        self,
        min_words: int = 50,  # words per document, inclusive range
        max_words: int = 100_000,
        min_mean_word_length: float = 3,  # characters
        max_mean_word_length: float = 10,
        max_symbol_word_ratio: float = 0.1,  # '#' per word, and '...' / '…' per word
        max_bullet_lines_ratio: float = 0.9,  # share of non-empty lines starting with a bullet
        max_ellipsis_lines_ratio: float = 0.3,  # share of non-empty lines ending with an ellipsis
        min_alpha_words_ratio: float = 0.8,  # share of tokens holding at least one alphabetic character
        min_stop_words: int = 2,  # occurrences of `stop_words`
        stop_words: frozenset[str] = STOP_WORDS,  # lower case
        segmenter: str = "whitespace",  # how words are found (data_code.filters.segment)
        unicode_words: bool = False,  # strip Unicode punctuation and symbols from words, not only ASCII's
    ):
        super().__init__()
        self.stop_words, self.words = stop_words, _WordReader(segmenter, unicode_words)
        self.min_words, self.max_words = min_words, max_words
        self.min_mean_word_length, self.max_mean_word_length = min_mean_word_length, max_mean_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio, self.max_ellipsis_lines_ratio = max_bullet_lines_ratio, max_ellipsis_lines_ratio
        self.min_alpha_words_ratio, self.min_stop_words = min_alpha_words_ratio, min_stop_words

    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        words_text, stats = self.words(text)
        if stats.words < self.min_words:
            return False, "gopher_short_document", stats.words
        if stats.words > self.max_words:
            return False, "gopher_long_document", stats.words
        mean_length = stats.word_chars / stats.words
        if mean_length < self.min_mean_word_length:
            return False, "gopher_mean_word_length_too_short", mean_length
        if mean_length > self.max_mean_word_length:
            return False, "gopher_mean_word_length_too_long", mean_length
        if (ratio := text.count("#") / stats.words) > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes", ratio
        if (ratio := (text.count("...") + text.count("…")) / stats.words) > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis", ratio
        if (ratio := stats.bullet_lines / stats.lines) > self.max_bullet_lines_ratio:
            return False, "gopher_too_many_bullet_lines", ratio
        if (ratio := stats.ellipsis_lines / stats.lines) > self.max_ellipsis_lines_ratio:
            return False, "gopher_too_many_ellipsis_lines", ratio
        if (ratio := stats.alpha_tokens / stats.tokens) < self.min_alpha_words_ratio:
            return False, "gopher_too_few_alpha_words", ratio
        if (stop_words := stop_word_count(words_text, stats, self.stop_words)) < self.min_stop_words:
            return False, "gopher_too_few_stop_words", stop_words
        return True


def stop_word_count(text: str, stats: WordStats, stop_words: frozenset[str]) -> int:
    """Occurrences of words whose lower case is in `stop_words`, each distinct word looked at once.

    lower() never shortens a word, so only distinct words no longer than the longest stop word can be one.
    """
    longest = max(map(len, stop_words), default=0)
    short = np.flatnonzero(stats.distinct_ends - stats.distinct_starts <= longest)
    starts, ends = stats.distinct_starts[short].tolist(), stats.distinct_ends[short].tolist()
    counts = stats.distinct_counts[short].tolist()
    return sum(
        count for start, end, count in zip(starts, ends, counts, strict=True) if text[start:end].lower() in stop_words
    )


class GopherRepetitionFilter(DocumentFilter):
    """Drops documents made of repeated lines, paragraphs or n-grams (Gopher table A1 thresholds)."""

    name = "gopher_repetition"

    def __init__(
        self,
        dup_line_frac: float = 0.3,  # share of non-empty lines that repeat an earlier line
        dup_para_frac: float = 0.3,  # share of paragraphs (split on blank lines) that repeat an earlier one
        dup_line_char_frac: float = 0.2,  # characters in repeated lines / characters of the text
        dup_para_char_frac: float = 0.2,
        top_ngram_char_fracs: tuple[tuple[int, float], ...] = TOP_NGRAM_CHAR_FRACS,
        dup_ngram_char_fracs: tuple[tuple[int, float], ...] = DUP_NGRAM_CHAR_FRACS,
        segmenter: str = "whitespace",  # how the n-grams' words are found (data_code.filters.segment)
        unicode_words: bool = False,
    ):
        super().__init__()
        self.words = _WordReader(segmenter, unicode_words)
        self.dup_line_frac, self.dup_para_frac = dup_line_frac, dup_para_frac
        self.dup_line_char_frac, self.dup_para_char_frac = dup_line_char_frac, dup_para_char_frac
        self.top_ngram_char_fracs, self.dup_ngram_char_fracs = top_ngram_char_fracs, dup_ngram_char_fracs

    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        if not text.strip():
            return True  # nothing repeats in an empty text; the non_empty / gopher_quality filters judge it
        paragraphs, repeated, repeated_chars = repeated_paragraphs(text)
        if _above(ratio := repeated / paragraphs, self.dup_para_frac):
            return False, "gopher_dup_para_frac", ratio
        if _above(ratio := repeated_chars / len(text), self.dup_para_char_frac):
            return False, "gopher_dup_para_char_frac", ratio
        lines, repeated, repeated_chars = repeated_lines(text)
        if _above(ratio := repeated / lines, self.dup_line_frac):
            return False, "gopher_dup_line_frac", ratio
        if _above(ratio := repeated_chars / len(text), self.dup_line_char_frac):
            return False, "gopher_dup_line_char_frac", ratio
        return self._ngram_decision(self.words(text)[1])

    def _ngram_decision(self, stats: WordStats) -> Decision:
        word_chars = max(stats.word_chars, 1)
        top, duplicated = ngram_chars(stats, {n for n, _ in (*self.top_ngram_char_fracs, *self.dup_ngram_char_fracs)})
        for n, threshold in self.top_ngram_char_fracs:
            if (ratio := int(top[n]) / word_chars) > threshold:
                return False, f"gopher_top_{n}_gram", ratio
        for n, threshold in sorted(self.dup_ngram_char_fracs):
            if (ratio := int(duplicated[n]) / word_chars) > threshold:
                return False, f"gopher_dup_{n}_gram", ratio
            if ratio == 0:
                break  # no n-gram repeats, so no longer one does either
        return True


def _above(ratio: float, threshold: float | None) -> bool:
    return threshold is not None and ratio > threshold  # None: the check is off


class _WordReader:
    """The words of a text as one language's rules see them: (the text they are read from, their statistics)."""

    def __init__(self, segmenter: str, unicode_words: bool):
        self.segmenter, self.strip = segmenter, unicode_punctuation() if unicode_words else None

    def __call__(self, text: str) -> tuple[str, WordStats]:
        words_text = word_view(text, self.segmenter)
        return words_text, analyse(words_text, BULLETS, self.strip)
