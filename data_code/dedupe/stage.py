"""The dedupe stage: find duplicate clusters with the configured engine, then write what is kept and why not.

Outputs in out_dir: documents.parquet (kept documents, input order), duplicate_clusters.parquet, rejections.parquet
(stage "dedupe", reason exact_duplicate_of:<id> | near_duplicate_of:<id>, and against the history
unchanged:<id>@<day> | exact_duplicate_of_history:<id>@<day> | near_duplicate_of_history:<id>@<day>; score =
Jaccard to the kept document), superseded.parquet (older versions of changed pages), calibration.json and
s_curve.png.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_code.dedupe import calibration
from data_code.dedupe.config import DedupeConfig, predict_peak_memory_bytes
from data_code.dedupe.core import DUPLICATE_CLUSTER_SCHEMA
from data_code.dedupe.history import SUPERSEDED_FILE, SUPERSEDED_SCHEMA, HistoryIndex, match_history
from data_code.document import DOCUMENT_SCHEMA, DOCUMENTS_FILE, REJECTION_SCHEMA, REJECTIONS_FILE

STATS_METADATA_KEY = b"lmforge.dedupe.stats"  # optional JSON engine counters on find_clusters' table


@dataclass
class DedupeStats:
    """What one dedupe run read, kept and removed, and how well its LSH parameters fit the corpus."""

    documents_in: int = 0
    documents_kept: int = 0
    exact_duplicates: int = 0  # removed: same normalized text as the kept document
    near_duplicates: int = 0  # removed: in an LSH cluster (verified Jaccard >= threshold along a chain of pairs)
    clusters: int = 0  # clusters with at least one removed document
    candidate_pairs: int = 0  # LSH candidate pairs among exact-deduplicated documents
    verified_pairs: int = 0  # candidate pairs kept as edges (true Jaccard >= threshold when verifying)
    truncated_documents: int = 0  # documents longer than max_text_chars, hashed on their prefix
    tokens_in: int = 0  # whitespace-separated words (an approximation of tokens)
    tokens_kept: int = 0
    domains_in: dict[str, int] = field(default_factory=dict)
    domains_kept: dict[str, int] = field(default_factory=dict)
    bands: int = 0
    rows: int = 0
    threshold: float = 0.0
    calibration: dict = field(default_factory=dict)  # precision, recall, sample_size... (see calibration.py)
    predicted_peak_memory_bytes: int = 0  # config.predict_peak_memory_bytes, computed before the work
    verification_store_bytes: int = 0  # shingle sets held for verification (known only after LSH)
    engine: str = ""
    elapsed_s: float = 0.0
    # Against the history (history.py): what earlier days kept.
    history: str = "none"  # the setting: all | none | last_N_days
    history_days: int = 0  # earlier days compared with
    history_documents: int = 0  # their kept documents still trained on
    new: int = 0  # kept: a URL no earlier day kept
    superseding: int = 0  # kept: a changed page, replacing its older version
    unchanged: int = 0  # removed: same URL, same text as its newest kept version
    superseded: int = 0  # older versions replaced tonight (listed in superseded.parquet)
    exact_duplicates_of_history: int = 0
    near_duplicates_of_history: int = 0
    history_candidate_pairs: int = 0
    history_lookup_s: float = 0.0

    def as_stats(self) -> dict:
        """Plain dict of every field (for a manifest's stats and MLflow metrics)."""
        return asdict(self)


def _mean_text_bytes(path: str) -> float:
    """Uncompressed bytes per document of the text column, from Parquet metadata (no data read)."""
    metadata = pq.ParquetFile(path).metadata
    if metadata.num_rows == 0:
        return 0.0
    column = pq.read_schema(path).get_field_index("text")
    total = sum(metadata.row_group(i).column(column).total_uncompressed_size for i in range(metadata.num_row_groups))
    return total / metadata.num_rows


def find_clusters(documents_path: str, config: DedupeConfig, spark_session=None) -> pa.Table:
    """Removed documents and their clusters, from the engine config.engine names."""
    if config.engine == "spark":
        from data_code.dedupe import spark_engine

        return spark_engine.find_clusters(documents_path, config, spark_session)
    from data_code.dedupe import local_engine

    return local_engine.find_clusters(documents_path, config)


def _removed_rows(path: str, clusters: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """(sorted row numbers of removed documents, clusters with a `row` column, in row order).

    Joining on doc_id (not a Python set) keeps memory in Arrow. Should a doc_id repeat in the corpus, its first
    row that is a cluster's representative stays and only the other rows go.
    """
    ids = pq.read_table(path, columns=["doc_id"]).column("doc_id")
    rows = pa.table({"doc_id": ids, "row": pa.array(np.arange(len(ids)))})
    joined = clusters.join(rows, "doc_id").sort_by("row")
    is_rep = pc.equal(joined.column("doc_id"), joined.column("representative")).to_numpy(zero_copy_only=False)
    repeated_id = np.ones(len(joined), bool)  # True on every row of a doc_id but its first
    _, first = np.unique(joined.column("doc_id").to_numpy(zero_copy_only=False), return_index=True)
    repeated_id[first] = False
    joined = joined.filter(pa.array(~is_rep | repeated_id))
    return joined.column("row").to_numpy(), joined


def _word_count(texts: pa.Array) -> int:
    return int(pc.sum(pc.list_value_length(pc.utf8_split_whitespace(texts))).as_py() or 0)


def _write_kept(path: str, out_dir: pathlib.Path, removed: np.ndarray, config: DedupeConfig, stats: DedupeStats):
    """Streams the corpus once: writes kept documents, counts words, domains and truncated documents."""
    domains_in, domains_kept, start = Counter(), Counter(), 0
    with pq.ParquetWriter(out_dir / DOCUMENTS_FILE, DOCUMENT_SCHEMA) as writer:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=config.batch_size):
            gone = removed[(removed >= start) & (removed < start + batch.num_rows)] - start
            start += batch.num_rows
            keep = np.ones(batch.num_rows, bool)
            keep[gone] = False
            kept = batch.filter(pa.array(keep))
            writer.write_table(pa.Table.from_batches([kept]).cast(DOCUMENT_SCHEMA))
            stats.tokens_in += _word_count(batch.column("text"))
            stats.tokens_kept += _word_count(kept.column("text"))
            stats.truncated_documents += int(
                pc.sum(pc.greater(pc.utf8_length(batch.column("text")), config.max_text_chars)).as_py() or 0
            )
            domains_in.update(batch.column("domain").to_pylist())
            domains_kept.update(kept.column("domain").to_pylist())
    stats.domains_in, stats.domains_kept = dict(sorted(domains_in.items())), dict(sorted(domains_kept.items()))


def _rejections(joined: pa.Table) -> pa.Table:
    reasons = pc.binary_join_element_wise(joined.column("kind"), "_duplicate_of:", joined.column("representative"), "")
    return pa.table(
        {
            "doc_id": joined.column("doc_id"),
            "url": joined.column("url"),
            "stage": pa.array(["dedupe"] * len(joined), pa.string()),
            "reason": reasons,
            "score": joined.column("similarity"),
            "detail": pa.array([f"cluster {c}" for c in joined.column("cluster_id").to_pylist()], pa.string()),
            "language": joined.column("language"),
        },
        schema=REJECTION_SCHEMA,
    )


def deduplicate(
    documents_path: str,
    out_dir: pathlib.Path,
    config: DedupeConfig,
    *,
    spark_session=None,
    history: HistoryIndex | None = None,
    day: str = "",
) -> DedupeStats:
    """Exact then near-duplicate removal of the Document Parquet file at documents_path; outputs into out_dir.

    With `history` (the index of what earlier days kept), day `day`'s documents are then compared with it as well
    (history.match_history): unchanged pages and duplicates of earlier documents are removed, and changed pages
    supersede their older versions (superseded.parquet).
    """
    started = time.perf_counter()
    if not pathlib.Path(documents_path).exists():
        raise FileNotFoundError(f"documents_path does not exist: {documents_path}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = pq.ParquetFile(documents_path).metadata.num_rows
    stats = DedupeStats(
        documents_in=documents,
        bands=config.bands,
        rows=config.rows,
        threshold=config.threshold,
        engine=config.engine,
        predicted_peak_memory_bytes=predict_peak_memory_bytes(documents, _mean_text_bytes(documents_path), config),
    )
    clusters = find_clusters(str(documents_path), config, spark_session)
    engine_counters = json.loads((clusters.schema.metadata or {}).get(STATS_METADATA_KEY, b"{}"))
    clusters = clusters.cast(DUPLICATE_CLUSTER_SCHEMA)
    for name in ("candidate_pairs", "verified_pairs", "verification_store_bytes"):
        setattr(stats, name, int(engine_counters.get(name, 0)))
    removed, joined = _removed_rows(str(documents_path), clusters)
    urls = pq.read_table(documents_path, columns=["doc_id", "url", "language"]).take(pa.array(removed))
    matched = None
    if history is not None:
        day_documents = pq.read_table(documents_path, columns=["doc_id", "url", "text", "language"])
        matched = match_history(day_documents, removed, history, day, config)
        removed = np.union1d(removed, matched.removed)
    _write_kept(str(documents_path), out_dir, removed, config, stats)
    joined = joined.append_column("url", urls.column("url")).append_column("language", urls.column("language"))
    pq.write_table(
        joined.select(DUPLICATE_CLUSTER_SCHEMA.names).cast(DUPLICATE_CLUSTER_SCHEMA),
        out_dir / "duplicate_clusters.parquet",
    )
    rejections = _rejections(joined)
    superseded = SUPERSEDED_SCHEMA.empty_table()
    if matched is not None:
        rejections = pa.concat_tables([rejections, matched.rejections])
        superseded = matched.superseded
        for name, value in matched.counts().items():
            setattr(stats, name, value)
        stats.history, stats.superseded = config.history, superseded.num_rows
    else:
        stats.new = documents - len(removed)
    pq.write_table(rejections, out_dir / REJECTIONS_FILE)
    pq.write_table(superseded, out_dir / SUPERSEDED_FILE)
    kinds = Counter(joined.column("kind").to_pylist())
    stats.exact_duplicates, stats.near_duplicates = kinds.get("exact", 0), kinds.get("near", 0)
    stats.documents_kept = documents - len(removed)
    stats.clusters = len(pc.unique(joined.column("cluster_id")))
    stats.calibration = calibration.calibrate(str(documents_path), clusters, config)
    calibration.write_report(stats.calibration, out_dir)
    stats.elapsed_s = round(time.perf_counter() - started, 3)
    return stats
