"""draft_model: a drafter distilled from the tuned model, for speculative decoding, with its acceptance measured.

The student has about a quarter of the teacher's parameters (layers and width are config) and the teacher's
tokenizer; it learns T^2 KL(teacher || student) on the teacher's logits over the training corpus's token shards,
then over the instruction data rendered with the chat template (the conversations it will draft for).
The same shape trained from scratch on the same tokens measures what distillation adds: both students' greedy
acceptance rates against the teacher, on held-out prompts, are in the UI and in MLflow. Launched through the
training launcher, like base_model, so that it runs on GPU nodes in production. The artifact: model/ (HF format),
drafter-Q8_0.gguf, metrics, loss curve and data order; serving_model carries the GGUF when its teacher is the model
it serves.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json
import shutil
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, RetryPolicy, asset

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result
from assets.images import png_markdown
from assets.instruct import dpo_model, instruction_data, model_dir, read_rows
from assets.metadata import key_numbers
from assets.tokens import shard_set, tokenizer
from data_code.document import TRAIN
from lineage.settings import Settings
from model_code.distill import DraftConfig, instruction_run, measure_drafters, preset_of, write_instruction_shards
from model_code.outputs import (
    DATA_ORDER_FILE,
    LOSS_CURVE_FILE,
    METRICS_FILE,
    MODEL_DIR,
    RUN_OUTPUTS,
    collect_run_outputs,
)
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.pretrain_process import PLAN_KEY
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "draft_model-1"
DRAFTER_GGUF = "drafter-Q8_0.gguf"
STAT_KEYS = ("acceptance_distilled", "acceptance_undistilled", "parameters", "final_loss", "undistilled_final_loss")
STAT_KEYS += ("instruction_rows",)
DraftModelConfig = dagster_config(DraftConfig, "DraftModelConfig")


@asset(
    deps=[dpo_model, shard_set, tokenizer, instruction_data],
    code_version=CODE_VERSION,
    group_name="deploy",
    kinds={"pytorch", "gguf"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=__doc__,
)
def draft_model(
    context: AssetExecutionContext,
    config: DraftModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    training_launcher: TrainingLauncherResource,
) -> MaterializeResult:
    """Distil the drafter (and train its undistilled twin) through the launcher, measure both, export the GGUF."""
    from model_code.export.gguf import write_gguf

    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    draft = dataclass_from_config(DraftConfig, config)
    upstream = [stage.upstream(name) for name in ("dpo_model", "shard_set", "tokenizer", "instruction_data")]
    teacher, shards, trained_tokenizer, instructions = upstream
    teacher_dir, shards_dir = model_dir(stage.store, teacher), stage.store.local_path(shards.asset, shards.version)
    teacher_config = json.loads((teacher_dir / "config.json").read_text())
    work = Settings.from_env().home / "work" / "draft_model" / stage.version(draft, upstream)
    directories = {"shards_dir": stage.file(shards), "tokenizer_dir": stage.file(trained_tokenizer),
                   "teacher_dir": str(teacher_dir), "work": work}  # fmt: skip
    runs = draft.runs(preset_of(teacher_config), _teacher_preset(stage, teacher), directories) if draft.enabled else {}

    def launch(plan: list) -> list[dict]:
        """Every run of `plan` in one launch, in order (one process start and one set of imports, not four)."""
        stats, _ = training_launcher.run_training(
            context, work, {PLAN_KEY: [run.to_dict() for run in plan]}, tracking_uri=stage.tracker.tracking_uri,
            run_id=None,
        )  # fmt: skip
        return stats[PLAN_KEY]

    def build(directory):
        if not draft.enabled:  # an artifact that says so: serving_model then carries no drafter
            return {"teacher": f"{teacher.asset}/{teacher.version}", "enabled": False}
        instruction_shards, rows = None, []
        if draft.instruction_steps:
            rows = read_rows(stage.store, instructions, TRAIN)
            instruction_shards = write_instruction_shards(rows, teacher_dir, work / "instruction_shards",
                                                          int(shards.stats.get("seq_len", 256)))  # fmt: skip
        phases = {name: [run] for name, run in runs.items()}  # the corpus, then the conversations continued from it
        if instruction_shards is not None:
            for name, run in runs.items():
                phases[name].append(instruction_run(run, instruction_shards, draft.instruction_steps))
        plan = [phase for name in runs for phase in phases[name]]
        done = dict(zip([phase.output_dir for phase in plan], launch(plan), strict=True))
        trained = {name: done[phases[name][-1].output_dir] for name in runs}
        finals = {name: Path(phases[name][-1].output_dir) for name in runs}
        corpus_orders = {name: json.loads((Path(run.output_dir) / DATA_ORDER_FILE).read_text())
                         for name, run in runs.items()}  # fmt: skip
        data_order = collect_run_outputs(finals["distilled"], directory)
        measured = measure_drafters(
            teacher_dir, {name: final / MODEL_DIR for name, final in finals.items()}, shards_dir, draft
        )  # fmt: skip
        write_gguf(directory / MODEL_DIR, directory / DRAFTER_GGUF, "Q8_0")
        shutil.rmtree(work, ignore_errors=True)  # the artifact holds what is kept
        return {
            "teacher": f"{teacher.asset}/{teacher.version}",
            "acceptance_distilled": measured["distilled"]["acceptance"],
            "acceptance_undistilled": measured.get("undistilled", {}).get("acceptance"),
            "acceptance_positions": measured["distilled"]["positions"],
            "parameters": trained["distilled"]["parameters"],
            "shape": runs["distilled"].model_overrides,
            "final_loss": trained["distilled"]["final_loss"],
            "undistilled_final_loss": trained.get("undistilled", {}).get("final_loss"),
            "train_s": {name: stats["train_s"] for name, stats in trained.items()},
            "data_order": {"corpus": corpus_orders["distilled"], "instruction": data_order}
            if instruction_shards is not None
            else {"corpus": data_order},
            "instruction_rows": len(rows),
        }

    produced = stage.produce(draft, upstream, build, log_files=(*RUN_OUTPUTS, DRAFTER_GGUF))
    if not produced.reused and produced.path is not None and produced.manifest.mlflow_run_id:
        stage.tracker.log_history_file(produced.manifest.mlflow_run_id, produced.path / METRICS_FILE)
    if produced.manifest.stats.get("enabled") is False:
        return materialize_result(produced, {"teacher": produced.manifest.stats["teacher"], "drafter": "disabled"})
    metadata = key_numbers(produced.manifest.stats, STAT_KEYS)
    metadata["teacher"] = produced.manifest.stats["teacher"]
    if produced.path is not None and (produced.path / LOSS_CURVE_FILE).exists():
        metadata["loss_curve"] = png_markdown(produced.path / LOSS_CURVE_FILE, "distillation loss (T² KL per token)")
    return materialize_result(produced, metadata)


def _teacher_preset(stage: Stage, teacher) -> str:
    """The preset the teacher's base model was trained with: the student keeps its context and options."""
    manifest = teacher
    while manifest.asset != "base_model":
        parent = next((u for u in manifest.upstream if u.asset in ("dpo_model", "sft_model", "base_model")), None)
        if parent is None:
            raise ValueError(f"{teacher.asset}/{teacher.version} does not descend from a base_model artifact")
        manifest = stage.store.read_manifest(parent.asset, parent.version)
    return manifest.config["preset"]
