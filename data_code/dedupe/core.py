"""The shared core of near-duplicate removal: both engines (local and Spark) call exactly these functions.

    normalize_text(text) -> str                       NFKC, lowercase, diacritics stripped, punctuation -> space,
                                                      digits -> '0', whitespace collapsed
    normalize_bytes(text) -> bytes                    UTF-8 of normalize_text(text)
    normalize_arrow(texts, max_chars)                 (buffer, offsets): normalize_bytes of an Arrow string array,
                                                      compiled for ASCII documents (the path engines use)
    shingle_hashes(normalized, ngram) -> uint64[]     sorted unique hashes of the word n-grams of a normalized text
    batch_shingle_hashes(normalized_bytes, ngram)     (flat uint64 hashes, int64 offsets) for a batch, not unique
    buffer_shingle_hashes(buffer, offsets, ngram)     the same from normalize_arrow's output
    MinHasher(num_perm, seed).signatures(sets)        (B, num_perm) uint32 MinHash signatures
    MinHasher(...).batch_signatures(flat, offsets)    the same from batch_shingle_hashes' output
    band_keys(signatures, bands, rows) -> uint64      (B, bands) LSH bucket keys; EMPTY_BAND_KEY never collides
    exact_key(normalized) -> str                      128-bit hex digest of the normalized text
    exact_key_words(buffer, offsets) -> uint64        (B, 2) the same digests for normalize_arrow's output
    jaccard(a, b) -> float                            true Jaccard of two sorted unique shingle-hash sets
    pair_jaccards(flat, offsets, left, right)         the same for many pairs of sets stored flat (compiled)
    choose_bands_rows(threshold, num_perm, ...)       (bands, rows) via datasketch's false positive/negative weights
    representative_order_key(quality, fetch, doc_id)  sort key: best quality, then earliest fetch, then smallest id
    DUPLICATE_CLUSTER_SCHEMA                          the table find_clusters returns (one row per removed doc)

Everything is deterministic across processes and machines: no Python hash(), constants fixed here, permutations
drawn from a splitmix64 stream of `seed`. The hot loops are compiled with numba (measured ~130x faster than a
numpy broadcast of the permutations, which is bound by memory traffic on the (shingles, num_perm) matrix).
"""

from __future__ import annotations

import math
from datetime import datetime

import numba
import numpy as np
import pyarrow as pa

from data_code.dedupe.normalize import normalize_arrow, normalize_bytes, normalize_text

__all__ = ["normalize_arrow", "normalize_bytes", "normalize_text"]  # re-exported: one import site for engines

EMPTY_BAND_KEY = 0  # band key of an empty shingle set: engines never form candidates from it
SENTINEL_MINHASH = np.uint32(0xFFFFFFFF)  # every value of an empty set's signature row
DUPLICATE_CLUSTER_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # a removed document
        pa.field("cluster_id", pa.string(), nullable=False),  # the cluster's name: its representative's doc_id
        pa.field("representative", pa.string(), nullable=False),  # the kept document of the cluster
        pa.field("similarity", pa.float64(), nullable=False),  # true Jaccard of 5-gram shingles to representative
        pa.field("kind", pa.string(), nullable=False),  # exact (same normalized text) | near
    ]
)

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_SHINGLE_SEED = np.uint64(0x9E3779B97F4A7C15)
_BAND_SEED = np.uint64(0xD6E8FEB86659FD93)


def exact_key(normalized: str) -> str:
    """128-bit hex digest of the normalized text (two independent 64-bit lanes, see _digest): equal keys mean
    equal normalized texts (a chance collision needs ~2^64 documents)."""
    data = np.frombuffer(normalized.encode("utf-8"), np.uint8)
    return exact_key_words(data, np.array([0, len(data)], np.int64))[0].astype(">u8").tobytes().hex()


