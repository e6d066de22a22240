"""base_model: a decoder-only Llama (or MoE) pretrained from the token shards, launched through Dagster Pipes.

Runs in the `gpu` concurrency pool. Checkpoints live in a work directory keyed by the artifact version, so a run
that fails and is retried resumes from its last checkpoint instead of starting over.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json
import shutil
from contextlib import contextmanager

from dagster import AssetExecutionContext, MaterializeResult, RetryPolicy, asset

from assets.common import (
    artifact_version,
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.images import png_markdown
from assets.tokens import token_shards, tokenizer
from lineage.settings import Settings
from lineage.tracking import Tracker
from model_code.config import PretrainConfig
from pipelines.pretrain_pipes import LIVE_KEY, LIVE_RUN_FILE
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "base_model-1"
RUN_FILES = ("metrics.jsonl", "loss_curve.png", "data_order.json", "result.json")
PLACEHOLDER = "set-by-the-asset"

BaseModelConfig = dagster_config(
    PretrainConfig,
    "BaseModelConfig",
    exclude=("shards_dir", "tokenizer_dir", "output_dir", "model_overrides"),  # set from lineage / presets
)


class OpenRunTracker(Tracker):
    """A Tracker that remembers the run produce_artifact opens, so that training can log into it while it runs."""

    open_run_id: str | None = None

    @classmethod
    def like(cls, tracker: Tracker) -> "OpenRunTracker":
        return cls(tracker.tracking_uri, tracker.experiment, tracker.artifact_root, tracker.ui_url)

    @contextmanager
    def run(self, **kwargs):
        with super().run(**kwargs) as run_id:
            self.open_run_id = run_id
            yield run_id


@asset(
    deps=[token_shards, tokenizer],
    code_version=CODE_VERSION,
    group_name="model",
    kinds={"pytorch"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=__doc__,
)
def base_model(
    context: AssetExecutionContext,
    config: BaseModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    training_launcher: TrainingLauncherResource,
) -> MaterializeResult:
    """Pretrain with accelerate (fp32 on CPU, bf16 on GPU), checkpointing and resuming; HF-format output."""
    store = artifact_store.store()
    shards = upstream_manifest(context, store, "token_shards")
    trained_tokenizer = upstream_manifest(context, store, "tokenizer")
    placeholders = dict.fromkeys(("shards_dir", "tokenizer_dir", "output_dir"), PLACEHOLDER)
    identity = dataclass_from_config(PretrainConfig, config, **placeholders)
    upstream = [shards, trained_tokenizer]
    version = artifact_version(context, CODE_VERSION, identity, upstream)
    work_dir = Settings.from_env().home / "work" / "base_model" / version  # survives a failed attempt
    pretrain = dataclass_from_config(
        PretrainConfig,
        config,
        shards_dir=store.file_uri(shards.asset, shards.version, ""),
        tokenizer_dir=store.file_uri(trained_tokenizer.asset, trained_tokenizer.version, ""),
        output_dir=str(work_dir),
    )

    tracker = OpenRunTracker.like(mlflow_tracking.tracker())
    live = {}  # what training logged into the MLflow run itself: {"run_id", "through_step", "error"}

    def build(directory):
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path = work_dir / "run.json"
        config_path.write_text(json.dumps(pretrain.to_dict(), indent=2))
        live_run = work_dir / LIVE_RUN_FILE  # a file, not a launch argument: every launcher shares the work dir
        live_uri = training_launcher.live_tracking_uri(tracker.tracking_uri)
        if live_uri:
            live_run.write_text(json.dumps({"tracking_uri": live_uri, "run_id": tracker.open_run_id}))
        try:
            training_launcher.launch(context, config_path, work_dir / "result.json")
        finally:
            live_run.unlink(missing_ok=True)  # a later launch by hand must not log into this run
        shutil.copytree(work_dir / "model", directory / "model")
        for name in RUN_FILES:
            if (work_dir / name).exists():
                shutil.copy2(work_dir / name, directory / name)
        stats = json.loads((work_dir / "result.json").read_text())
        live.update(stats.pop(LIVE_KEY, None) or {})
        stats["data_order"] = json.loads((work_dir / "data_order.json").read_text())
        return stats

    produced = produce_artifact(
        context,
        store=store,
        tracker=tracker,
        code_version=CODE_VERSION,
        config=identity,
        upstream=upstream,
        build=build,
        log_files=("loss_curve.png", "metrics.jsonl", "data_order.json"),
    )
    run_id = produced.manifest.mlflow_run_id
    if not produced.reused and produced.path is not None and run_id:
        if live.get("error"):
            context.log.warning(f"live MLflow metrics incomplete ({live['error']}): logging the rest now")
        logged = live.get("through_step", 0) if live.get("run_id") == run_id else 0  # never a step twice
        tracker.log_history_file(run_id, produced.path / "metrics.jsonl", after_step=logged)
        shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)  # the artifact is complete: no resume needed
    stats = produced.manifest.stats
    metadata = {
        key: stats[key]
        for key in ("steps", "tokens_seen", "parameters", "final_loss", "val_loss", "val_bpb", "tokens_per_s",
                    "device", "processes", "resumed_from_step")
        if stats.get(key) is not None
    }  # fmt: skip
    metadata["mfu"] = "n/a" if stats.get("mfu") is None else round(stats["mfu"], 4)
    if produced.path is not None and (produced.path / "loss_curve.png").exists():
        metadata["loss_curve"] = png_markdown(produced.path / "loss_curve.png", "training and validation loss")
    return materialize_result(produced, metadata)
