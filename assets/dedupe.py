"""deduplicated_documents: one day's documents without exact and near duplicates (MinHash LSH), explained."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common import Produced, Stage, dagster_config, dataclass_from_config, materialize_result
from assets.documents import documents
from assets.images import png_markdown
from assets.metadata import count_table
from assets.partitions import daily_partitions
from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.stage import deduplicate
from data_code.document import DOCUMENTS_FILE
from resources.lake import ArtifactStoreResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "deduplicated_documents-1"
S_CURVE_FILE = "s_curve.png"

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
    """Exact dedupe on normalized text, then MinHash LSH near-dedupe; one representative kept per cluster."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    dedupe_config = dataclass_from_config(DedupeConfig, config, spark_master=spark.master)
    day = stage.upstream("documents", context.partition_key)

    def build(directory):
        session = spark.session() if dedupe_config.engine == "spark" else None
        stats = deduplicate(stage.file(day, DOCUMENTS_FILE), directory, dedupe_config, spark_session=session)
        context.log.info(f"predicted peak memory {stats.predicted_peak_memory_bytes / 2**20:.1f} MiB")
        return stats.as_stats()

    produced = stage.produce(dedupe_config, [day], build, log_files=(S_CURVE_FILE, "calibration.json"))
    return materialize_result(produced, dedupe_metadata(produced))


def dedupe_metadata(produced: Produced) -> dict:
    """Counts, the LSH shape with its estimated precision and recall, memory, and the S-curve plot."""
    stats = produced.manifest.stats
    calibration = stats.get("calibration", {})
    metadata = {
        "documents_in": stats["documents_in"],
        "documents_kept": stats["documents_kept"],
        "exact_duplicates": stats["exact_duplicates"],
        "near_duplicates": stats["near_duplicates"],
        "clusters": stats["clusters"],
        "candidate_pairs": stats["candidate_pairs"],
        "bands_x_rows": f"{stats['bands']} x {stats['rows']} (threshold {stats['threshold']})",
        "estimated_precision": MetadataValue.float(_number(calibration.get("precision"))),
        "estimated_recall": MetadataValue.float(_number(calibration.get("recall"))),
        "predicted_peak_memory_mb": round(stats["predicted_peak_memory_bytes"] / 2**20, 1),
        "engine": stats["engine"],
        "kept_by_domain": count_table(stats["domains_kept"], "domain"),
    }
    if produced.path is not None and (produced.path / S_CURVE_FILE).exists():
        metadata["s_curve"] = png_markdown(produced.path / S_CURVE_FILE, "P(candidate | Jaccard)")
    return metadata


def _number(value) -> float:
    return float("nan") if value is None else float(value)
