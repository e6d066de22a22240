"""base_model: a decoder-only Llama (or MoE) pretrained from the token shards, launched through Dagster Pipes.

Runs in the `gpu` concurrency pool. Checkpoints live in a work directory keyed by the artifact version, so a run
that fails and is retried resumes from its last checkpoint instead of starting over.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import shutil
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, RetryPolicy, asset
from pydantic import Field

from assets.common import (
    Produced,
    artifact_version,
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.images import png_markdown
from assets.metadata import key_numbers
from assets.tokens import shard_set, tokenizer
from lineage.continuation import Plan, champion_base_model, parent_opt_outs, plan_continuation
from lineage.registry import Registry
from lineage.settings import Settings
from lineage.tracking import Tracker
from model_code.checkpoint import META_FILE, MODEL_FILE
from model_code.config import PretrainConfig
from model_code.outputs import LOSS_CURVE_FILE, METRICS_FILE, RUN_OUTPUTS, collect_run_outputs
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.pretrain_process import RESULT_FILE
from resources.tracking import MlflowTrackingResource

# 2: the artifact keeps its final checkpoint (weights + optimizer state); 3: and records the rows and documents read
CODE_VERSION = "base_model-3"
RUN_DIRS = ("shards_dir", "tokenizer_dir", "output_dir")  # set from lineage, not config: not part of the version
PLACEHOLDER = "set-by-the-asset"
STAT_KEYS = ("steps", "tokens_seen", "parameters", "final_loss", "val_loss", "val_bpb", "tokens_per_s")
STAT_KEYS += ("device", "processes", "cpu_threads", "resumed_from_step")

CONTINUATION_FIELDS = ("init_from", "train_days")  # set from the continuation plan, not config

BaseModelConfig = dagster_config(
    PretrainConfig,
    "BaseModelConfig",
    exclude=(*RUN_DIRS, *CONTINUATION_FIELDS, "model_overrides"),  # model_overrides: from presets
    continue_champion=(
        bool,
        Field(default=True, description="Continue the champion's base model on the new nights (else from scratch)."),
    ),
    tokens_per_night=(
        int,
        Field(default=0, description="A continued run's token budget (0: max_steps updates, as from scratch)."),
    ),
    full_retrain_every=(
        int,
        Field(
            default=0, description="Train from scratch once this many continued models follow each other (0: never)."
        ),
    ),
)


@asset(
    deps=[shard_set, tokenizer],
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
    store, tracker = artifact_store.store(), mlflow_tracking.tracker()
    shards, trained_tokenizer = (upstream_manifest(context, store, name) for name in ("shard_set", "tokenizer"))
    champion = Registry(tracker.client).champion()
    parent = champion_base_model(store, champion.artifact_version if champion else None)
    plan = plan_continuation(
        store,
        parent,
        shards,
        trained_tokenizer,
        {"preset": config.preset},
        from_scratch=not config.continue_champion,
        full_retrain_every=config.full_retrain_every,
        opted_out=parent_opt_outs(store, parent),
    )
    bad_parent = not plan.optimizer_ok or "fails its sha256" in plan.reason
    (context.log.warning if bad_parent else context.log.info)(f"base_model: {plan.reason}")
    if plan.mode == "keep":  # no new night: nothing to train, the champion's base model stays what it is
        kept = Produced(plan.parent, True, tracker.run_url(plan.parent.mlflow_run_id), store.local_path(
            plan.parent.asset, plan.parent.version))  # fmt: skip
        return materialize_result(kept, {**training_metadata(kept), "start": plan.reason})
    continued = continuation_fields(plan, config, int(shards.stats.get("seq_len", 256)))
    upstream = [shards, trained_tokenizer, *([plan.parent] if plan.mode == "continue" else [])]
    identity = dataclass_from_config(
        PretrainConfig, config, **dict.fromkeys(RUN_DIRS, PLACEHOLDER), **continued, init_from=None
    )
    version = artifact_version(context, CODE_VERSION, identity, upstream)
    run_dir = Settings.from_env().home / "work" / "base_model" / version  # survives a failed attempt: resumable
    pretrain = dataclass_from_config(
        PretrainConfig,
        config,
        shards_dir=store.file_uri(shards.asset, shards.version, ""),
        tokenizer_dir=store.file_uri(trained_tokenizer.asset, trained_tokenizer.version, ""),
        output_dir=str(run_dir),
        **continued,
        init_from=parent_checkpoint(plan, run_dir),
    )
    live = {}  # what training logged into the MLflow run itself: {"run_id", "through_step", "error"}

    def build(directory: Path) -> dict:
        stats, logged = training_launcher.run_training(
            context, run_dir, pretrain.to_dict(), tracking_uri=tracker.tracking_uri, run_id=tracker.open_run_id
        )
        live.update(logged)
        return {
            **stats,
            "data_order": collect_run_outputs(run_dir, directory, extra_files=(RESULT_FILE,), checkpoint=True),
            "start": plan.mode,
            "start_reason": plan.reason,
            "generation": plan.generation,
            "rebuild_of": plan.rebuild_of,  # an opt-out reached this base model: the one made instead of it
            # The nights this run trained on: the new ones of a continued run (plus replay), every one from scratch.
            "nights": {
                "new": plan.new_days
                if plan.mode == "continue"
                else [n["day"] for n in shards.stats.get("nights", [])],
                "replay_fraction": pretrain.replay_fraction if plan.mode == "continue" else 0.0,
            },
        }

    produced = produce_artifact(
        context,
        store=store,
        tracker=tracker,
        code_version=CODE_VERSION,
        config=identity,
        upstream=upstream,
        build=build,
        log_files=RUN_OUTPUTS,
    )
    finish_run(context, tracker, produced, live, run_dir)
    start = produced.manifest.stats.get("start_reason", plan.reason)
    return materialize_result(produced, {**training_metadata(produced), "start": start})


def continuation_fields(plan: Plan, config, seq_len: int) -> dict:
    """The PretrainConfig fields a continued run sets: the new nights, and the steps their token budget buys (a
    night's budget each: a rebuild that replays three nights spends three)."""
    if plan.mode != "continue":
        return {"train_days": ()}
    fields = {"train_days": tuple(plan.new_days)}
    if config.tokens_per_night:
        per_step = config.tokens_per_step or config.micro_batch_size * seq_len
        fields["max_steps"] = max(1, -(-config.tokens_per_night * len(plan.new_days) // per_step))
    return fields


def parent_checkpoint(plan: Plan, run_dir: Path) -> str | None:
    """The checkpoint a continued run starts from; without its optimizer state when that failed its sha256 (the
    run then continues with a fresh optimizer, which it records)."""
    if plan.mode != "continue":
        return None
    if plan.optimizer_ok:
        return str(plan.checkpoint)
    weights_only = run_dir / "parent_checkpoint"
    weights_only.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, META_FILE):
        shutil.copy2(plan.checkpoint / name, weights_only / name)
    return str(weights_only)


def finish_run(context, tracker: Tracker, produced: Produced, live: dict, run_dir: Path) -> None:
    """After a new artifact: log what live metrics missed (never a step twice), drop the resumable checkpoints."""
    run_id = produced.manifest.mlflow_run_id
    if produced.reused or produced.path is None or not run_id:
        return
    if live.get("error"):
        context.log.warning(f"live MLflow metrics incomplete ({live['error']}): logging the rest now")
    logged = live.get("through_step", 0) if live.get("run_id") == run_id else 0
    tracker.log_history_file(run_id, produced.path / METRICS_FILE, after_step=logged)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the artifact is complete: no resume needed


def training_metadata(produced: Produced) -> dict:
    """The run's key numbers, MFU (n/a on CPU) and the loss curve, for the Dagster UI."""
    stats = produced.manifest.stats
    metadata = key_numbers(stats, STAT_KEYS)
    metadata["mfu"] = "n/a" if stats.get("mfu") is None else round(stats["mfu"], 4)
    if produced.path is not None and (produced.path / LOSS_CURVE_FILE).exists():
        metadata["loss_curve"] = png_markdown(produced.path / LOSS_CURVE_FILE, "training and validation loss")
    return metadata
