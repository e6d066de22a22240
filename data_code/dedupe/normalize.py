"""Text normalization shared by both dedupe engines (re-exported by data_code.dedupe.core).

normalize_text: Unicode NFKC, lowercase, diacritics stripped, punctuation and symbols -> space, digits -> '0',
whitespace collapsed. normalize_arrow does the same for a whole Arrow string array, with a compiled loop for ASCII
documents (most of the web) and the Unicode path only for the others; arrow_sources and ASCII_TABLE are its parts,
for kernels that fold the bytes while they hash them (core.hash_arrow, core.arrow_shingle_sets).
"""

from __future__ import annotations

import re
import unicodedata

import numba
import numpy as np
import pyarrow as pa


def _ascii_table() -> bytes:
    """bytes.translate table: letters lower-cased, digits -> '0', other ASCII -> space, bytes >= 0x80 kept."""
    table = bytearray(range(256))
    for code in range(128):
        char = chr(code)
        if "A" <= char <= "Z":
            table[code] = ord(char.lower())
        elif char.isdigit():
            table[code] = ord("0")
        elif not ("a" <= char <= "z"):
            table[code] = ord(" ")
    return bytes(table)


class _FoldTable(dict):
    """str.translate table for non-ASCII code points, filled lazily from the Unicode category of each one seen."""

    def __missing__(self, code: int):
        category = unicodedata.category(chr(code))
        if category in ("Mn", "Me", "Cf"):  # accents and invisible format characters: dropped
            folded = None
        elif category == "Nd":
            folded = "0"
        elif category[0] in "PSZC":  # punctuation, symbols, separators, controls, surrogates, unassigned
            folded = " "
        else:
            folded = code  # letters, spacing marks, other numbers
        self[code] = folded
        return folded


_ASCII_TABLE = _ascii_table()
ASCII_TABLE = np.frombuffer(_ASCII_TABLE, np.uint8)  # the same table as a uint8 array, for kernels
_FOLD_TABLE = _FoldTable()
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _fold_non_ascii(text: str) -> str:
    """NFKC, lowercase, strip diacritics (NFD, drop marks) and fold non-ASCII punctuation; ASCII is left as is."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).lower())
    # Only non-ASCII runs need the (slower) per-character table; the ASCII table handles the rest afterwards.
    text = _NON_ASCII_RUN.sub(lambda match: match.group().translate(_FOLD_TABLE), text)
    return unicodedata.normalize("NFC", text)


def normalize_bytes(text: str) -> bytes:
    """UTF-8 bytes of normalize_text(text); ASCII text takes a fast path of two C calls."""
    if not text.isascii():
        text = _fold_non_ascii(text)
    return b" ".join(text.encode("utf-8").translate(_ASCII_TABLE).split())


def normalize_text(text: str) -> str:
    """Unicode NFKC, lowercase, diacritics stripped, punctuation and symbols -> space, every digit -> '0',
    whitespace collapsed to single spaces. Never raises on control characters or lone surrogates."""
    return normalize_bytes(text).decode("utf-8")


@numba.njit(cache=True, nogil=True)
def _non_ascii(data, starts, ends):
    """(D,) bool: document d's bytes data[starts[d]:ends[d]] hold a byte >= 0x80."""
    flags = np.zeros(len(starts), np.bool_)
    for d in range(len(starts)):
        flags[d] = ends[d] > starts[d] and data[starts[d] : ends[d]].max() >= 128  # max() vectorizes, a loop not
    return flags


@numba.njit(cache=True, nogil=True)
def _translate_collapse(source, starts, ends, table):
    """Maps each byte of source[starts[d]:ends[d]] through `table`, collapses runs of spaces and strips them:
    (normalized bytes uint8, offsets int64 (D + 1,)). Equal to b" ".join(chunk.translate(table).split())."""
    out = np.empty(np.sum(ends - starts) + 1, np.uint8)
    offsets = np.zeros(len(starts) + 1, np.int64)
    n = 0
    for d in range(len(starts)):
        begin, pending_space = n, False
        for i in range(starts[d], ends[d]):
            byte = table[source[i]]
            if byte == 32:
                pending_space = n > begin  # no leading space; a trailing one is never written
            else:
                if pending_space:
                    out[n] = 32
                    n += 1
                    pending_space = False
                out[n] = byte
                n += 1
        offsets[d + 1] = n
    return out[:n], offsets


def arrow_sources(texts: pa.Array, max_chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data uint8, starts int64 (B,), ends int64 (B,)): text d, truncated to max_chars characters, is
    data[starts[d]:ends[d]], ready to be mapped through ASCII_TABLE (normalize_arrow, or a kernel that hashes while
    it folds). ASCII texts stay in the Arrow buffer (no copy; characters are bytes, so they are cut at max_chars
    bytes); only texts with a non-ASCII byte there are folded by the Unicode path of normalize_bytes and appended."""
    texts = texts.cast(pa.large_string()) if texts.type != pa.large_string() else texts
    _, offset_buffer, data_buffer = texts.buffers()
    bounds = np.frombuffer(offset_buffer, np.int64)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    starts, ends = bounds[:-1].copy(), np.minimum(bounds[1:], bounds[:-1] + max_chars)
    unicode_rows = np.flatnonzero(_non_ascii(data, starts, ends))
    if len(unicode_rows):
        folded = [_fold_non_ascii(texts[int(r)].as_py()[:max_chars]).encode("utf-8") for r in unicode_rows]
        lengths = np.array([len(f) for f in folded], np.int64)
        starts[unicode_rows] = len(data) + np.cumsum(lengths) - lengths
        ends[unicode_rows] = starts[unicode_rows] + lengths
        data = np.concatenate([data, np.frombuffer(b"".join(folded), np.uint8)])
    return data, starts, ends


def normalize_arrow(texts: pa.Array, max_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """normalize_bytes of every text of an Arrow string array, first truncated to max_chars characters:
    (buffer uint8, offsets int64 (B + 1,)). ASCII documents never become Python objects: their bytes are folded
    in place by a compiled loop; only documents with non-ASCII bytes take the Unicode path of normalize_bytes."""
    return _translate_collapse(*arrow_sources(texts, max_chars), ASCII_TABLE)
