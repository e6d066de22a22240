"""Compiled hot loops of the heuristic filters (numba), exact to the character with the plain-Python rules.

A text enters as its code points (`code_points`: one uint32 per character, so indices and lengths are Python's),
and Python's own character predicates come in as lookup tables built from `str.isspace`, `str.isalpha` and
`str.isdecimal` over all of Unicode: the kernels split, strip and classify exactly as `str.split()`, `str.strip()`,
`str.splitlines()` and `re`'s `\\d` do. What the kernels compute:

- `word_count`: len(text.split()), without building the list;
- `analyse`: Gopher's word and line statistics (words are whitespace tokens with ASCII punctuation stripped), each
  distinct word once with its count, and every word's id (words compared by content, never by hash alone);
- `ngram_chars`: for each n, the characters of the most frequent n-gram and of all repeated n-grams (Gopher);
- `pii_candidates`: the positions where a PII pattern can start a match, so that `re` only runs there.

The plain-Python rules they replace are kept in data_code.filters.reference; tests compare the two on every
document of a real corpus.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import cache
from typing import NamedTuple

import numba
import numpy as np

UNICODE_SIZE = 0x110000
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # where str.splitlines() ends a line
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)


@cache
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(isspace, isalpha, isdecimal, is ASCII punctuation, is line break) per code point, as bool arrays.

    `re`'s \\s and \\d for str are str.isspace and str.isdecimal (the same C predicates), so two regex scans of all
    of Unicode find them; isalpha has no regex class and is asked of every character (about 0.1 s, once a process).
    """
    everything = np.arange(UNICODE_SIZE, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")

    def matching(pattern: str) -> np.ndarray:
        table = np.zeros(UNICODE_SIZE, np.bool_)
        table[[match.start() for match in re.finditer(pattern, everything)]] = True
        return table

    alpha = np.fromiter(map(str.isalpha, everything), dtype=np.bool_, count=UNICODE_SIZE)
    punctuation = np.zeros(UNICODE_SIZE, np.bool_)
    punctuation[[ord(c) for c in string.punctuation]] = True
    line_break = np.zeros(UNICODE_SIZE, np.bool_)
    line_break[[ord(c) for c in LINE_BREAKS]] = True
    return matching(r"\s"), alpha, matching(r"\d"), punctuation, line_break


def code_points(text: str) -> np.ndarray:
    """One uint32 per character of `text` (lone surrogates included, as Python counts them)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def word_count(text: str) -> int:
    """len(text.split()): whitespace-separated tokens, counted without building the list."""
    return int(_count_tokens(code_points(text), tables()[0]))


@numba.njit(cache=True, nogil=True)
def _count_tokens(cps, space):
    tokens = 0
    inside = False
    for i in range(cps.shape[0]):
        if space[cps[i]]:
            inside = False
        elif not inside:
            inside = True
            tokens += 1
    return tokens


class WordStats(NamedTuple):
    """What Gopher's rules ask of a text, computed in one pass."""

    tokens: int  # len(text.split())
    alpha_tokens: int  # tokens holding at least one alphabetic character
    word_chars: int  # characters of all words
    word_ids: np.ndarray  # per word (in order): its distinct-word id, numbered by first occurrence
    word_lengths: np.ndarray  # per word: its length in characters
    distinct_starts: np.ndarray  # per distinct word: where its first occurrence starts in the text
    distinct_ends: np.ndarray
    distinct_counts: np.ndarray  # per distinct word: occurrences
    lines: int  # non-empty lines after strip() (str.splitlines())
    bullet_lines: int  # of those, lines starting with a bullet character
    ellipsis_lines: int  # of those, lines ending in '...' or '…'

    @property
    def words(self) -> int:
        return int(self.word_ids.shape[0])


_last_analysis: list = [(None, None, None, None)]  # [(text, bullets, strip, WordStats)] of the latest call


def analyse(text: str, bullets: str, strip: np.ndarray | None = None) -> WordStats:
    """Word and line statistics of `text` (lines starting with a character of `bullets` are bullet lines).

    Words are tokens with the characters of `strip` (a bool per code point; None: ASCII punctuation) cut from
    both ends. The latest answer is kept: the Gopher quality and repetition filters ask in turn about one text.
    """
    last_text, last_bullets, last_strip, last_stats = _last_analysis[0]
    if last_text is text and last_bullets == bullets and last_strip is strip:
        return last_stats
    space, alpha, _, punctuation, line_break = tables()
    bullet_codes = np.array([ord(c) for c in bullets], dtype=np.uint32)
    strip_table = punctuation if strip is None else strip
    stats = WordStats(*_analyse(code_points(text), space, alpha, strip_table, line_break, bullet_codes))
    _last_analysis[0] = (text, bullets, strip, stats)
    return stats


@cache
def unicode_punctuation() -> np.ndarray:
    """A bool per code point: Unicode punctuation and symbols (categories P* and S*), ASCII punctuation included.

    The words of the rule sets beyond English: a token of only these (。 「 」 ・ € …) is not a word.
    """
    table = np.zeros(UNICODE_SIZE, np.bool_)
    table[[c for c in range(UNICODE_SIZE) if unicodedata.category(chr(c))[0] in "PS"]] = True
    table[[ord(c) for c in string.punctuation]] = True
    return table


@numba.njit(cache=True, nogil=True)
def _analyse(cps, space, alpha, punctuation, line_break, bullets):
    n = cps.shape[0]
    starts = np.empty(n // 2 + 1, np.int64)
    ends = np.empty(n // 2 + 1, np.int64)
    words = tokens = alpha_tokens = 0
    i = 0
    while i < n:
        if space[cps[i]]:
            i += 1
            continue
        j = i
        has_alpha = False
        while j < n and not space[cps[j]]:
            if alpha[cps[j]]:
                has_alpha = True
            j += 1
        tokens += 1
        if has_alpha:
            alpha_tokens += 1
        a, b = i, j
        while a < b and punctuation[cps[a]]:
            a += 1
        while b > a and punctuation[cps[b - 1]]:
            b -= 1
        if a < b:
            starts[words] = a
            ends[words] = b
            words += 1
        i = j
    starts, ends = starts[:words], ends[:words]
    lengths = ends - starts
    word_ids, distinct = _distinct_spans(cps, starts, ends)
    counts = np.zeros(distinct.shape[0], np.int64)
    for w in range(words):
        counts[word_ids[w]] += 1
    lines, bullet_lines, ellipsis_lines = _line_shape(cps, space, line_break, bullets)
    return (
        tokens,
        alpha_tokens,
        int(lengths.sum()),
        word_ids,
        lengths,
        starts[distinct],
        ends[distinct],
        counts,
        lines,
        bullet_lines,
        ellipsis_lines,
    )


@numba.njit(cache=True, nogil=True)
def _distinct_spans(cps, starts, ends):
    """(id of each span, index of each distinct span's first occurrence): an open-addressing table on content."""
    words = starts.shape[0]
    size = 2
    while size < 2 * words:
        size *= 2
    mask = np.uint64(size - 1)
    slot_id = np.full(size, -1, np.int64)
    slot_hash = np.zeros(size, np.uint64)
    first = np.empty(words, np.int64)
    ids = np.empty(words, np.int64)
    distinct = 0
    for w in range(words):
        h = _FNV_OFFSET
        for k in range(starts[w], ends[w]):
            h = (h ^ np.uint64(cps[k])) * _FNV_PRIME
        slot = h & mask
        while True:
            u = slot_id[slot]
            if u == -1:
                slot_id[slot] = distinct
                slot_hash[slot] = h
                first[distinct] = w
                ids[w] = distinct
                distinct += 1
                break
            if slot_hash[slot] == h and _same_word(cps, starts[first[u]], ends[first[u]], starts[w], ends[w]):
                ids[w] = u
                break
            slot = (slot + np.uint64(1)) & mask
    return ids, first[:distinct]


@numba.njit(cache=True, nogil=True, inline="always")
def _same_word(cps, a_start, a_end, b_start, b_end):
    if a_end - a_start != b_end - b_start:
        return False
    for k in range(a_end - a_start):
        if cps[a_start + k] != cps[b_start + k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _line_shape(cps, space, line_break, bullets):
    """(non-empty stripped lines, of them starting with a bullet, of them ending in an ellipsis)."""
    n = cps.shape[0]
    lines = bullet_lines = ellipsis_lines = 0
    start = 0
    while start <= n:
        end = start
        while end < n and not line_break[cps[end]]:
            end += 1
        a, b = start, end
        while a < b and space[cps[a]]:
            a += 1
        while b > a and space[cps[b - 1]]:
            b -= 1
        if a < b:
            lines += 1
            for bullet in bullets:
                if cps[a] == bullet:
                    bullet_lines += 1
                    break
            if cps[b - 1] == 0x2026 or (b - a >= 3 and cps[b - 1] == 46 and cps[b - 2] == 46 and cps[b - 3] == 46):
                ellipsis_lines += 1
        start = end + 1
    return lines, bullet_lines, ellipsis_lines


def ngram_chars(stats: WordStats, sizes) -> tuple[np.ndarray, np.ndarray]:
    """(top, duplicated), indexed by n for each n in `sizes` (0 elsewhere): characters of the most frequent n-gram
    times its count (0 unless it repeats; ties go to the n-gram seen first), and characters of words inside any
    repeated n-gram."""
    wanted = np.zeros(max(sizes, default=0) + 1, np.bool_)
    wanted[list(sizes)] = True
    return _ngram_chars(stats.word_ids, stats.word_lengths, wanted, stats.distinct_counts.shape[0])


@numba.njit(cache=True, nogil=True)
def _ngram_chars(word_ids, lengths, wanted, distinct_words):
    largest_n = wanted.shape[0] - 1
    words = word_ids.shape[0]
    top = np.zeros(largest_n + 1, np.int64)
    duplicated = np.zeros(largest_n + 1, np.int64)
    prefix = np.zeros(words + 1, np.int64)
    for w in range(words):
        prefix[w + 1] = prefix[w] + lengths[w]
    # Level n: the id of the n-gram at each position (numbered by first occurrence), each id's count and first place.
    ids = word_ids.copy()
    counts = np.zeros(max(distinct_words, 1), np.int64)
    first = np.full(max(distinct_words, 1), -1, np.int64)
    for p in range(words):
        counts[ids[p]] += 1
        if first[ids[p]] == -1:
            first[ids[p]] = p
    id_count = distinct_words
    for n in range(1, largest_n + 1):
        if n > 1:
            ids, counts, first, id_count = _extend(ids, counts, word_ids, n, distinct_words)
        positions = ids.shape[0]
        if positions == 0 or id_count == positions:
            break  # no n-gram repeats, so no longer one does: the rest stays 0
        if not wanted[n]:
            continue
        best = 0
        for u in range(id_count):  # ids are numbered by first occurrence: the first maximum is the earliest
            if counts[u] > counts[best]:
                best = u
        if counts[best] > 1:
            top[n] = (prefix[first[best] + n] - prefix[first[best]]) * counts[best]
        covered_until = 0  # words before this index are covered by a repeated n-gram seen so far
        chars = 0
        for p in range(positions):
            if counts[ids[p]] > 1:
                for w in range(max(p, covered_until), p + n):
                    chars += lengths[w]
                covered_until = max(covered_until, p + n)
        duplicated[n] = chars
    return top, duplicated


@numba.njit(cache=True, nogil=True)
def _extend(previous, previous_counts, word_ids, n, distinct_words):
    """The n-grams from the (n-1)-grams: (ids, counts, first places, id count). An n-gram is the pair (n-1-gram,
    next word); one whose (n-1)-gram occurs once occurs once too, and takes a fresh id without a table lookup."""
    positions = word_ids.shape[0] - n + 1
    if positions <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), 0
    repeated = 0
    for p in range(positions):
        if previous_counts[previous[p]] > 1:
            repeated += 1
    size = 2
    while size < 2 * repeated:
        size *= 2
    mask = np.uint64(size - 1)
    slot_key = np.full(size, -1, np.int64)
    slot_id = np.empty(size, np.int64)
    ids = np.empty(positions, np.int64)
    counts = np.zeros(positions, np.int64)
    first = np.empty(positions, np.int64)
    count = 0
    width = max(distinct_words, 1)  # word ids are below it
    for p in range(positions):
        if previous_counts[previous[p]] == 1:
            u = count
            count += 1
            first[u] = p
        else:
            key = previous[p] * width + word_ids[p + n - 1]  # < 2**62 for any text a filter sees
            slot = (np.uint64(key) * _MIX) & mask
            while True:
                if slot_key[slot] == -1:
                    slot_key[slot] = key
                    u = count
                    slot_id[slot] = u
                    count += 1
                    first[u] = p
                    break
                if slot_key[slot] == key:
                    u = slot_id[slot]
                    break
                slot = (slot + np.uint64(1)) & mask
        ids[p] = u
        counts[u] += 1
    return ids, counts, first, count


def repeated_lines(text: str) -> tuple[int, int, int]:
    """(lines, lines equal to an earlier line, characters in those): the lines of text.split("\\n") that hold more
    than whitespace, compared as they are."""
    space = tables()[0]
    return _repeated_lines(code_points(text), space)


def repeated_paragraphs(text: str) -> tuple[int, int, int]:
    """(paragraphs, paragraphs equal to an earlier one, characters in those): the pieces of text.strip() between
    runs of two or more newlines."""
    space = tables()[0]
    return _repeated_paragraphs(code_points(text), space)


@numba.njit(cache=True, nogil=True)
def _repeated_lines(cps, space):
    n = cps.shape[0]
    starts = np.empty(n + 1, np.int64)
    ends = np.empty(n + 1, np.int64)
    lines = 0
    start = 0
    while start <= n:
        end = start
        blank = True
        while end < n and cps[end] != 10:
            if blank and not space[cps[end]]:
                blank = False
            end += 1
        if not blank:
            starts[lines] = start
            ends[lines] = end
            lines += 1
        start = end + 1
    return _repeats(cps, starts[:lines], ends[:lines])


@numba.njit(cache=True, nogil=True)
def _repeated_paragraphs(cps, space):
    n = cps.shape[0]
    a, b = 0, n
    while a < b and space[cps[a]]:
        a += 1
    while b > a and space[cps[b - 1]]:
        b -= 1
    if a == b:
        return 1, 0, 0  # re.split of an empty string: one empty paragraph
    starts = np.empty(n + 1, np.int64)
    ends = np.empty(n + 1, np.int64)
    paragraphs = 0
    start = i = a
    while i < b:
        if cps[i] == 10 and i + 1 < b and cps[i + 1] == 10:
            starts[paragraphs] = start
            ends[paragraphs] = i
            paragraphs += 1
            while i < b and cps[i] == 10:
                i += 1
            start = i
        else:
            i += 1
    starts[paragraphs] = start
    ends[paragraphs] = b
    paragraphs += 1
    return _repeats(cps, starts[:paragraphs], ends[:paragraphs])


@numba.njit(cache=True, nogil=True)
def _repeats(cps, starts, ends):
    ids, first = _distinct_spans(cps, starts, ends)
    repeated = repeated_chars = 0
    for k in range(ids.shape[0]):
        if first[ids[k]] != k:
            repeated += 1
            repeated_chars += ends[k] - starts[k]
    return starts.shape[0], repeated, repeated_chars


class PIICandidates(NamedTuple):
    """Per PII pattern, ascending positions that include every place where one of its matches starts."""

    pem: np.ndarray  # '-----BEGIN '
    token: np.ndarray  # AKIA, ASIA, gh[pousr]_, github_pat_
    secret: np.ndarray  # api, secret, access, auth, token, passw in any case (re.IGNORECASE's letters)
    email: np.ndarray  # the start of the address characters before an '@', and each place after a '%' there
    card: np.ndarray  # a digit run's first digit, with 13 digits among the next digits, spaces and dashes
    ipv4: np.ndarray  # a digit run's first digit, with three dots among the next digits and dots
    phone: np.ndarray  # a digit run's first digit or a '+' / '(' before it, with 7 digits in the next 22 characters
    ipv6: np.ndarray  # the start of a run of hex digits and colons that holds at least two colons


def pii_candidates(text: str) -> PIICandidates:
    return PIICandidates(*_pii_candidates(code_points(text), tables()[2]))


_SECRET_OPENINGS = ("api", "secret", "access", "auth", "token", "passw")
_SECRET_OPENING_CODES = np.full((len(_SECRET_OPENINGS), 8), -1, np.int64)
for _row, _word in enumerate(_SECRET_OPENINGS):
    _SECRET_OPENING_CODES[_row, : len(_word)] = [ord(c) for c in _word]
_TOKEN_OPENINGS = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
_TOKEN_OPENING_CODES = np.full((len(_TOKEN_OPENINGS), 12), -1, np.int64)
for _row, _word in enumerate(_TOKEN_OPENINGS):
    _TOKEN_OPENING_CODES[_row, : len(_word)] = [ord(c) for c in _word]
_PEM_OPENING_CODES = np.array([[ord(c) for c in "-----BEGIN "]], np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _folded(c):
    """The ASCII lower-case letter re.IGNORECASE matches `c` to, else `c` (A-Z, and the four non-ASCII ones)."""
    if 65 <= c <= 90:
        return c + 32
    if c == 0x130 or c == 0x131:  # İ, ı: 'i'
        return 105
    if c == 0x17F:  # ſ: 's'
        return 115
    if c == 0x212A:  # Kelvin sign: 'k'
        return 107
    return c


@numba.njit(cache=True, nogil=True)
def _opens(cps, i, openings, fold):
    """Whether one of `openings` (rows of code points, -1 padded) starts at `i`."""
    n = cps.shape[0]
    for row in range(openings.shape[0]):
        matched = True
        for k in range(openings.shape[1]):
            if openings[row, k] == -1:
                break
            if i + k >= n:
                matched = False
                break
            c = np.int64(cps[i + k])
            if fold:
                c = _folded(c)
            if c != openings[row, k]:
                matched = False
                break
        if matched:
            return True
    return False


@numba.njit(cache=True, nogil=True, inline="always")
def _is_hex_or_colon(c):
    return (48 <= c <= 58) or (65 <= c <= 70) or (97 <= c <= 102)  # 0-9 and ':' (58), A-F, a-f


@numba.njit(cache=True, nogil=True, inline="always")
def _is_email_char(c):  # [A-Za-z0-9._%+-]
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c in (46, 95, 37, 43, 45)


@numba.njit(cache=True, nogil=True)
def _digits_ahead(cps, decimal, i, allowed, span, wanted):
    """Whether `wanted` decimal digits occur from `i` on, before a character outside digits and `allowed` or
    `span` characters."""
    n = cps.shape[0]
    digits = 0
    for k in range(i, min(n, i + span)):
        c = cps[k]
        if decimal[c]:
            digits += 1
            if digits >= wanted:
                return True
        else:
            ok = False
            for a in allowed:
                if c == a:
                    ok = True
                    break
            if not ok:
                return False
    return False


@numba.njit(cache=True, nogil=True)
def _pii_candidates(cps, decimal):
    n = cps.shape[0]
    out = np.empty((8, n + 1), np.int64)
    found = np.zeros(8, np.int64)
    PEM, TOKEN, SECRET, EMAIL, CARD, IPV4, PHONE, IPV6 = 0, 1, 2, 3, 4, 5, 6, 7
    card_chars = np.array([32, 45], np.uint32)  # ' ', '-'
    ipv4_chars = np.array([46], np.uint32)  # '.'
    phone_chars = np.array([32, 46, 45, 40, 41, 43], np.uint32)  # ' ', '.', '-', '(', ')', '+'
    run_start = -1  # current run of hex digits and colons
    colons = 0
    for i in range(n):
        c = cps[i]
        if c == 45 and _opens(cps, i, _PEM_OPENING_CODES, False):
            out[PEM, found[PEM]] = i
            found[PEM] += 1
        if (c == 65 or c == 103) and _opens(cps, i, _TOKEN_OPENING_CODES, False):
            out[TOKEN, found[TOKEN]] = i
            found[TOKEN] += 1
        f = _folded(np.int64(c))
        if (f == 97 or f == 115 or f == 116 or f == 112) and _opens(cps, i, _SECRET_OPENING_CODES, True):
            out[SECRET, found[SECRET]] = i
            found[SECRET] += 1
        if decimal[c] and (i == 0 or not decimal[cps[i - 1]]):
            if _digits_ahead(cps, decimal, i, card_chars, 37, 13):
                out[CARD, found[CARD]] = i
                found[CARD] += 1
            if _digits_ahead(cps, decimal, i, ipv4_chars, 15, 4) and _dots_ahead(cps, decimal, i):
                out[IPV4, found[IPV4]] = i
                found[IPV4] += 1
            if i > 0 and (cps[i - 1] == 43 or cps[i - 1] == 40):  # '+' or '(' before the digits
                if _digits_ahead(cps, decimal, i - 1, phone_chars, 22, 7):
                    out[PHONE, found[PHONE]] = i - 1
                    found[PHONE] += 1
            if _digits_ahead(cps, decimal, i, phone_chars, 22, 7):
                out[PHONE, found[PHONE]] = i
                found[PHONE] += 1
        if _is_hex_or_colon(c):
            if run_start == -1:
                run_start = i
                colons = 0
            if c == 58:
                colons += 1
        else:
            if run_start != -1 and colons >= 2:
                out[IPV6, found[IPV6]] = run_start
                found[IPV6] += 1
            run_start = -1
        if c == 64:  # '@': the address starts at the run of address characters before it, or after a '%' in it
            start = i
            while start > 0 and _is_email_char(cps[start - 1]):
                start -= 1
            if start < i:
                if found[EMAIL] == 0 or out[EMAIL, found[EMAIL] - 1] < start:
                    out[EMAIL, found[EMAIL]] = start
                    found[EMAIL] += 1
                for k in range(start, i - 1):
                    if cps[k] == 37 and (found[EMAIL] == 0 or out[EMAIL, found[EMAIL] - 1] < k + 1):
                        out[EMAIL, found[EMAIL]] = k + 1
                        found[EMAIL] += 1
    if run_start != -1 and colons >= 2:
        out[IPV6, found[IPV6]] = run_start
        found[IPV6] += 1
    return (
        out[PEM, : found[PEM]].copy(),
        out[TOKEN, : found[TOKEN]].copy(),
        out[SECRET, : found[SECRET]].copy(),
        out[EMAIL, : found[EMAIL]].copy(),
        out[CARD, : found[CARD]].copy(),
        out[IPV4, : found[IPV4]].copy(),
        out[PHONE, : found[PHONE]].copy(),
        out[IPV6, : found[IPV6]].copy(),
    )


@numba.njit(cache=True, nogil=True)
def _dots_ahead(cps, decimal, i):
    """Whether three dots follow among the digits and dots from `i` (an IPv4 address needs them)."""
    dots = 0
    for k in range(i, min(cps.shape[0], i + 15)):
        if cps[k] == 46:
            dots += 1
            if dots == 3:
                return True
        elif not decimal[cps[k]]:
            return False
    return False
