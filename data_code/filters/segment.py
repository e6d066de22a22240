"""Word segmentation for languages written without spaces between words, as FineWeb-2 does it (datatrove's word
tokenizers), calling each field's well-kept segmenter directly:

- zh: jieba (precise mode), the segmenter FineWeb-2 uses for Chinese; pure Python with its own dictionary.
- ja: SudachiPy with sudachidict_core, split mode A (shortest units), as datatrove's JapaneseTokenizer; MeCab
  needs a system library and a separate dictionary, Sudachi ships both as wheels.
- th: PyThaiNLP's newmm-safe (dictionary maximal matching, safe on long runs), as datatrove's ThaiTokenizer.

`word_view(text, segmenter)` gives the text the Gopher and FineWeb rules read: each line's words separated by one
space, the lines kept, so whitespace-based statistics count words. For `whitespace` the view is the text itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

SEGMENTERS = ("whitespace", "jieba", "sudachi", "pythainlp")
_SUDACHI_CHARS = 10_000  # SudachiPy refuses inputs over 49,149 bytes: longer lines go through in pieces


@cache
def segmenter(name: str) -> Callable[[str], list[str]]:
    """The word splitter called `name` (ValueError for an unknown name, ImportError naming the missing package)."""
    if name == "whitespace":
        return str.split
    if name == "jieba":
        import jieba

        jieba.setLogLevel(logging.WARNING)  # it logs the dictionary build at INFO on every process start
        return lambda line: list(jieba.cut(line, cut_all=False, HMM=True))
    if name == "sudachi":
        from sudachipy import Dictionary, SplitMode

        tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.A)

        def sudachi(line: str) -> list[str]:
            pieces = range(0, len(line), _SUDACHI_CHARS)
            return [m.surface() for start in pieces for m in tokenizer.tokenize(line[start : start + _SUDACHI_CHARS])]

        return sudachi
    if name == "pythainlp":
        from pythainlp.tokenize import word_tokenize

        return lambda line: word_tokenize(line, engine="newmm-safe", keep_whitespace=False)
    raise ValueError(f"unknown segmenter {name!r}: use one of {', '.join(SEGMENTERS)}")


_last_view: list = [(None, None, None)]  # [(text, segmenter, view)] of the latest call


def word_view(text: str, name: str) -> str:
    """`text` with the words of each line (str.splitlines()) separated by single spaces, lines joined by \\n.

    The latest answer is kept: the Gopher and FineWeb filters ask in turn about the same text.
    """
    if name == "whitespace":
        return text
    last_text, last_name, last = _last_view[0]
    if last_text is text and last_name == name:
        return last
    split = segmenter(name)
    view = "\n".join(
        " ".join(word for token in split(line) if (word := "".join(token.split()))) for line in text.splitlines()
    )
    _last_view[0] = (text, name, view)
    return view
