"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A1.1 and table A1), with the thresholds of the paper and of datatrove's
GopherQualityFilter / GopherRepetitionFilter as keyword defaults.

Words are whitespace tokens with surrounding punctuation stripped (datatrove uses NLTK's tokenizer; the rules
only need word boundaries, and this keeps NLTK out of the dependencies).
"""

from __future__ import annotations

import re
import string
from collections import Counter

from data_code.filters.base import Decision, DocumentFilter

# (n, largest share of characters) for the most frequent n-gram, and for duplicated n-grams (Gopher table A1).
TOP_NGRAM_CHAR_FRACS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUP_NGRAM_CHAR_FRACS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")  # Gopher's list, matched case-insensitively
BULLETS = ("•", "‣", "◦", "▪", "●", "·", "-", "*")  # characters that start a bullet-point line
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


def words_of(text: str) -> list[str]:
    """Whitespace tokens with leading/trailing punctuation removed; pure-punctuation tokens dropped."""
    return [word for word in (token.strip(string.punctuation) for token in text.split()) if word]


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
        min_stop_words: int = 2,  # occurrences of STOP_WORDS
    ):
        super().__init__()
        self.min_words, self.max_words = min_words, max_words
        self.min_mean_word_length, self.max_mean_word_length = min_mean_word_length, max_mean_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio, self.max_ellipsis_lines_ratio = max_bullet_lines_ratio, max_ellipsis_lines_ratio
        self.min_alpha_words_ratio, self.min_stop_words = min_alpha_words_ratio, min_stop_words

    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        words = words_of(text)
        if len(words) < self.min_words:
            return False, "gopher_short_document", len(words)
        if len(words) > self.max_words:
            return False, "gopher_long_document", len(words)
        mean_length = sum(map(len, words)) / len(words)
        if mean_length < self.min_mean_word_length:
            return False, "gopher_mean_word_length_too_short", mean_length
        if mean_length > self.max_mean_word_length:
            return False, "gopher_mean_word_length_too_long", mean_length
        if (ratio := text.count("#") / len(words)) > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes", ratio
        if (ratio := (text.count("...") + text.count("…")) / len(words)) > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis", ratio
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if (ratio := sum(line.startswith(BULLETS) for line in lines) / len(lines)) > self.max_bullet_lines_ratio:
            return False, "gopher_too_many_bullet_lines", ratio
        ellipsis_lines = sum(line.endswith(("...", "…")) for line in lines) / len(lines)
        if ellipsis_lines > self.max_ellipsis_lines_ratio:
            return False, "gopher_too_many_ellipsis_lines", ellipsis_lines
        tokens = text.split()
        if (ratio := sum(any(c.isalpha() for c in token) for token in tokens) / len(tokens)) < (
            self.min_alpha_words_ratio
        ):
            return False, "gopher_too_few_alpha_words", ratio
        if (stop_words := sum(word.lower() in STOP_WORDS for word in words)) < self.min_stop_words:
            return False, "gopher_too_few_stop_words", stop_words
        return True


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
    ):
        super().__init__()
        self.dup_line_frac, self.dup_para_frac = dup_line_frac, dup_para_frac
        self.dup_line_char_frac, self.dup_para_char_frac = dup_line_char_frac, dup_para_char_frac
        self.top_ngram_char_fracs, self.dup_ngram_char_fracs = top_ngram_char_fracs, dup_ngram_char_fracs

    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        if not text.strip():
            return True  # nothing repeats in an empty text; the non_empty / gopher_quality filters judge it
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        repeated, repeated_chars = find_duplicates(paragraphs)
        if (ratio := repeated / len(paragraphs)) > self.dup_para_frac:
            return False, "gopher_dup_para_frac", ratio
        if (ratio := repeated_chars / len(text)) > self.dup_para_char_frac:
            return False, "gopher_dup_para_char_frac", ratio
        lines = [line for line in text.split("\n") if line.strip()]
        repeated, repeated_chars = find_duplicates(lines)
        if (ratio := repeated / len(lines)) > self.dup_line_frac:
            return False, "gopher_dup_line_frac", ratio
        if (ratio := repeated_chars / len(text)) > self.dup_line_char_frac:
            return False, "gopher_dup_line_char_frac", ratio
        return self._ngram_decision(words_of(text))

    def _ngram_decision(self, words: list[str]) -> Decision:
        word_chars = sum(map(len, words))
        for n, threshold in self.top_ngram_char_fracs:
            if (ratio := top_ngram_chars(words, n) / max(word_chars, 1)) > threshold:
                return False, f"gopher_top_{n}_gram", ratio
        for n, threshold in sorted(self.dup_ngram_char_fracs):
            if (ratio := duplicate_ngram_chars(words, n) / max(word_chars, 1)) > threshold:
                return False, f"gopher_dup_{n}_gram", ratio
            if ratio == 0:
                break  # no n-gram repeats, so no longer one does either
        return True


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(items equal to an earlier item, characters in those items)."""
    seen: set[str] = set()
    repeated = repeated_chars = 0
    for item in items:
        if item in seen:
            repeated += 1
            repeated_chars += len(item)
        else:
            seen.add(item)
    return repeated, repeated_chars


def top_ngram_chars(words: list[str], n: int) -> int:
    """Word characters covered by the most frequent n-gram (0 unless it occurs at least twice)."""
    counts = Counter(_ngrams(words, n))
    if not counts:
        return 0
    ngram, occurrences = counts.most_common(1)[0]
    return sum(map(len, ngram)) * occurrences if occurrences > 1 else 0


def duplicate_ngram_chars(words: list[str], n: int) -> int:
    """Word characters inside any n-gram that occurs more than once, each word counted once.

    Every occurrence of a repeated n-gram counts (as RedPajama-V2's rps_doc_frac_chars_dupe_ngrams); datatrove
    counts only the repeats, which is up to half as strict.
    """
    ngrams = _ngrams(words, n)
    if len(set(ngrams)) == len(ngrams):
        return 0  # the common case for prose: nothing repeats, no need to mark words
    first_seen: dict[tuple[str, ...], int] = {}
    covered = [False] * len(words)
    for i, ngram in enumerate(ngrams):
        first = first_seen.setdefault(ngram, i)
        if first != i:
            covered[first : first + n] = [True] * n
            covered[i : i + n] = [True] * n
    return sum(len(word) for word, is_covered in zip(words, covered, strict=True) if is_covered)


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))  # shifted copies: shortest one ends it
