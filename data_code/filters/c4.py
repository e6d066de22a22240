"""C4 line-level cleaning (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", section 2.2; tensorflow_datasets c4_utils; datatrove's C4QualityFilter), defaults as
published:

- keep only lines ending in terminal punctuation (. ! ? " ') and not in an ellipsis;
- keep only lines with at least 3 words; drop lines holding a word over 1,000 characters;
- drop lines mentioning "javascript" and cookie / terms-of-use / privacy-policy boilerplate;
- drop the whole page if it contains "lorem ipsum" or a curly bracket (code, not prose);
- drop the page if fewer than 5 sentences remain. Wikipedia-style citation marks ([1], [edit]) are removed.

Sentences are counted by terminal punctuation followed by a space or the line end (C4 used NLTK's punkt; this
counts "e.g." as a sentence end, which only matters on pages that are borderline anyway).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from data_code.filters.base import Decision, DocumentFilter

END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


class CleanedText(NamedTuple):
    text: str  # kept lines joined by newlines
    sentences: int
    drop_reason: str | None  # set when a rule drops the whole page
    lines_dropped: dict[str, int]  # rule -> lines removed


class C4QualityFilter(DocumentFilter):
    """Removes non-prose lines; drops pages with lorem ipsum, curly brackets or too few sentences left."""

    name = "c4"

    def __init__(
        self,
        min_sentences: int = 5,  # sentences left after line cleaning; fewer drops the page
        min_words_per_line: int = 3,
        max_word_length: int = 1000,  # characters; a line holding a longer word is dropped
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        remove_citations: bool = True,
    ):
        super().__init__()
        self.min_sentences, self.min_words_per_line, self.max_word_length = (
            min_sentences,
            min_words_per_line,
            max_word_length,
        )
        self.filter_lorem_ipsum, self.filter_javascript = filter_lorem_ipsum, filter_javascript
        self.filter_curly_bracket, self.filter_policy = filter_curly_bracket, filter_policy
        self.remove_citations = remove_citations
        self._last: tuple[str, CleanedText] | None = None  # filter() result reused by transform()

    def filter(self, doc: dict) -> Decision:
        cleaned = self._cleaned(doc["text"])
        if cleaned.drop_reason:
            return False, cleaned.drop_reason
        if cleaned.sentences < self.min_sentences:
            return False, "c4_too_few_sentences", cleaned.sentences
        return True

    def transform(self, doc: dict) -> dict:
        cleaned = self._cleaned(doc["text"])
        for rule, lines in cleaned.lines_dropped.items():
            if lines:
                self.count(f"lines_dropped_{rule}", lines)
        return {**doc, "text": cleaned.text}

    def _cleaned(self, text: str) -> CleanedText:
        if self._last is None or self._last[0] is not text:
            self._last = (text, self.clean(text))
        return self._last[1]

    def clean(self, text: str) -> CleanedText:
        """Apply the line rules to `text`; stops early when a page-level rule fires.

        The rules are judged line by line, with page-wide shortcuts that cannot change an answer: citation marks
        are removed from the whole text at once (none spans a line break), a phrase absent from the lowered page
        is not looked for in its lines, and sentences are counted over all kept lines in one pass.
        """
        kept = []
        dropped = dict.fromkeys(("long_word", "no_terminal_punct", "few_words", "javascript", "policy"), 0)
        if self.remove_citations and "[" in text:
            text = _CITATION.sub("", text)
        phrases = self._phrases_in(text.lower())
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue  # blank lines separate paragraphs; they are not content to judge
            rule = self._line_rule(line, phrases)
            if rule in ("c4_lorem_ipsum", "c4_curly_bracket"):
                return CleanedText("", 0, rule, dropped)
            if rule:
                dropped[rule] += 1
                continue
            kept.append(line)
        cleaned = "\n".join(kept)
        # Every kept line counts at least one sentence. One ending in . ! or ? holds a sentence end already; one
        # ending in a quote may hold none, and then counts one more.
        sentences = len(_SENTENCE_END.findall(cleaned))
        sentences += sum(1 for line in kept if line.endswith(('"', "'")) and not _SENTENCE_END.search(line))
        return CleanedText(cleaned, sentences, None, dropped)

    def _phrases_in(self, lowered_page: str) -> frozenset[str]:
        """The enabled rules' phrases that occur in the page (an ASCII phrase in a line's lower() is in the page's)."""
        phrases = ("lorem ipsum",) * self.filter_lorem_ipsum + ("javascript",) * self.filter_javascript
        phrases += POLICY_SUBSTRINGS * self.filter_policy
        return frozenset(phrase for phrase in phrases if phrase in lowered_page)

    def _line_rule(self, line: str, phrases: frozenset[str]) -> str | None:
        """Why `line` goes (a line rule, or a page rule prefixed c4_), or None to keep it."""
        if len(line) > self.max_word_length and any(len(word) > self.max_word_length for word in line.split()):
            return "long_word"
        if not line.endswith(END_PUNCTUATION) or line.endswith("..."):
            return "no_terminal_punct"
        least = self.min_words_per_line  # split at most least - 1 times: `least` pieces only with enough words
        if least > 0 and len(line.split(None, least - 1)) < least:
            return "few_words"
        lowered = line.lower() if phrases else ""
        if "lorem ipsum" in phrases and "lorem ipsum" in lowered:
            return "c4_lorem_ipsum"
        if "javascript" in phrases and "javascript" in lowered:
            return "javascript"
        if self.filter_curly_bracket and "{" in line:
            return "c4_curly_bracket"
        if self.filter_policy and any(phrase in lowered for phrase in phrases & _POLICY_SET):
            return "policy"
        return None


_POLICY_SET = frozenset(POLICY_SUBSTRINGS)
