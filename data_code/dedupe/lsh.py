"""Candidate pairs from LSH band keys, connected components, and the representative order of documents."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_code.dedupe.core import EMPTY_BAND_KEY

# A bucket holding more documents than this links each of them to its first document only (a star, not all pairs):
# components come out the same (when the links verify), and a bucket of 10,000 boilerplate pages costs 10,000 pairs
# instead of 50 million.
MAX_BUCKET_ALL_PAIRS = 64


@numba.njit(cache=True, nogil=True)
def _bucket_pairs(sorted_keys, items, max_all_pairs):
    """Pairs (a, b), a < b, of items sharing a key in `sorted_keys` (runs of equal keys are buckets, their items
    in any order). A bucket of more than max_all_pairs items links each of them to its smallest item only."""
    left, right = [], []
    start, n = 0, len(sorted_keys)
    while start < n:
        end = start + 1
        while end < n and sorted_keys[end] == sorted_keys[start]:
            end += 1
        if end - start <= max_all_pairs:
            for i in range(start, end):
                for j in range(i + 1, end):
                    left.append(min(items[i], items[j]))
                    right.append(max(items[i], items[j]))
        else:
            first = items[start:end].min()
            for i in range(start, end):
                if items[i] != first:
                    left.append(first)
                    right.append(items[i])
        start = end
    return np.array(left, np.int64), np.array(right, np.int64)


def candidate_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique candidate pairs (left < right, sorted) of rows of `keys` (N, bands) sharing a key in any band."""
    found = []
    for band in range(keys.shape[1]):
        column = keys[:, band]
        items = np.flatnonzero(column != EMPTY_BAND_KEY)
        order = np.argsort(column[items])  # not stable (5x faster): _bucket_pairs needs no order within a bucket
        found.append(_bucket_pairs(column[items][order], items[order], MAX_BUCKET_ALL_PAIRS))
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    left = np.concatenate([f[0] for f in found])
    right = np.concatenate([f[1] for f in found])
    encoded = np.unique(left * len(keys) + right)  # one int64 per pair: dedupes the pairs found in several bands
    return encoded // max(len(keys), 1), encoded % max(len(keys), 1)


@numba.njit(cache=True, nogil=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]  # path halving keeps the trees shallow
        x = parent[x]
    return x


@numba.njit(cache=True, nogil=True)
def _union_all(size, left, right):
    parent = np.arange(size)
    for p in range(len(left)):
        a, b = _find(parent, left[p]), _find(parent, right[p])
        if a != b:
            parent[max(a, b)] = min(a, b)
    for x in range(size):
        parent[x] = _find(parent, x)
    return parent


def connected_components(size: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(size,) int64 component label of each item (the smallest item of its component) under edges (left, right)."""
    return _union_all(size, np.asarray(left, np.int64), np.asarray(right, np.int64))


@numba.njit(cache=True, nogil=True)
def _first_seen_groups(keys, order, size):
    """Groups of equal rows of keys (D, 2), numbered in the order their first member appears in `order`, through
    an open-addressing table of `size` slots (a power of two) indexed by the first key word (a uniform hash)."""
    slots = np.full(size, -1, np.int64)  # slot -> group
    group, leaders, groups = np.empty(len(keys), np.int64), np.empty(len(keys), np.int64), 0
    for d in order:
        slot = keys[d, 0] & np.uint64(size - 1)
        while slots[slot] >= 0:
            leader = leaders[slots[slot]]
            if keys[leader, 0] == keys[d, 0] and keys[leader, 1] == keys[d, 1]:
                break
            slot = (slot + np.uint64(1)) & np.uint64(size - 1)
        if slots[slot] < 0:
            slots[slot], leaders[groups] = groups, d
            groups += 1
        group[d] = slots[slot]
    return group, leaders[:groups]


def exact_groups(keys: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each document (D,), leader of each group (G,)) for exact keys (D, 2) uint64 and ranks (D,), a
    permutation of 0..D-1. The leader is the best-ranked member, and groups are numbered by their leader's rank."""
    order = np.empty_like(ranks)
    order[ranks] = np.arange(len(ranks))  # documents, best first
    return _first_seen_groups(np.ascontiguousarray(keys), order, 1 << (2 * len(ranks)).bit_length())  # half full


def order_ranks(quality: pa.Array, fetch_time: pa.Array, doc_id: pa.Array) -> np.ndarray:
    """(N,) int64 rank of each document under core.representative_order_key (0 = the one to keep).

    Vectorized equivalent of sorting by representative_order_key: quality descending (null/NaN last), fetch time
    ascending (null last), doc_id ascending (Arrow compares UTF-8 bytes, which orders like Python's str).
    """
    size = len(doc_id)
    quality_np = pc.fill_null(quality.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    no_quality = np.isnan(quality_np)
    fetch_us = fetch_time.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    no_fetch = pc.is_null(fetch_us).to_numpy(zero_copy_only=False)
    fetch_np = pc.fill_null(fetch_us, 0).to_numpy(zero_copy_only=False)
    id_rank = pc.rank(doc_id, sort_keys="ascending", tiebreaker="first").to_numpy(zero_copy_only=False)
    order = np.lexsort((id_rank, fetch_np, no_fetch, -np.nan_to_num(quality_np), no_quality))  # last key first
    ranks = np.empty(size, np.int64)
    ranks[order] = np.arange(size)
    return ranks


def overlapping_pairs(flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of sets sharing at least one hash, with how many: (left, right, common), left < right, sorted.

    Sets are flat[offsets[i]:offsets[i+1]] (unique within a set). An inverted index (sort the hashes, pair the
    sets in each run) costs the sum of squared run lengths, far below all pairs when the sets are mostly disjoint.
    """
    sets = len(offsets) - 1
    owner = np.repeat(np.arange(sets), np.diff(offsets))
    order = np.argsort(flat, kind="stable")
    left, right = _bucket_pairs(flat[order], owner[order], np.iinfo(np.int64).max)
    encoded, common = np.unique(left * max(sets, 1) + right, return_counts=True)
    return encoded // max(sets, 1), encoded % max(sets, 1), common
