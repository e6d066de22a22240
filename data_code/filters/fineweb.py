"""FineWeb's custom quality rules (Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest
Text Data at Scale", section 3.4; datatrove's FineWebQualityFilter), with the published thresholds:

- at least 12% of lines end in punctuation (line_punct_ratio > 0.12);
- under 67% of lines are short (<= 30 characters);
- under 1% of characters sit in lines that duplicate an earlier line;
- at most 0.3 newlines per word (list-like pages).
"""

from __future__ import annotations

from data_code.filters.base import Decision, DocumentFilter
from data_code.filters.kernels import repeated_lines, word_count
from data_code.filters.segment import word_view

STOP_CHARS = (".", "'", '"', "!", "?")


class FineWebQualityFilter(DocumentFilter):
    """Drops list-like, fragmentary or line-duplicated pages that passed Gopher and C4."""

    name = "fineweb"

    def __init__(
        self,
        line_punct_ratio: float = 0.12,  # share of lines ending in STOP_CHARS; at or below this drops the page
        short_line_ratio: float = 0.67,  # share of short lines; at or above this drops the page
        short_line_chars: int = 30,  # a line this long or shorter (in characters) is short
        char_duplicates_ratio: float = 0.01,  # characters in duplicated lines / all non-newline characters
        list_ratio: float = 0.3,  # newlines per word above which the page is a list
        stop_chars: tuple[str, ...] = STOP_CHARS,  # what a line ending in punctuation ends with
        segmenter: str = "whitespace",  # how words are counted (data_code.filters.segment)
    ):
        super().__init__()
        self.stop_chars, self.segmenter = tuple(stop_chars), segmenter
        self.line_punct_ratio, self.short_line_ratio = line_punct_ratio, short_line_ratio
        self.short_line_chars, self.char_duplicates_ratio = short_line_chars, char_duplicates_ratio
        self.list_ratio = list_ratio

    def filter(self, doc: dict) -> Decision:
        text = doc["text"]
        lines = text.split("\n")
        if self.line_punct_ratio is not None:  # None: the check is off
            ratio = sum(line.endswith(self.stop_chars) for line in lines) / len(lines)
            if ratio <= self.line_punct_ratio:
                return False, "fineweb_line_punct_ratio", ratio
        if self.short_line_ratio is not None:
            ratio = sum(len(line) <= self.short_line_chars for line in lines) / len(lines)
            if ratio >= self.short_line_ratio:
                return False, "fineweb_short_line_ratio", ratio
        characters = len(text) - text.count("\n")
        duplicated_chars = repeated_lines(text)[2]  # in lines holding more than whitespace
        if (ratio := duplicated_chars / max(characters, 1)) >= self.char_duplicates_ratio:
            return False, "fineweb_char_dup_ratio", ratio
        if (ratio := text.count("\n") / max(word_count(word_view(text, self.segmenter)), 1)) > self.list_ratio:
            return False, "fineweb_list_ratio", ratio
        return True
