"""The shared core of near-duplicate removal: both engines (local and Spark) call exactly these functions.

    normalize_text(text) -> str                       NFKC, lowercase, diacritics stripped, punctuation -> space,
                                                      digits -> '0', whitespace collapsed
    normalize_bytes(text) -> bytes                    UTF-8 of normalize_text(text)
    normalize_arrow(texts, max_chars)                 (buffer, offsets): normalize_bytes of an Arrow string array,
                                                      compiled for ASCII documents
    hash_arrow(texts, max_chars, ngram, minhasher)    (exact keys (B, 2) uint64, signatures (B, K) uint32) of an
                                                      Arrow string array in one compiled pass (the path engines use)
    shingle_hashes(normalized, ngram) -> uint64[]     sorted unique hashes of the word n-grams of a normalized text
    batch_shingle_hashes(normalized_bytes, ngram)     (flat uint64 hashes, int64 offsets) for a batch, not unique
    buffer_shingle_hashes(buffer, offsets, ngram)     the same from normalize_arrow's output
    arrow_shingle_sets(texts, max_chars, ngram)       (flat, offsets) of sorted unique sets of an Arrow array
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

The hashes. A word hashes to fmix64(FNV-1a-64(its bytes) ^ length); a shingle (ngram consecutive words) to fmix64
of an FNV-style fold of its word hashes: 64 bits, so distinct shingles of a corpus practically never collide. The
exact key of a text is two 64-bit folds of its word hashes (equal word sequences = equal normalized texts).
MinHash permutation k maps a shingle hash x to h_k(x) = (a_k * fold(x) + b_k) mod 2^32, where fold(x) is the low
half of x ^ (x >> 32), a_k is odd (so h_k is a bijection of 32-bit integers), and a_k, b_k are the high halves of a
splitmix64 stream of `seed`. Why this family: the signature keeps 32-bit values anyway, and 32-bit lanes let the
compiler multiply 8 (AVX2) or 16 (AVX-512) shingles per instruction, ~2.5x faster than the 64-bit
multiply-add-shift (a_k * x + b_k) mod 2^64 >> 32 it replaced, whose 64-bit multiplies x86 vectorizes poorly. Since
x is already a uniform 64-bit hash, this simple family behaves like independent random permutations: each
permutation's minima of two sets agree with probability J, the estimate has the variance J(1 - J)/K, and a band
matches with probability J^rows, the S-curve LSH relies on (tests/dedupe/test_core.py measures all three on random
sets with J = 0.5, 0.8, 0.9).

Everything is deterministic across processes and machines: no Python hash(), constants fixed in hashing.py,
permutations drawn from a splitmix64 stream of `seed`. The hot loops are numba kernels (hashing.py); pass 1 of the
engines runs folding, word splitting, the exact key, shingling and MinHash as one of them (hash_arrow), so neither
the normalized text nor the shingles of a batch are ever stored.
"""

from __future__ import annotations

import math
from datetime import datetime

import numba
import numpy as np
import pyarrow as pa

from data_code.dedupe import hashing
from data_code.dedupe.normalize import ASCII_TABLE, arrow_sources, normalize_arrow, normalize_bytes, normalize_text

__all__ = ["normalize_arrow", "normalize_bytes", "normalize_text"]  # re-exported: one import site for engines

EMPTY_BAND_KEY = 0  # band key of an empty shingle set: engines never form candidates from it
SENTINEL_MINHASH = np.uint32(0xFFFFFFFF)  # every value of an empty set's signature row
_IDENTITY = np.arange(256, dtype=np.uint8)  # byte table of text that is normalized already: only 32 separates words
DUPLICATE_CLUSTER_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # a removed document
        pa.field("cluster_id", pa.string(), nullable=False),  # the cluster's name: its representative's doc_id
        pa.field("representative", pa.string(), nullable=False),  # the kept document of the cluster
        pa.field("similarity", pa.float64(), nullable=False),  # true Jaccard of 5-gram shingles to representative
        pa.field("kind", pa.string(), nullable=False),  # exact (same normalized text) | near
    ]
)


def exact_key(normalized: str) -> str:
    """128-bit hex digest of the normalized text: two 64-bit folds of its word hashes (hashing._digest). Equal keys
    mean equal word sequences, i.e. equal normalized texts (a chance collision needs ~2^64 documents, or two distinct
    words with the same 64-bit hash)."""
    data = np.frombuffer(normalized.encode("utf-8"), np.uint8)
    return exact_key_words(data, np.array([0, len(data)], np.int64))[0].astype(">u8").tobytes().hex()


