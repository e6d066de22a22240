"""Compiled kernels (numba) behind data_code.dedupe.core, which defines the hashes and is their only caller.

Engines call core, never these. Documents are byte ranges of uint8 arrays; normalized text is words (bytes other
than 32) joined by single spaces, as normalize.py produces it.
"""

from __future__ import annotations

import numba
import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
SHINGLE_SEED = np.uint64(0x9E3779B97F4A7C15)
BAND_SEED = np.uint64(0xD6E8FEB86659FD93)
_DIGEST_PRIME = np.uint64(0x9FB21C651E98DF25)  # the odd multiplier of the exact digest's second lane
_SPACE = 32


@numba.njit(cache=True, nogil=True)
def fmix64(h):
    """MurmurHash3's 64-bit finalizer: every input bit affects every output bit."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _split_words(source, start, end, table, states, lengths):
    """Words of source[start:end] mapped through `table` (a byte mapped to 32 separates words; runs of separators
    count as one, leading and trailing ones as none): their FNV-1a-64 states into states[w] and byte counts into
    lengths[w]. Returns the number of words.

    Branch-free per byte (a word ending cannot be predicted): every byte stores the running word at slot `words`,
    which only advances when a separator ends a non-empty word, so later bytes overwrite the unfinished slot."""
    words, state, length = 0, FNV_OFFSET, np.uint64(0)
    for i in range(start, end):
        byte = np.uint64(table[source[i]])
        separator = byte == _SPACE
        states[words] = state
        lengths[words] = length
        words += separator & (length > 0)
        state = FNV_OFFSET if separator else (state ^ byte) * FNV_PRIME
        length = np.uint64(0) if separator else length + np.uint64(1)
    states[words] = state
    lengths[words] = length
    return words + (length > 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _hash_words(states, lengths, words):
    """Word hash = fmix64(FNV-1a-64 state ^ byte count), in place over `states`."""
    for w in range(words):
        states[w] = fmix64(states[w] ^ lengths[w])


@numba.njit(cache=True, nogil=True)
def _word_buffers(starts, ends):
    """Scratch for _split_words: room for the words of the longest document (a word and its separator >= 2 bytes)."""
    longest = 0
    for d in range(len(starts)):
        longest = max(longest, ends[d] - starts[d])
    return np.empty(longest // 2 + 2, np.uint64), np.empty(longest // 2 + 2, np.uint64)


@numba.njit(cache=True, nogil=True, inline="always")
def _shingle_hashes(word_hashes, words, ngram, out):
    """Hashes of the word n-grams (all words, when fewer than ngram) into out; returns how many. The hash of
    word_hashes[s:s + n]: h = SHINGLE_SEED, h = (h ^ word) * FNV_PRIME for each word in order, then fmix64(h ^ n).
    Computed word position by word position over all shingles at once, so the 64-bit multiplies vectorize."""
    span = min(ngram, words)
    count = words - span + 1 if words > 0 else 0
    for s in range(count):
        out[s] = SHINGLE_SEED
    for k in range(span):
        for s in range(count):
            out[s] = (out[s] ^ word_hashes[s + k]) * FNV_PRIME
    for s in range(count):
        out[s] = fmix64(out[s] ^ np.uint64(span))
    return count


@numba.njit(cache=True, nogil=True, inline="always")
def _digest(word_hashes, words):
    """The exact key: two FNV-style folds of the word hashes (different seeds and odd multipliers), each finalized
    with the word count by fmix64. Equal word sequences, i.e. equal normalized texts, give equal keys."""
    first, second = FNV_OFFSET, BAND_SEED
    for w in range(words):
        first = (first ^ word_hashes[w]) * FNV_PRIME
        second = (second ^ word_hashes[w]) * _DIGEST_PRIME
    count = np.uint64(words)
    return fmix64(first ^ count), fmix64(second ^ (count * SHINGLE_SEED))


@numba.njit(cache=True, nogil=True)
def digest_kernel(source, starts, ends, table):
    """(D, 2) uint64 exact keys (_digest) of documents source[starts[d]:ends[d]] mapped through `table`."""
    keys = np.empty((len(starts), 2), np.uint64)
    states, lengths = _word_buffers(starts, ends)
    for d in range(len(starts)):
        words = _split_words(source, starts[d], ends[d], table, states, lengths)
        _hash_words(states, lengths, words)
        keys[d, 0], keys[d, 1] = _digest(states, words)
    return keys


@numba.njit(cache=True, nogil=True)
def shingle_kernel(source, starts, ends, table, ngram):
    """Word n-gram hashes of documents source[starts[d]:ends[d]] mapped through `table` (uint8; what lies between
    documents is never read).

    Word hash: fmix64(FNV-1a-64(word bytes) ^ length). Shingle hash: see _shingle_hashes.
    A document with fewer than `ngram` words yields one shingle of all its words; an empty one yields none.
    Returns (hashes uint64 (S,), offsets int64 (D + 1,)); hashes of document d are hashes[offsets[d]:offsets[d+1]].
    """
    documents = len(starts)
    capacity = 0
    for d in range(documents):
        capacity += (ends[d] - starts[d] + 1) // 2 + 1  # a word takes >= 2 bytes with its separator
    hashes = np.empty(capacity, np.uint64)
    states, lengths = _word_buffers(starts, ends)
    offsets = np.zeros(documents + 1, np.int64)
    for d in range(documents):
        words = _split_words(source, starts[d], ends[d], table, states, lengths)
        _hash_words(states, lengths, words)
        offsets[d + 1] = offsets[d] + _shingle_hashes(states, words, ngram, hashes[offsets[d] :])
    return hashes[: offsets[-1]], offsets


@numba.njit(cache=True, nogil=True)
def unique_sets_kernel(flat, offsets):
    """Sorts each set flat[offsets[d]:offsets[d+1]] and drops repeats: (unique uint64 (U,), offsets int64)."""
    out = np.empty(len(flat), np.uint64)
    sizes = np.zeros(len(offsets), np.int64)
    n = 0
    for d in range(len(offsets) - 1):
        values = np.sort(flat[offsets[d] : offsets[d + 1]])
        for i in range(len(values)):
            if i == 0 or values[i] != values[i - 1]:
                out[n] = values[i]
                n += 1
        sizes[d + 1] = n
    return out[:n], sizes


# ---- MinHash and LSH -----------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _fold(shingle):
    """The 32-bit input of the permutations: low half of x ^ (x >> 32), x a 64-bit shingle hash."""
    return np.uint32((shingle ^ (shingle >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


@numba.njit(cache=True, nogil=True, inline="always")
def _signature(folded, multipliers, increments, out):
    """out[k] = min over x in folded of (a_k * x + b_k) mod 2^32; 0xFFFFFFFF everywhere when folded is empty.

    Permutation by permutation, so that the minimum stays in registers while the loop over the shingles is
    vectorized (8 or 16 of them per 32-bit multiply instruction)."""
    for k in range(len(multipliers)):
        a, b, smallest = multipliers[k], increments[k], np.uint32(0xFFFFFFFF)
        for i in range(len(folded)):
            smallest = min(smallest, np.uint32(a * folded[i] + b))
        out[k] = smallest


@numba.njit(cache=True, nogil=True)
def minhash_kernel(flat, offsets, multipliers, increments):
    """(D, K) uint32 MinHash of the shingle hashes flat[offsets[d]:offsets[d+1]] (see _signature)."""
    signatures = np.empty((len(offsets) - 1, len(multipliers)), np.uint32)
    folded = np.empty(len(flat), np.uint32)
    for i in range(len(flat)):
        folded[i] = _fold(flat[i])
    for d in range(len(offsets) - 1):
        _signature(folded[offsets[d] : offsets[d + 1]], multipliers, increments, signatures[d])
    return signatures


@numba.njit(cache=True, nogil=True)
def document_kernel(source, starts, ends, table, ngram, multipliers, increments):
    """digest_kernel, shingle_kernel and minhash_kernel of documents source[starts[d]:ends[d]] mapped through
    `table`, in one pass that stores neither the normalized text nor the shingles of more than one document.

    Returns (exact (D, 2) uint64, signatures (D, K) uint32).
    """
    documents = len(starts)
    exact = np.empty((documents, 2), np.uint64)
    signatures = np.empty((documents, len(multipliers)), np.uint32)
    states, lengths = _word_buffers(starts, ends)
    hashes = np.empty(len(states), np.uint64)  # of the current document: at most as many shingles as words
    folded = np.empty(len(states), np.uint32)
    for d in range(documents):
        words = _split_words(source, starts[d], ends[d], table, states, lengths)
        _hash_words(states, lengths, words)
        exact[d, 0], exact[d, 1] = _digest(states, words)
        shingles = _shingle_hashes(states, words, ngram, hashes)
        for i in range(shingles):
            folded[i] = _fold(hashes[i])
        _signature(folded[:shingles], multipliers, increments, signatures[d])
    return exact, signatures


@numba.njit(cache=True, nogil=True)
def band_kernel(signatures, bands, rows):
    """(D, bands) uint64 keys: fmix64 of an FNV-style fold of band i's rows, seeded with i; 0 for an empty set."""
    keys = np.empty((signatures.shape[0], bands), np.uint64)
    for d in range(signatures.shape[0]):
        empty = True
        for k in range(bands * rows):
            if signatures[d, k] != np.uint32(0xFFFFFFFF):
                empty = False
        for band in range(bands):
            h = fmix64(BAND_SEED ^ np.uint64(band))
            for r in range(rows):
                h = (h ^ np.uint64(signatures[d, band * rows + r])) * FNV_PRIME
            h = fmix64(h)
            if empty:
                h = np.uint64(0)  # EMPTY_BAND_KEY
            elif h == np.uint64(0):
                h = np.uint64(1)  # a real key never equals EMPTY_BAND_KEY
            keys[d, band] = h
    return keys
