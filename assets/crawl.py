"""raw_crawl: one day's crawl (and/or ingested WARC files) as standard WARC files plus a fetch log."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, RetryRequested, asset
from pydantic import Field

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result
from assets.metadata import count_table
from assets.partitions import DAILY_FRESHNESS, daily_partitions
from data_code.crawl import CrawlConfig, crawl_and_ingest
from data_code.crawl.records import FETCH_LOG_NAME
from resources.http import HttpFetcherResource, env_list
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "raw_crawl-2"  # 2: timing-free page set, WARC/1.1 dated at capture start

RawCrawlConfig = dagster_config(
    CrawlConfig,
    "RawCrawlConfig",
    exclude=("allow_private_hosts",),  # a security policy of the environment: HttpFetcherResource
    # The UI's default seeds come from the environment (`make ui` points them at the demo site).
    seeds=(list[str], Field(default=env_list("LMFORGE_CRAWL_SEEDS"), description="start URLs (http/https)")),
)


TRANSIENT = frozenset(
    {"connect_error", "connection_reset", "timeout", "server_error", "rate_limited", "robots_unavailable"}
)
RETRIES, RETRY_WAIT_S = 2, 60


def transient_failure_retried(stats: dict) -> dict:
    """A crawl that fetched nothing, only because of network or server trouble, is retried by Dagster (twice,
    a minute apart) instead of publishing an empty artifact; anything else (robots, blocked address) is kept."""
    failures = stats.get("failures_by_reason", {})
    if stats["pages_fetched"] == 0 and failures:
        if set(failures) <= TRANSIENT:
            raise RetryRequested(max_retries=RETRIES, seconds_to_wait=RETRY_WAIT_S) from RuntimeError(
                f"raw_crawl fetched no page, only transient failures: {failures}"
            )
    return stats


@asset(
    partitions_def=daily_partitions,
    freshness_policy=DAILY_FRESHNESS,
    code_version=CODE_VERSION,
    group_name="data",
    kinds={"warc", "parquet"},
    description=__doc__,
)
def raw_crawl(
    context: AssetExecutionContext,
    config: RawCrawlConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    http_fetcher: HttpFetcherResource,
) -> MaterializeResult:
    """Crawl the configured seeds (robots-aware, rate-limited, address-safe) and/or ingest existing WARC files."""
    crawl_config = dataclass_from_config(CrawlConfig, config, allow_private_hosts=http_fetcher.allowed_private_hosts())
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    produced = stage.produce(
        crawl_config,
        [],
        lambda directory: transient_failure_retried(crawl_and_ingest(crawl_config, directory).as_stats()),
    )
    for error in produced.manifest.stats.get("errors", []):
        context.log.warning(error)
    metadata = crawl_metadata(produced.manifest.stats)
    if produced.path is not None and (produced.path / FETCH_LOG_NAME).exists():
        metadata["failed_urls"] = failed_urls_table(produced.path / FETCH_LOG_NAME)
    return materialize_result(produced, metadata)


def crawl_metadata(stats: dict) -> dict:
    return {
        "pages_fetched": stats["pages_fetched"],
        "pages_failed": stats["pages_failed"],
        "bytes_downloaded": stats["bytes_raw"],
        "failures_by_reason": count_table(stats["failures_by_reason"], "reason"),
        "domains": count_table(stats["domains"], "domain"),
        "warc_files": len(stats["warc_files"]),
    }


def failed_urls_table(fetch_log, examples: int = 3) -> MetadataValue:
    """The URLs that failed, by HTTP status (or outcome when no answer came): count and a few of them each."""
    import pyarrow.parquet as pq

    groups: dict[str, list[str]] = {}
    for row in pq.read_table(fetch_log, columns=["url", "outcome", "http_status", "detail"]).to_pylist():
        if row["outcome"] != "ok":
            key = f"{row['http_status']} ({row['outcome']})" if row["http_status"] else row["outcome"]
            groups.setdefault(key, []).append(row["url"])
    if not groups:
        return MetadataValue.md("every URL was fetched")
    lines = ["| status | URLs | for example |", "|---|---:|---|"]
    for key, urls in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"| {key} | {len(urls)} | {', '.join(urls[:examples])} |")
    return MetadataValue.md("\n".join(lines))
