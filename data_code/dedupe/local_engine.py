"""The local engine: exact dedupe, MinHash LSH on a process pool over Arrow record batches, verification, clusters.

Memory stays bounded by the corpus *count*, not its text: pass 1 keeps per document only its band keys, exact key
and the small columns that choose a representative; pass 2 re-reads only the documents in candidate pairs to get
their shingle sets for true Jaccard. See config.predict_peak_memory_bytes.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.core import (
    DUPLICATE_CLUSTER_SCHEMA,
    MinHasher,
    arrow_shingle_sets,
    band_keys,
    hash_arrow,
    pair_jaccards,
)
from data_code.dedupe.lsh import candidate_pairs, connected_components, exact_groups, order_ranks


@lru_cache(maxsize=4)
def _minhasher(num_perm: int, seed: int) -> MinHasher:
    return MinHasher(num_perm, seed)


def _arrow(texts: pa.Array | list[str]) -> pa.Array:
    return texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())


def hash_batch(texts: pa.Array | list[str], config: DedupeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(exact keys (B,) 'S16', band keys (B, bands) uint64) of a batch of texts, truncated to max_text_chars."""
    minhasher = _minhasher(config.num_perm, config.seed)
    exact, signatures = hash_arrow(_arrow(texts), config.max_text_chars, config.ngram, minhasher)
    return exact.view("S16").ravel(), band_keys(signatures, config.bands, config.rows)  # (B,) 16 raw bytes each


