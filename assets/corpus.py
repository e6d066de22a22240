"""training_corpus: every crawl day's filtered documents that passed the corpus contract, as one corpus."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets.common import Stage, materialize_result
from assets.filters import filtered_documents
from assets.metadata import count_table
from data_code.corpus import concatenate_documents
from data_code.document import DOCUMENTS_FILE
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "training_corpus-1"


@asset(deps=[filtered_documents], code_version=CODE_VERSION, group_name="data", kinds={"parquet"}, description=__doc__)
def training_corpus(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """Union of the latest filtered_documents of every day whose contract passed (a page seen twice kept once)."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    partitions = sorted(context.instance.get_materialized_partitions(AssetKey("filtered_documents")))
    accepted, refused = contract_passed([stage.upstream("filtered_documents", day) for day in partitions])
    if refused:
        context.log.warning(f"left out (corpus contract failed): {', '.join(refused)}")
    if not accepted:
        raise ValueError(
            "training_corpus: no day of filtered_documents has passed its corpus contract yet "
            f"(materialized days: {', '.join(partitions) or 'none'})"
        )
    days = {day.partition: stage.file(day, DOCUMENTS_FILE) for day in accepted}

    def build(directory):
        stats = concatenate_documents(list(days.values()), directory / DOCUMENTS_FILE)
        return {**stats, "sources": {day: stats["sources"][path] for day, path in days.items()}}

    produced = stage.produce({}, accepted, build)
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


def contract_passed(days: list) -> tuple[list, list[str]]:
    """(the days whose corpus contract passed, the partitions of those whose contract failed)."""
    accepted = [day for day in days if day.stats.get("contract", {}).get("success")]
    return accepted, sorted({day.partition for day in days} - {day.partition for day in accepted})
