"""The heuristic filters' rules in plain Python, as first written: the specification the compiled filters match.

The filters that run (gopher, c4, pii) compute the same rules with compiled kernels (data_code.filters.kernels)
and guarded regular expressions. Each class here takes the parameters of the filter it subclasses and overrides
only the computation, so a test can run both on every document of a real corpus and require the same decision,
reason, score, transformed text and counters. Read this module to learn what a rule means; read the filter's own
module to see how it runs fast.
"""

from __future__ import annotations

import bisect
import re
import string
from collections import Counter

from data_code.filters.base import Decision
from data_code.filters.c4 import (
    _CITATION,
    _SENTENCE_END,
    END_PUNCTUATION,
    POLICY_SUBSTRINGS,
    C4QualityFilter,
    CleanedText,
)
from data_code.filters.fineweb import STOP_CHARS, FineWebQualityFilter
from data_code.filters.gopher import BULLETS, STOP_WORDS, GopherQualityFilter, GopherRepetitionFilter
from data_code.filters.pii import (
    _ASSIGNED_SECRET,
    _CARD,
    _EMAIL,
    _IPV4,
    _IPV6,
    _PEM,
    _PHONE,
    _TOKEN,
    PIIRedactionFilter,
    _entropy,
    _is_public_ip,
    luhn_valid,
    redact_spans,
)


def words_of(text: str) -> list[str]:
    """Whitespace tokens with leading/trailing punctuation removed; pure-punctuation tokens dropped."""
    return [word for word in (token.strip(string.punctuation) for token in text.split()) if word]


class GopherQualityReference(GopherQualityFilter):
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


_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


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


class GopherRepetitionReference(GopherRepetitionFilter):
    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        if not text.strip():
            return True
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
        words = words_of(text)
        word_chars = sum(map(len, words))
        for n, threshold in self.top_ngram_char_fracs:
            if (ratio := top_ngram_chars(words, n) / max(word_chars, 1)) > threshold:
                return False, f"gopher_top_{n}_gram", ratio
        for n, threshold in sorted(self.dup_ngram_char_fracs):
            if (ratio := duplicate_ngram_chars(words, n) / max(word_chars, 1)) > threshold:
                return False, f"gopher_dup_{n}_gram", ratio
            if ratio == 0:
                break
        return True


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
        return 0
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


class FineWebQualityReference(FineWebQualityFilter):
    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        lines = text.split("\n")
        if (ratio := sum(line.endswith(STOP_CHARS) for line in lines) / len(lines)) <= self.line_punct_ratio:
            return False, "fineweb_line_punct_ratio", ratio
        if (ratio := sum(len(line) <= self.short_line_chars for line in lines) / len(lines)) >= self.short_line_ratio:
            return False, "fineweb_short_line_ratio", ratio
        characters = len(text) - text.count("\n")
        duplicated_chars = find_duplicates([line for line in lines if line.strip()])[1]
        if (ratio := duplicated_chars / max(characters, 1)) >= self.char_duplicates_ratio:
            return False, "fineweb_char_dup_ratio", ratio
        if (ratio := text.count("\n") / max(len(text.split()), 1)) > self.list_ratio:
            return False, "fineweb_list_ratio", ratio
        return True


class C4QualityReference(C4QualityFilter):
    def clean(self, text: str) -> CleanedText:
        kept, sentences = [], 0
        dropped = dict.fromkeys(("long_word", "no_terminal_punct", "few_words", "javascript", "policy"), 0)
        for raw_line in text.splitlines():
            line = _CITATION.sub("", raw_line).strip() if self.remove_citations else raw_line.strip()
            if not line:
                continue
            rule = self._line_rule(line)
            if rule in ("c4_lorem_ipsum", "c4_curly_bracket"):
                return CleanedText("", 0, rule, dropped)
            if rule:
                dropped[rule] += 1
                continue
            kept.append(line)
            sentences += max(1, len(_SENTENCE_END.findall(line)))
        return CleanedText("\n".join(kept), sentences, None, dropped)

    def _line_rule(self, line: str) -> str | None:
        words = line.split()
        if any(len(word) > self.max_word_length for word in words):
            return "long_word"
        if not line.endswith(END_PUNCTUATION) or line.endswith("..."):
            return "no_terminal_punct"
        if len(words) < self.min_words_per_line:
            return "few_words"
        lowered = line.lower()
        if self.filter_lorem_ipsum and "lorem ipsum" in lowered:
            return "c4_lorem_ipsum"
        if self.filter_javascript and "javascript" in lowered:
            return "javascript"
        if self.filter_curly_bracket and "{" in line:
            return "c4_curly_bracket"
        if self.filter_policy and any(phrase in lowered for phrase in POLICY_SUBSTRINGS):
            return "policy"
        return None


def reference_spans(text: str) -> list[tuple[int, int, str | None]]:
    """Non-overlapping (start, end, type) spans, claimed in PII_TYPES order; type None marks text left alone."""
    claimed: list[tuple[int, int, str | None]] = []

    def claim(start: int, end: int, kind: str | None) -> None:
        i = bisect.bisect_left(claimed, (start,))
        if (i == 0 or claimed[i - 1][1] <= start) and (i == len(claimed) or claimed[i][0] >= end):
            claimed.insert(i, (start, end, kind))

    for match in _PEM.finditer(text):
        claim(match.start(), match.end(), "secret")
    for match in _TOKEN.finditer(text):
        claim(match.start(), match.end(), "secret")
    for match in _ASSIGNED_SECRET.finditer(text):
        if _entropy(match.group("value")) >= 3.0:
            claim(match.start("value"), match.end("value"), "secret")
    for match in _EMAIL.finditer(text):
        claim(match.start(), match.end(), "email")
    for match in _CARD.finditer(text):
        claim(match.start(), match.end(), "credit_card" if luhn_valid(match.group()) else None)
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            claim(match.start(), match.end(), "ip_address" if _is_public_ip(match.group()) else None)
    for match in _PHONE.finditer(text):
        claim(match.start(), match.end(), "phone")
    return claimed


class PIIRedactionReference(PIIRedactionFilter):
    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        return redact_spans(text, reference_spans(text), self.types)