def shingle_sets(texts: pa.Array | list[str], config: DedupeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique shingle sets of texts, stored flat: (hashes uint64 (S,), offsets int64 (B + 1,))."""
    return arrow_shingle_sets(_arrow(texts), config.max_text_chars, config.ngram)


@dataclass
class CorpusIndex:
    """What pass 1 keeps per document: the keys to group and bucket it, and its rank as a representative."""

    doc_ids: pa.Array  # (D,) string
    ranks: np.ndarray  # (D,) int64, 0 = the document to keep first
    exact_keys: np.ndarray  # (D,) S16
    band_keys: np.ndarray  # (D, bands) uint64


def _texts_in_batches(path: str, columns: list[str], batch_size: int):
    # memory_map: pages are read from the page cache in place, not copied into read buffers first (~10% faster)
    yield from pq.ParquetFile(path, memory_map=True).iter_batches(batch_size=batch_size, columns=columns)


def _hashed_batches(path: str, config: DedupeConfig, small: list):
    """Yields hash_batch results in file order; appends each batch's small columns to `small` as it reads."""
    columns = ["doc_id", "quality_score", "fetch_time", "text"]
    batches = _texts_in_batches(path, columns, config.batch_size)
    if config.workers == 1 or pq.ParquetFile(path).metadata.num_rows <= config.batch_size:  # a pool would not pay
        for batch in batches:
            small.append(batch.drop_columns(["text"]))
            yield hash_batch(batch.column("text"), config)
        return
    # spawn, not fork: forking a process that already runs Arrow's thread pool can deadlock the child.
    with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque()
        for batch in batches:
            small.append(batch.drop_columns(["text"]))
            pending.append(pool.submit(hash_batch, batch.column("text"), config))
            if len(pending) >= 2 * config.workers:  # bounded in flight: memory does not grow with the corpus
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def index_corpus(path: str, config: DedupeConfig) -> CorpusIndex:
    """Pass 1: exact keys and band keys of every document, and the representative order."""
    small, exact, keys = [], [], []
    for exact_keys, batch_keys in _hashed_batches(path, config, small):
        exact.append(exact_keys)
        keys.append(batch_keys)
    table = pa.Table.from_batches(small).combine_chunks()  # the small columns only: no text
    doc_ids = table.column("doc_id").combine_chunks()
    return CorpusIndex(
        doc_ids=doc_ids,
        ranks=order_ranks(table.column("quality_score"), table.column("fetch_time"), doc_ids),
        exact_keys=np.concatenate(exact),
        band_keys=np.concatenate(keys),
    )


def _candidate_shingles(path: str, rows: np.ndarray, config: DedupeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: shingle sets of the documents at sorted `rows` (flat hashes, offsets), one batch of texts at a time."""
    flats, sizes, start = [], [np.zeros(1, np.int64)], 0
    for batch in _texts_in_batches(path, ["text"], config.batch_size):
        wanted = rows[(rows >= start) & (rows < start + batch.num_rows)] - start
        start += batch.num_rows
        if len(wanted):
            flat, offsets = shingle_sets(batch.column("text").take(pa.array(wanted)), config)
            flats.append(flat)
            sizes.append(np.diff(offsets))
    offsets = np.cumsum(np.concatenate(sizes))
    return (np.concatenate(flats) if flats else np.empty(0, np.uint64)), offsets


def _cluster_table(found: PairSearch, component: np.ndarray, stats: dict) -> pa.Table:
    """One DUPLICATE_CLUSTER_SCHEMA row per document that is not kept, in corpus order."""
    group, leaders, (flat, offsets), position = found.group, found.leaders, found.store, found.position
    rep_group = component[group]  # (D,) a component's label is its smallest group, i.e. its best-ranked leader
    rep_doc = leaders[rep_group]
    removed = np.flatnonzero(rep_doc != np.arange(len(group)))
    exact = group[removed] == rep_group[removed]
    near = removed[~exact]
    similarity = np.ones(len(removed))
    similarity[~exact] = pair_jaccards(
        flat, offsets, position[leaders[group[near]]], position[rep_doc[near]]
    )  # an exact duplicate's shingles are its group leader's
    ids = found.index.doc_ids
    reps = ids.take(pa.array(rep_doc[removed]))
    table = pa.table(
        {
            "doc_id": ids.take(pa.array(removed)),
            "cluster_id": reps,
            "representative": reps,
            "similarity": similarity,
            "kind": np.where(exact, "exact", "near").astype(object),
        },
        schema=DUPLICATE_CLUSTER_SCHEMA,
    )
    return table.replace_schema_metadata({"lmforge.dedupe.stats": json.dumps(stats)})


@dataclass
class PairSearch:
    """Exact groups and LSH pairs of a corpus. Groups are numbered by their leader's rank (0 = best)."""

    index: CorpusIndex
    group: np.ndarray  # (D,) exact group of each document
    leaders: np.ndarray  # (G,) row of each group's best-ranked document, the only one LSH sees
    left: np.ndarray  # (P,) candidate pairs of groups, left < right
    right: np.ndarray  # (P,)
    similarity: np.ndarray  # (P,) true Jaccard of the pair's leaders
    edges: np.ndarray  # (P,) bool: the pair links its groups (verified, or every candidate without verification)
    store: tuple[np.ndarray, np.ndarray]  # shingle sets of the candidate documents (flat, offsets)
    position: np.ndarray  # (D,) document row -> set number in store (-1: not a candidate)


def search_pairs(documents_path: str, config: DedupeConfig) -> PairSearch:
    """Passes 1 and 2: exact groups, LSH candidate pairs among group leaders, and their true Jaccard."""
    index = index_corpus(documents_path, config)
    # Groups numbered by their leader's rank: "smallest group number" means "best representative".
    group, leaders = exact_groups(index.exact_keys.view(np.uint64).reshape(-1, 2), index.ranks)
    left, right = candidate_pairs(index.band_keys[leaders])  # over groups: exact duplicates hashed once
    involved = np.unique(np.concatenate([leaders[left], leaders[right]]))  # sorted document rows
    store = _candidate_shingles(documents_path, involved, config)
    position = np.full(len(group), -1, np.int64)
    position[involved] = np.arange(len(involved))
    similarity = pair_jaccards(*store, position[leaders[left]], position[leaders[right]])
    edges = similarity >= config.threshold if config.verify_candidates else np.ones(len(left), bool)
    return PairSearch(index, group, leaders, left, right, similarity, edges, store, position)


def find_clusters(documents_path: str, config: DedupeConfig) -> pa.Table:
    """Every document that is not kept, with its cluster (DUPLICATE_CLUSTER_SCHEMA).

    The schema metadata key b"lmforge.dedupe.stats" holds JSON engine counters (candidate_pairs, verified_pairs,
    verification_store_bytes); stage.deduplicate reads them when present.
    """
    if pq.ParquetFile(documents_path).metadata.num_rows == 0:
        return DUPLICATE_CLUSTER_SCHEMA.empty_table()
    found = search_pairs(documents_path, config)
    # A component's label is its smallest group number, which is its best-ranked leader: the representative.
    component = connected_components(len(found.leaders), found.left[found.edges], found.right[found.edges])
    stats = {
        "candidate_pairs": int(len(found.left)),
        "verified_pairs": int(found.edges.sum()),
        "verification_store_bytes": int(found.store[0].nbytes + found.store[1].nbytes),
    }
    return _cluster_table(found, component, stats)
