"""documents: main-content text of every crawled page as Document records, plus a rejection table."""

import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.common import Produced, Stage, dagster_config, dataclass_from_config, materialize_result
from assets.crawl import raw_crawl
from assets.metadata import count_table, sample_markdown
from assets.partitions import daily_partitions
from data_code.document import DOCUMENTS_FILE, REJECTIONS_FILE
from data_code.extract import ExtractConfig, extract_to_parquet
from resources.lake import ArtifactStoreResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "documents-1"

DocumentsConfig = dagster_config(ExtractConfig, "DocumentsConfig")


@asset(
    partitions_def=daily_partitions,
    deps=[raw_crawl],
    code_version=CODE_VERSION,
    group_name="data",
    kinds={"parquet"},
    description=__doc__,
)
def documents(
    context: AssetExecutionContext,
    config: DocumentsConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    spark: SparkResource,
) -> MaterializeResult:
    """Extract titles and main text from the day's WARC files; every dropped record is a rejection row."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    extract_config = dataclass_from_config(ExtractConfig, config)
    crawl = stage.upstream("raw_crawl", context.partition_key)
    warcs = [stage.file(crawl, entry.path) for entry in crawl.files if entry.path.endswith((".warc.gz", ".warc"))]

    def build(directory):
        session = spark.session_for(extract_config.engine)
        return extract_to_parquet(
            warcs, str(directory / DOCUMENTS_FILE), str(directory / REJECTIONS_FILE), extract_config, spark=session
        ).as_stats()

    produced = stage.produce(extract_config, [crawl], build)
    return materialize_result(produced, documents_metadata(produced))


def documents_metadata(produced: Produced) -> dict:
    """Counts, the rejection reasons, domains and languages, and the first document as a sample.

    `unchanged_revisits` is how many pages of the night were revisit records (unchanged since an earlier capture);
    an artifact made before revisits were counted has no such stat, and then no such entry rather than a false 0.
    """
    stats = produced.manifest.stats
    metadata = {
        "documents": stats["documents"],
        "rejected": stats["rejected"],
        "characters": stats["chars"],
        "extractor": stats.get("extractor", stats["engine"]),  # artifacts made before: `engine` named the extractor
        "engine": stats["engine"] if "extractor" in stats else "local",
        "rejections_by_reason": count_table(stats["rejections_by_reason"], "reason"),
        "domains": count_table(stats["domains"], "domain"),
        "languages": count_table(stats["languages"], "language"),
    }
    if "revisits" in stats:
        metadata["unchanged_revisits"] = stats["revisits"]
    if produced.path is not None and stats["documents"]:
        first = next(pq.ParquetFile(produced.path / DOCUMENTS_FILE).iter_batches(batch_size=1))  # not the whole file
        metadata["sample_document"] = sample_markdown(first.to_pylist()[0])
    return metadata
