"""training_corpus: every crawl day's filtered documents that passed the corpus contract, as one corpus."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets.common import materialize_result, produce_artifact, upstream_manifest
from assets.filters import filtered_documents
from assets.metadata import count_table
from data_code.corpus import concatenate_documents
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "training_corpus-1"
CORPUS_FILE = "documents.parquet"


@asset(deps=[filtered_documents], code_version=CODE_VERSION, group_name="data", kinds={"parquet"},
       description=__doc__)  # fmt: skip
def training_corpus(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """Union of the latest filtered_documents of every day whose contract passed (a page seen twice kept once)."""
    store = artifact_store.store()
    partitions = sorted(context.instance.get_materialized_partitions(AssetKey("filtered_documents")))
    days = [upstream_manifest(context, store, "filtered_documents", day) for day in partitions]
    accepted = [day for day in days if day.stats.get("contract", {}).get("success")]
    refused = sorted({day.partition for day in days} - {day.partition for day in accepted})
    if refused:
        context.log.warning(f"left out (corpus contract failed): {', '.join(refused)}")
    if not accepted:
        raise ValueError(
            "training_corpus: no day of filtered_documents has passed its corpus contract yet "
            f"(materialized days: {', '.join(partitions) or 'none'})"
        )
    paths = [store.file_uri(day.asset, day.version, CORPUS_FILE) for day in accepted]

    def build(directory):
        stats = concatenate_documents(paths, directory / CORPUS_FILE)
        stats["sources"] = {day.partition: stats["sources"][path] for day, path in zip(accepted, paths, strict=True)}
        return stats

    produced = produce_artifact(
        context,
        store=store,
        tracker=mlflow_tracking.tracker(),
        code_version=CODE_VERSION,
        config={},
        upstream=accepted,
        build=build,
    )
    stats = produced.manifest.stats
    return materialize_result(
        produced,
        {
            "documents": stats["documents"],
            "approx_tokens": stats["tokens"],
            "days": MetadataValue.json(stats["sources"]),
            "days_left_out": MetadataValue.json(refused),
            "domains": count_table(stats["domains"], "domain"),
        },
    )
