"""The lmforge Definitions: every asset, job, schedule and resource. Loaded by workspace.yaml.

dagster dev -w workspace.yaml        # or: make ui
dagster definitions validate -w workspace.yaml
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from assets.corpus import training_corpus
from assets.crawl import raw_crawl
from assets.dedupe import deduplicated_documents
from assets.documents import documents
from assets.filters import filtered_documents, quality_classifier
from assets.partitions import daily_partitions
from assets.pretrain import base_model
from assets.tokens import token_shards, tokenizer
from resources.http import HttpFetcherResource
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

CORPUS_ASSETS = [raw_crawl, documents, deduplicated_documents, filtered_documents]
TRAINING_DATA_ASSETS = [training_corpus, tokenizer, token_shards]
ALL_ASSETS = [*CORPUS_ASSETS, quality_classifier, *TRAINING_DATA_ASSETS, base_model]

corpus_job = define_asset_job(
    "corpus_job",
    selection=AssetSelection.assets(*CORPUS_ASSETS),
    partitions_def=daily_partitions,
    description="One crawl day: crawl, extract, deduplicate, filter (with the blocking corpus contract).",
)
training_data_job = define_asset_job(
    "training_data_job",
    selection=AssetSelection.assets(*TRAINING_DATA_ASSETS),
    description="Every contract-passing day as one corpus, the tokenizer trained on it, and the token shards.",
)
pretrain_job = define_asset_job(
    "pretrain_job",
    selection=AssetSelection.assets(base_model),
    description="Pretrain the base model from the newest token shards (resumes from its last checkpoint).",
)
quality_classifier_job = define_asset_job(
    "quality_classifier_job",
    selection=AssetSelection.assets(quality_classifier),
    description="Train the quality classifier the filters use.",
)


def resources() -> dict:
    """Embedded defaults; every part is switchable by environment (see lineage/settings.py)."""
    return {
        "artifact_store": ArtifactStoreResource(),
        "mlflow_tracking": MlflowTrackingResource(),
        "http_fetcher": HttpFetcherResource(),
        "spark": SparkResource(),
        "training_launcher": TrainingLauncherResource(),
    }


defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[corpus_job, quality_classifier_job, training_data_job, pretrain_job],
    resources=resources(),
)
