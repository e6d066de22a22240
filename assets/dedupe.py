"""deduplicated_documents: one day's documents without exact and near duplicates (MinHash LSH), within the day and
against what earlier days kept (the history index), explained; changed pages supersede their older versions."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common import (
    Produced,
    Stage,
    dagster_config,
    dataclass_from_config,
    materialize_result,
    partition_manifests,
)
from assets.documents import documents
from assets.images import png_markdown
from assets.metadata import count_table
from assets.partitions import daily_partitions
from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.history import (
    SUPERSEDED_FILE,
    DayArtifact,
    HistoryIndex,
    history_days,
    part_is_current,
    write_part,
)
from data_code.dedupe.stage import deduplicate
from data_code.document import DOCUMENTS_FILE
from lineage.manifest import Manifest
from lineage.store import ArtifactStore
from resources.lake import ArtifactStoreResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "deduplicated_documents-2"
HISTORY_INDEX = "deduplicated_documents"  # <store>/index/<this>/<day>/: one history part per day
S_CURVE_FILE = "s_curve.png"
CLUSTERS_FILE = "duplicate_clusters.parquet"

DeduplicatedConfig = dagster_config(
    DedupeConfig,
    "DeduplicatedConfig",
    exclude=("spark_master",),  # the cluster is SparkResource's business
)


@asset(
    partitions_def=daily_partitions,
    deps=[documents],
    code_version=CODE_VERSION,
    group_name="data",
    kinds={"parquet"},
    description=__doc__,
)
def deduplicated_documents(
    context: AssetExecutionContext,
    config: DeduplicatedConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    spark: SparkResource,
) -> MaterializeResult:
    """Exact dedupe on normalized text, then MinHash LSH near-dedupe; one representative kept per cluster. Then the
    day is compared with the history parts of the earlier days config `history` names."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    dedupe_config = dataclass_from_config(DedupeConfig, config, spark_master=spark.master)
    partition = context.partition_key
    day = stage.upstream("documents", partition)
    earlier = stage.partitions("deduplicated_documents")
    history = [day_artifact(stage.store, earlier[d]) for d in history_days(dedupe_config.history, partition, earlier)]

    def build(directory):
        index = HistoryIndex.load(history, dedupe_config)
        session = spark.session_for(dedupe_config.engine)
        documents = stage.file(day, DOCUMENTS_FILE)
        stats = deduplicate(documents, directory, dedupe_config, spark_session=session, history=index, day=partition)
        context.log.info(f"predicted peak memory {stats.predicted_peak_memory_bytes / 2**20:.1f} MiB")
        return stats.as_stats()

    identity = {"history_parts": {artifact.day: artifact.version for artifact in history}}
    produced = stage.produce(
        dedupe_config, [day], build, extra_identity=identity, log_files=(S_CURVE_FILE, "calibration.json")
    )
    own = day_artifact(stage.store, produced.manifest)
    if not part_is_current(own, dedupe_config):  # a day has one part: another version of the day replaces it
        write_part(own, dedupe_config)
    return materialize_result(produced, dedupe_metadata(produced))


def day_artifact(store: ArtifactStore, manifest: Manifest) -> DayArtifact:
    """A day's deduplicated_documents artifact as the history index sees it."""
    listed = {entry.path for entry in manifest.files}
    return DayArtifact(
        day=manifest.partition,
        version=manifest.version,
        documents=store.file_uri(manifest.asset, manifest.version, DOCUMENTS_FILE),
        superseded=store.file_uri(manifest.asset, manifest.version, SUPERSEDED_FILE)
        if SUPERSEDED_FILE in listed
        else "",
        part=store.index_path(HISTORY_INDEX) / manifest.partition,
    )


def rebuild_history(instance, store: ArtifactStore, config: DedupeConfig | None = None) -> list[dict]:
    """Rewrite every day's history part from that day's latest deduplicated_documents artifact (`lmforge history
    rebuild`): the way back from a lost or corrupt part. Each day is hashed with `config`'s LSH parameters, or with
    the ones its artifact was made with. Returns the parts written (day, version, rows)."""
    written = []
    for manifest in partition_manifests(instance, store, "deduplicated_documents").values():
        made_with = {key: value for key, value in manifest.config.items() if key in DedupeConfig.__dataclass_fields__}
        description = write_part(day_artifact(store, manifest), config or DedupeConfig(**made_with))
        written.append({key: description[key] for key in ("day", "version", "rows")})
    return written