def exact_key_words(buffer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(B, 2) uint64 exact keys of normalize_arrow's (buffer, offsets), the form engines store (16 bytes each)."""
    return _digest_kernel(buffer, offsets)


# ---- shingles ------------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _fmix64(h):
    """MurmurHash3's 64-bit finalizer: every input bit affects every output bit."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(cache=True, nogil=True)
def _digest_kernel(buffer, offsets):
    """(D, 2) uint64: per document, FNV-1a-64 and a second lane with another offset and odd multiplier, each
    finalized with the length by fmix64."""
    keys = np.empty((len(offsets) - 1, 2), np.uint64)
    for d in range(len(offsets) - 1):
        first, second = _FNV_OFFSET, _BAND_SEED
        for i in range(offsets[d], offsets[d + 1]):
            first = (first ^ np.uint64(buffer[i])) * _FNV_PRIME
            second = (second ^ np.uint64(buffer[i])) * np.uint64(0x9FB21C651E98DF25)
        length = np.uint64(offsets[d + 1] - offsets[d])
        keys[d, 0] = _fmix64(first ^ length)
        keys[d, 1] = _fmix64(second ^ (length * _SHINGLE_SEED))
    return keys


@numba.njit(cache=True, nogil=True)
def _combine(word_hashes, start, count):
    """Hash of word_hashes[start:start + count]: an FNV-style fold, then fmix64."""
    h = _SHINGLE_SEED
    for k in range(start, start + count):
        h = (h ^ word_hashes[k]) * _FNV_PRIME
    return _fmix64(h ^ np.uint64(count))


@numba.njit(cache=True, nogil=True)
def _shingle_kernel(buffer, doc_offsets, ngram):
    """Word n-gram hashes of normalized documents; document d is buffer[doc_offsets[d]:doc_offsets[d+1]] (uint8,
    words split by single spaces; what lies between documents is never read).

    Word hash: fmix64(FNV-1a-64(word bytes) ^ length). Shingle hash: FNV-style fold of its word hashes, then fmix64.
    A document with fewer than `ngram` words yields one shingle of all its words; an empty one yields none.
    Returns (hashes uint64 (S,), offsets int64 (D + 1,)); hashes of document d are hashes[offsets[d]:offsets[d+1]].
    """
    documents = len(doc_offsets) - 1
    capacity = len(buffer) // 2 + documents + 1  # a word takes >= 2 bytes with its separator
    hashes = np.empty(capacity, np.uint64)
    word_hashes = np.empty(capacity, np.uint64)  # of the current document (no ring buffer: no modulo per word)
    offsets = np.zeros(documents + 1, np.int64)
    out = 0
    for d in range(documents):
        words, word_hash, length, end = 0, _FNV_OFFSET, 0, doc_offsets[d + 1]
        for i in range(doc_offsets[d], end + 1):
            if i < end and buffer[i] != 32:
                word_hash = (word_hash ^ np.uint64(buffer[i])) * _FNV_PRIME
                length += 1
                continue
            if length == 0:
                continue
            word_hashes[words] = _fmix64(word_hash ^ np.uint64(length))
            words += 1
            word_hash, length = _FNV_OFFSET, 0
            if words >= ngram:
                hashes[out] = _combine(word_hashes, words - ngram, ngram)
                out += 1
        if 0 < words < ngram:
            hashes[out] = _combine(word_hashes, 0, words)
            out += 1
        offsets[d + 1] = out
    return hashes[:out], offsets


def batch_shingle_hashes(normalized: list[bytes], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a batch of normalized texts (bytes): (flat uint64 (S,), offsets int64 (B + 1,)).

    Per document the hashes are in text order and may repeat; MinHash does not care. Use shingle_hashes for sets.
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    lengths = np.fromiter((len(text) + 1 for text in normalized), np.int64, len(normalized))
    doc_offsets = np.zeros(len(normalized) + 1, np.int64)
    np.cumsum(lengths, out=doc_offsets[1:])
    doc_offsets[1:] -= 1  # each document's end excludes the joining space
    buffer = np.frombuffer(b" ".join(normalized) + b" ", np.uint8)
    return _shingle_kernel(buffer, doc_offsets, ngram)


def buffer_shingle_hashes(buffer: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of normalize_arrow's (buffer, offsets): (flat uint64 (S,), offsets int64 (B + 1,))."""
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    return _shingle_kernel(buffer, offsets, ngram)


def shingle_hashes(normalized: str, ngram: int) -> np.ndarray:
    """Sorted unique uint64 hashes of the word n-grams of a normalized text (see _shingle_kernel for the hash)."""
    flat, _ = batch_shingle_hashes([normalized.encode("utf-8")], ngram)
    return np.unique(flat)


# ---- MinHash and LSH -----------------------------------------------------------------------------------------


def _splitmix64(state: int, count: int) -> list[int]:
    """`count` pseudo-random 64-bit integers from splitmix64 (pure Python: identical on every machine)."""
    mask, values = (1 << 64) - 1, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        values.append(z ^ (z >> 31))
    return values


@numba.njit(cache=True, nogil=True)
def _minhash_kernel(flat, offsets, multipliers, increments):
    """(D, K) uint32 MinHash: permutation k of shingle x is the high 32 bits of (a_k * x + b_k) mod 2^64."""
    documents, permutations = len(offsets) - 1, len(multipliers)
    signatures = np.empty((documents, permutations), np.uint32)
    smallest = np.empty(permutations, np.uint64)
    for d in range(documents):
        # The high half of the smallest 64-bit value is the smallest high half: min first, shift once (faster).
        smallest[:] = np.uint64(0xFFFFFFFFFFFFFFFF)
        for i in range(offsets[d], offsets[d + 1]):
            x = flat[i]
            for k in range(permutations):
                smallest[k] = min(smallest[k], multipliers[k] * x + increments[k])
        for k in range(permutations):
            signatures[d, k] = np.uint32(smallest[k] >> np.uint64(32))
    return signatures


class MinHasher:
    """MinHash signatures with `num_perm` multiply-add-shift permutations seeded from `seed` (deterministic)."""

    def __init__(self, num_perm: int = 112, seed: int = 1):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm, self.seed = num_perm, seed
        values = _splitmix64(seed, 2 * num_perm)
        self.multipliers = np.array([v | 1 for v in values[:num_perm]], np.uint64)  # odd: a bijection mod 2^64
        self.increments = np.array(values[num_perm:], np.uint64)

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """(B, num_perm) uint32 signatures; an empty set gets an all-SENTINEL_MINHASH row (band key EMPTY)."""
        lengths = np.fromiter((len(s) for s in shingle_sets), np.int64, len(shingle_sets))
        offsets = np.zeros(len(shingle_sets) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(shingle_sets).astype(np.uint64) if shingle_sets else np.empty(0, np.uint64)
        return self.batch_signatures(flat, offsets)

    def batch_signatures(self, flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Signatures from batch_shingle_hashes' (flat, offsets): (B, num_perm) uint32."""
        return _minhash_kernel(flat, offsets, self.multipliers, self.increments)


@numba.njit(cache=True, nogil=True)
def _band_kernel(signatures, bands, rows):
    keys = np.empty((signatures.shape[0], bands), np.uint64)
    for d in range(signatures.shape[0]):
        empty = True
        for k in range(bands * rows):
            if signatures[d, k] != np.uint32(0xFFFFFFFF):
                empty = False
        for band in range(bands):
            h = _fmix64(_BAND_SEED ^ np.uint64(band))
            for r in range(rows):
                h = (h ^ np.uint64(signatures[d, band * rows + r])) * _FNV_PRIME
            h = _fmix64(h)
            if empty:
                h = np.uint64(0)  # EMPTY_BAND_KEY
            elif h == np.uint64(0):
                h = np.uint64(1)  # a real key never equals EMPTY_BAND_KEY
            keys[d, band] = h
    return keys


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(B, bands) uint64 LSH keys: a hash of band i's `rows` values with i mixed in (equal keys = same bucket).

    A row of all SENTINEL_MINHASH (an empty shingle set) gets EMPTY_BAND_KEY in every band: engines skip it.
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands * rows ({bands} * {rows}) exceeds the signature width {signatures.shape[1]}")
    return _band_kernel(np.ascontiguousarray(signatures, np.uint32), bands, rows)


# ---- verification --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _sorted_jaccard(flat_a, start_a, end_a, flat_b, start_b, end_b):
    size_a, size_b = end_a - start_a, end_b - start_b
    if size_a == 0 and size_b == 0:
        return 1.0  # two empty texts are the same text
    i, j, common = start_a, start_b, 0
    while i < end_a and j < end_b:
        if flat_a[i] == flat_b[j]:
            common += 1
            i += 1
            j += 1
        elif flat_a[i] < flat_b[j]:
            i += 1
        else:
            j += 1
    return common / (size_a + size_b - common)


@numba.njit(cache=True, nogil=True)
def _pair_kernel(flat, offsets, left, right):
    out = np.empty(len(left), np.float64)
    for p in range(len(left)):
        a, b = left[p], right[p]
        out[p] = _sorted_jaccard(flat, offsets[a], offsets[a + 1], flat, offsets[b], offsets[b + 1])
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """True Jaccard |a & b| / |a | b| of two sorted unique shingle-hash sets (1.0 when both are empty)."""
    a, b = np.asarray(a, np.uint64), np.asarray(b, np.uint64)
    return float(_sorted_jaccard(a, 0, len(a), b, 0, len(b)))


def pair_jaccards(flat: np.ndarray, offsets: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(P,) float64 true Jaccard of set left[p] and set right[p]; set i is flat[offsets[i]:offsets[i+1]] (sorted
    unique)."""
    return _pair_kernel(flat, offsets, np.asarray(left, np.int64), np.asarray(right, np.int64))


# ---- parameters and representatives --------------------------------------------------------------------------


def choose_bands_rows(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5, *, exact_product: bool = True
) -> tuple[int, int]:
    """(bands, rows) minimizing datasketch's weighted false positive + false negative probability at `threshold`.

    exact_product=False returns datasketch's `_optimal_param` as is (bands * rows may be < num_perm); True (default)
    searches only bands * rows == num_perm with the same error integrals, since DedupeConfig requires equality.
    """
    from datasketch import lsh

    if not exact_product:
        return lsh._optimal_param(threshold, num_perm, fp_weight, fn_weight)
    best, best_error = (num_perm, 1), math.inf
    for bands in range(1, num_perm + 1):
        if num_perm % bands:
            continue
        rows = num_perm // bands
        error = fp_weight * lsh._false_positive_probability(threshold, bands, rows) + (
            fn_weight * lsh._false_negative_probability(threshold, bands, rows)
        )
        if error < best_error:
            best, best_error = (bands, rows), error
    return best


def _timestamp_us(fetch_time) -> int | None:
    if fetch_time is None:
        return None
    if isinstance(fetch_time, datetime):
        return round(fetch_time.timestamp() * 1_000_000)  # naive datetimes are read as local time by Python
    return int(fetch_time)


def representative_order_key(quality_score, fetch_time, doc_id) -> tuple:
    """Sort key choosing a cluster's kept document: highest quality first (None/NaN last), then earliest fetch
    (None last; a datetime or integer microseconds), then the smallest doc_id. The minimum is the representative."""
    no_quality = quality_score is None or math.isnan(quality_score)
    fetch = _timestamp_us(fetch_time)
    return (no_quality, 0.0 if no_quality else -float(quality_score), fetch is None, fetch or 0, doc_id)
