"""The lmforge Definitions: every asset, job, schedule, sensor and resource. Loaded by workspace.yaml.

dagster dev -w workspace.yaml        # or: make ui
dagster definitions validate -w workspace.yaml
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from assets.corpus import training_corpus
from assets.crawl import raw_crawl
from assets.dedupe import deduplicated_documents
from assets.deploy import audit_report, optout_compliance, serving_model
from assets.documents import documents
from assets.draft import draft_model
from assets.evaluate import model_evaluation
from assets.filters import filtered_documents, quality_classifier
from assets.instruct import dpo_model, instruction_data, preference_data, sft_model
from assets.partitions import daily_partitions
from assets.pretrain import base_model
from assets.quantize import quantized_model
from assets.tokens import shard_set, token_shards, tokenizer
from pipelines.automation import (
    build_nightly_schedule,
    build_optout_sensor,
    build_warc_inbox_sensor,
    run_failure_alert,
)
from pipelines.presets import job_config
from resources.http import HttpFetcherResource
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

DAY_ASSETS = [raw_crawl, documents, deduplicated_documents, filtered_documents]
# What a night adds to the data: the corpus manifest, the frozen tokenizer, the day's shards and the shard set.
CORPUS_ASSETS = [training_corpus, tokenizer, token_shards, shard_set]
MODEL_ASSETS = [
    base_model,
    instruction_data,
    preference_data,
    sft_model,
    dpo_model,
    draft_model,
    quantized_model,
    model_evaluation,
    serving_model,
    audit_report,
]
ALL_ASSETS = [quality_classifier, *DAY_ASSETS, *CORPUS_ASSETS, *MODEL_ASSETS]
DATA_ASSETS = [quality_classifier, *DAY_ASSETS, *CORPUS_ASSETS]


def _names(assets) -> set[str]:
    return {key.to_user_string() for asset in assets for key in asset.keys}


full_lifecycle = define_asset_job(
    "full_lifecycle",
    selection=AssetSelection.assets(*ALL_ASSETS),
    partitions_def=daily_partitions,
    description="One day end to end: crawl → dedupe (within the day and against history) → filter that day, then "
    "corpus → tokenizer (frozen) → the day's shards → shard set → pretrain → SFT → DPO → drafter, quantize → "
    "evaluate → gate → deploy → audit. Unchanged artifacts are reused, not rebuilt.",
    # The Launchpad opens with the demo's config (pipelines/presets.py): a run from the UI builds what `make demo`
    # builds. A partitioned job's config applies only when a run brings none (a schedule's, a CLI's replaces it).
    config=job_config(_names(ALL_ASSETS)),
)
data_refresh = define_asset_job(
    "data_refresh",
    selection=AssetSelection.assets(*DATA_ASSETS),
    partitions_def=daily_partitions,
    description="One crawl day's data: crawl (or ingest WARC files), extract, deduplicate against the day and the "
    "history, filter (blocking contract), then the corpus manifest, the frozen tokenizer, the day's token shards and "
    "the shard set training reads. The quality classifier the filter uses is trained first when it does not exist "
    "yet, and reused otherwise.",
    config=job_config(_names(DATA_ASSETS)),
)
retrain = define_asset_job(
    "retrain",
    selection=AssetSelection.assets(training_corpus, tokenizer, shard_set, *MODEL_ASSETS),
    description="Every contract-passing day as one corpus, its shard set (the days' token shards must exist), then "
    "pretrain → ... → deploy → audit.",
)
compliance_check = define_asset_job(
    "compliance_check",
    selection=AssetSelection.checks(optout_compliance),
    description="Check the served model against the opt-out list (runs when the list changes).",
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
    asset_checks=[optout_compliance],
    jobs=[full_lifecycle, data_refresh, retrain, compliance_check],
    schedules=[build_nightly_schedule(full_lifecycle)],
    sensors=[build_warc_inbox_sensor(data_refresh), build_optout_sensor(compliance_check), run_failure_alert],
    resources=resources(),
)