def exact_key_words(buffer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(B, 2) uint64 exact keys of normalize_arrow's (buffer, offsets), the form engines store (16 bytes each)."""
    return hashing.digest_kernel(buffer, offsets[:-1], offsets[1:], _IDENTITY)


# ---- shingles ------------------------------------------------------------------------------------------------


def _check_ngram(ngram: int) -> None:
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")


def batch_shingle_hashes(normalized: list[bytes], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a batch of normalized texts (bytes): (flat uint64 (S,), offsets int64 (B + 1,)).

    Per document the hashes are in text order and may repeat; MinHash does not care. Use shingle_hashes for sets.
    """
    _check_ngram(ngram)
    ends = np.cumsum(np.fromiter((len(text) for text in normalized), np.int64, len(normalized)))
    buffer = np.frombuffer(b"".join(normalized), np.uint8)
    return hashing.shingle_kernel(buffer, ends - np.diff(ends, prepend=0), ends, _IDENTITY, ngram)


def buffer_shingle_hashes(buffer: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of normalize_arrow's (buffer, offsets): (flat uint64 (S,), offsets int64 (B + 1,))."""
    _check_ngram(ngram)
    return hashing.shingle_kernel(buffer, offsets[:-1], offsets[1:], _IDENTITY, ngram)


def arrow_shingle_sets(texts: pa.Array, max_chars: int, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique shingle sets of an Arrow string array's texts truncated to max_chars characters, flat:
    (uint64 (S,), int64 (B + 1,)). Equal to buffer_shingle_hashes of normalize_arrow, made sets, in one pass."""
    _check_ngram(ngram)
    return hashing.unique_sets_kernel(*hashing.shingle_kernel(*arrow_sources(texts, max_chars), ASCII_TABLE, ngram))


def shingle_hashes(normalized: str, ngram: int) -> np.ndarray:
    """Sorted unique uint64 hashes of the word n-grams of a normalized text (see hashing.shingle_kernel)."""
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


class MinHasher:
    """MinHash signatures with `num_perm` permutations h_k(x) = (a_k * fold(x) + b_k) mod 2^32 of the shingle
    hashes (see the module docstring: fold(x) is the low half of x ^ (x >> 32)); a_k (odd) and b_k are the high
    halves of a splitmix64 stream of `seed`, so signatures are the same on every machine."""

    def __init__(self, num_perm: int = 112, seed: int = 1):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm, self.seed = num_perm, seed
        values = [v >> 32 for v in _splitmix64(seed, 2 * num_perm)]
        self.multipliers = np.array([v | 1 for v in values[:num_perm]], np.uint32)  # odd: a bijection mod 2^32
        self.increments = np.array(values[num_perm:], np.uint32)

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """(B, num_perm) uint32 signatures; an empty set gets an all-SENTINEL_MINHASH row (band key EMPTY)."""
        lengths = np.fromiter((len(s) for s in shingle_sets), np.int64, len(shingle_sets))
        offsets = np.zeros(len(shingle_sets) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(shingle_sets).astype(np.uint64) if shingle_sets else np.empty(0, np.uint64)
        return self.batch_signatures(flat, offsets)

    def batch_signatures(self, flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Signatures from batch_shingle_hashes' (flat, offsets): (B, num_perm) uint32."""
        return hashing.minhash_kernel(flat, offsets, self.multipliers, self.increments)


def hash_arrow(texts: pa.Array, max_chars: int, ngram: int, minhasher: MinHasher) -> tuple[np.ndarray, np.ndarray]:
    """(exact keys (B, 2) uint64, signatures (B, num_perm) uint32) of an Arrow string array, each text truncated
    to max_chars characters: exactly exact_key_words and batch_signatures of normalize_arrow and
    buffer_shingle_hashes, computed in one compiled pass that never stores the normalized text or the shingles."""
    _check_ngram(ngram)
    permutations = (minhasher.multipliers, minhasher.increments)
    return hashing.document_kernel(*arrow_sources(texts, max_chars), ASCII_TABLE, ngram, *permutations)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(B, bands) uint64 LSH keys: a hash of band i's `rows` values with i mixed in (equal keys = same bucket).

    A row of all SENTINEL_MINHASH (an empty shingle set) gets EMPTY_BAND_KEY in every band: engines skip it.
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands * rows ({bands} * {rows}) exceeds the signature width {signatures.shape[1]}")
    return hashing.band_kernel(np.ascontiguousarray(signatures, np.uint32), bands, rows)


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