def dedupe_metadata(produced: Produced) -> dict:
    """Counts (new, unchanged, superseding; duplicates within the day and against history), the LSH shape with its
    estimated precision and recall, memory, and the S-curve plot."""
    stats = produced.manifest.stats
    calibration = stats.get("calibration", {})
    history = stats.get("history_documents", 0)
    metadata = {
        "documents_in": stats["documents_in"],
        "documents_kept": stats["documents_kept"],
        "documents_new": stats.get("new", 0),
        "documents_unchanged": stats.get("unchanged", 0),
        "documents_superseding": stats.get("superseding", 0),
        "older_versions_superseded": stats.get("superseded", 0),
        "duplicates_within_day": stats["exact_duplicates"] + stats["near_duplicates"],
        "duplicates_of_history": stats.get("exact_duplicates_of_history", 0)
        + stats.get("near_duplicates_of_history", 0),
        "deduped_against_history": (
            f"{stats.get('history_days', 0)} earlier day(s), {history} documents (history: {stats.get('history')})"
            if stats.get("history_days")
            else f"no earlier day (history: {stats.get('history', 'none')})"
        ),
        "history_lookup_s": stats.get("history_lookup_s", 0.0),
        "exact_duplicates": stats["exact_duplicates"],
        "near_duplicates": stats["near_duplicates"],
        "clusters": stats["clusters"],
        "candidate_pairs": stats["candidate_pairs"],
        "bands_x_rows": f"{stats['bands']} x {stats['rows']} (threshold {stats['threshold']})",
        "estimated_precision": _estimate(calibration, "precision"),
        "estimated_recall": _estimate(calibration, "recall"),
        "predicted_peak_memory_mb": round(stats["predicted_peak_memory_bytes"] / 2**20, 1),
        "engine": stats["engine"],
        "kept_by_domain": count_table(stats["domains_kept"], "domain"),
    }
    if produced.path is not None and (produced.path / S_CURVE_FILE).exists():
        metadata["s_curve"] = png_markdown(produced.path / S_CURVE_FILE, "P(candidate | Jaccard)")
    if produced.path is not None and (produced.path / CLUSTERS_FILE).exists():
        metadata["duplicate_clusters"] = clusters_table(produced.path / CLUSTERS_FILE)
    return metadata


def clusters_table(path, limit: int = 10, examples: int = 2) -> MetadataValue:
    """The largest duplicate clusters: kept document, how many copies were removed, how alike, which URLs."""
    import pyarrow.parquet as pq

    clusters: dict[str, list[dict]] = {}
    for row in pq.read_table(path).to_pylist():
        clusters.setdefault(row["cluster_id"], []).append(row)
    if not clusters:
        return MetadataValue.md("no duplicate cluster: every document is unique within the day")
    lines = [
        "| kept document | copies removed | kind | lowest Jaccard | removed, for example |",
        "|---|---:|---|---:|---|",
    ]
    for cluster_id, rows in sorted(clusters.items(), key=lambda item: (-len(item[1]), item[0]))[:limit]:
        kinds = "/".join(sorted({row["kind"] for row in rows}))
        urls = ", ".join(str(row.get("url") or row["doc_id"]) for row in rows[:examples])
        lowest = min(row["similarity"] for row in rows)
        lines.append(f"| `{cluster_id[:16]}` | {len(rows)} | {kinds} | {lowest:.3f} | {urls} |")
    if len(clusters) > limit:
        lines.append(f"| … {len(clusters) - limit} more clusters | | | | |")
    return MetadataValue.md("\n".join(lines))


def _estimate(calibration: dict, name: str):
    """The calibration's precision or recall, rounded; when it cannot be estimated, why (never a blank cell)."""
    value = calibration.get(name)
    if value is not None:
        return round(float(value), 4)
    if calibration.get("sample_size", 0) < 2:
        return "n/a: fewer than 2 documents sampled"
    if name == "precision":
        return "n/a: no candidate pair in the sample (nothing near-duplicate to judge)"
    return f"n/a: no pair in the sample reaches Jaccard {calibration.get('threshold')} (no near-duplicates)"
