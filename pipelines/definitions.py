"""The lmforge Definitions: every asset, job, schedule and resource. Loaded by workspace.yaml.

dagster dev -w workspace.yaml        # or: make ui
dagster definitions validate -w workspace.yaml
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from assets.crawl import raw_crawl
from assets.documents import documents
from assets.partitions import daily_partitions
from resources.http import HttpFetcherResource
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

corpus_job = define_asset_job(
    "corpus_job",
    selection=AssetSelection.assets(raw_crawl, documents),
    partitions_def=daily_partitions,
    description="Crawl one day and extract its documents.",
)


def resources() -> dict:
    """Embedded defaults; every part is switchable by environment (see lineage/settings.py)."""
    return {
        "artifact_store": ArtifactStoreResource(),
        "mlflow_tracking": MlflowTrackingResource(),
        "http_fetcher": HttpFetcherResource(),
    }


defs = Definitions(assets=[raw_crawl, documents], jobs=[corpus_job], resources=resources())
