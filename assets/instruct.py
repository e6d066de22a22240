"""Instruction tuning: instruction_data and preference_data (derived from the corpus, plus user files), sft_model
(LoRA SFT, loss on assistant turns only, after a loss-mask audit) and dpo_model (LoRA DPO on the SFT model).

Every example carries `source_doc_ids`, so lineage reaches from a tuned model to the documents its examples
came from. Both models are exported merged (full weights) with their adapters kept beside them.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from pydantic import Field

from assets.common import Produced, Stage, dagster_config, dataclass_from_config, materialize_result
from assets.corpus import training_corpus
from assets.images import png_markdown
from assets.metadata import count_table, key_numbers
from assets.pretrain import base_model
from data_code.crawl.config import SourcePolicy
from data_code.document import TRAIN, VALIDATION
from data_code.instruct import (
    GeneratorConfig,
    generate_examples,
    load_chat_dataset,
    load_preference_dataset,
    write_dataset,
)
from data_code.instruct.load import dataset_sha256
from model_code.instruct.config import DpoConfig, SftConfig
from model_code.outputs import LOSS_CURVE_FILE, METRICS_FILE, MODEL_DIR
from resources.http import HttpFetcherResource
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

DATA_CODE_VERSION = "instruct_data-2"  # 2: the held-out split is named "validation", as everywhere
SFT_CODE_VERSION = "sft_model-1"
DPO_CODE_VERSION = "dpo_model-3"  # 3: validation_* stats (2: held-out implicit reward accuracy)
MASK_CHECK = "loss_mask_audit"
EXAMPLES_FILE = "examples.parquet"
REPORT_FILE = "report.json"
MODEL_FILES = (METRICS_FILE, LOSS_CURVE_FILE)
SFT_KEYS = ("steps", "examples", "train_loss_first", "train_loss_last", "trainable_parameters", "chat_template_hash")
DPO_KEYS = ("steps", "pairs", "reward_margin", "reward_accuracy", "validation_pairs")
DPO_KEYS += ("validation_preference_accuracy_before", "validation_preference_accuracy", "validation_reward_accuracy")
DPO_KEYS += ("chat_template_hash",)

InstructionDataConfig = dagster_config(
    GeneratorConfig,
    "InstructionDataConfig",
    files=(list[str], Field(default=[], description="User datasets (JSONL/Parquet, local or fsspec) to add.")),
    generate=(bool, Field(default=True, description="Derive examples from the training corpus (offline).")),
    max_chars=(int, Field(default=4000, description="Longest message kept; longer rows are counted, not kept.")),
)


DATASET_DESCRIPTIONS = {
    "chat": "Chat examples (system/user/assistant turns) derived from the training corpus offline, plus user "
    "datasets; rejected rows are counted by reason; split into train and validation.",
    "preference": "Preference pairs (prompt, chosen, rejected) derived from the training corpus offline, plus user "
    "datasets; rejected rows are counted by reason; split into train and validation.",
}
SFT_DESCRIPTION = (
    "LoRA supervised fine-tuning of the base model on instruction_data (loss on assistant tokens only, audited "
    "before training); the adapter is merged for export and kept beside it."
)
DPO_DESCRIPTION = "LoRA DPO of the SFT model on preference_data; merged for export, adapter kept beside it."


def _file_digests(files: list[str], policy: SourcePolicy) -> dict:
    """sha256 of each user dataset file, so an edited file makes a new artifact version (read like the loaders
    read it: allowed schemes only, http(s) through the address guard)."""
    return {uri: dataset_sha256(uri, policy=policy) for uri in files}


def _dataset_asset(kind: str):
    """instruction_data (chat rows) or preference_data (prompt/chosen/rejected rows): the same recipe."""
    name = "instruction_data" if kind == "chat" else "preference_data"
    loader = load_chat_dataset if kind == "chat" else load_preference_dataset

    @asset(
        name=name,
        deps=[training_corpus],
        code_version=DATA_CODE_VERSION,
        group_name="instruct",
        kinds={"parquet"},
        description=DATASET_DESCRIPTIONS[kind],
    )
    def dataset(
        context: AssetExecutionContext,
        config: InstructionDataConfig,
        artifact_store: ArtifactStoreResource,
        mlflow_tracking: MlflowTrackingResource,
        http_fetcher: HttpFetcherResource,
    ) -> MaterializeResult:
        stage = Stage.of(context, artifact_store, mlflow_tracking, DATA_CODE_VERSION)
        policy = SourcePolicy(allow_private_hosts=http_fetcher.allowed_private_hosts())  # the crawler's guard
        generator = dataclass_from_config(GeneratorConfig, config)
        corpus = stage.upstream("training_corpus")

        def build(directory):
            rows, stats = [], {}
            if config.generate:
                instructions, preferences, stats = generate_examples(stage.file(corpus), generator)
                rows = instructions if kind == "chat" else preferences
            for uri in config.files:
                rows += [{**row, "source": uri} for row in loader(uri, policy=policy)]
            report = write_dataset(rows, str(directory / EXAMPLES_FILE), max_chars=config.max_chars)
            (directory / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
            return {"generator": stats, **{k: v for k, v in report.items() if k not in ("rejected", "path")}}

        identity = {"kind": kind, "files": _file_digests(config.files, policy), "generate": config.generate}
        identity["max_chars"] = config.max_chars
        produced = stage.produce(generator, [corpus], build, extra_identity=identity, log_files=(REPORT_FILE,))
        return materialize_result(produced, dataset_metadata(produced))

    return dataset


def dataset_metadata(produced: Produced) -> dict:
    stats = produced.manifest.stats
    return {
        "rows": stats["rows_written"],
        "rows_rejected": stats["rows_rejected"],
        "rejected_by_reason": count_table(stats["rejected_by_reason"], "reason"),
        "splits": count_table(stats["splits"], "split"),
        "sample": MetadataValue.json(_sample(produced)),
    }


instruction_data = _dataset_asset("chat")
preference_data = _dataset_asset("preference")


def _sample(produced) -> list:
    if produced.path is None:
        return []
    return pq.read_table(produced.path / EXAMPLES_FILE).slice(0, 2).to_pylist()


def read_rows(store, manifest, split: str | None = None) -> list[dict]:
    """The examples of a dataset artifact (optionally one split) as Python rows."""
    with fsspec.open(store.file_uri(manifest.asset, manifest.version, EXAMPLES_FILE), "rb") as handle:
        rows = pq.read_table(handle).to_pylist()
    return [row for row in rows if split is None or row.get("split", TRAIN) == split]


def _lora_config(config_class, name: str):
    return dagster_config(
        config_class,
        name,
        exclude=("target_modules",),
        target_modules=(str, Field(default="all-linear", description="'all-linear' or comma-separated names")),
    )


def _training_config(config_class, config):
    modules = config.target_modules
    modules = modules if modules == "all-linear" else tuple(m.strip() for m in modules.split(",") if m.strip())
    return dataclass_from_config(config_class, config, target_modules=modules)


def _tuned_model(stage: Stage, config, upstream: list, train) -> tuple[Produced, dict]:
    """Train (or reuse) a tuned model artifact; log its metric history to MLflow; its loss curve for the UI."""
    produced = stage.produce(config, upstream, train, log_files=MODEL_FILES)
    # A run shorter than logging_steps writes no metrics.jsonl (its summary is in the stats): no history then.
    if not produced.reused and produced.path is not None and produced.manifest.mlflow_run_id:
        stage.tracker.log_history_file(produced.manifest.mlflow_run_id, produced.path / METRICS_FILE)
    metadata = {}
    if produced.path is not None and (produced.path / LOSS_CURVE_FILE).exists():
        metadata["loss_curve"] = png_markdown(produced.path / LOSS_CURVE_FILE, "train loss")
    return produced, metadata


SftModelConfig = _lora_config(SftConfig, "SftModelConfig")


@asset(
    deps=[base_model, instruction_data],
    code_version=SFT_CODE_VERSION,
    group_name="instruct",
    kinds={"pytorch"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=SFT_DESCRIPTION,
    check_specs=[
        AssetCheckSpec(
            MASK_CHECK,
            asset="sft_model",
            blocking=True,
            description="Before training: no example loses its whole assistant turn to truncation, and the "
            "<|im_end|> closing each assistant turn is supervised (else the model never learns to stop).",
        )
    ],
)
def sft_model(
    context: AssetExecutionContext,
    config: SftModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """LoRA SFT of the base model on instruction_data's train split; adapter merged for export, kept beside it."""
    from transformers import AutoTokenizer

    from model_code.instruct import audit_loss_mask, train_sft

    stage = Stage.of(context, artifact_store, mlflow_tracking, SFT_CODE_VERSION)
    sft = _training_config(SftConfig, config)
    base, data = stage.upstream("base_model"), stage.upstream("instruction_data")
    base_dir, rows = model_dir(stage.store, base), read_rows(stage.store, data, TRAIN)
    audit = None
    if not stage.store.exists("sft_model", stage.version(sft, [base, data])):  # audit only what is to be trained
        audit = audit_loss_mask(AutoTokenizer.from_pretrained(str(base_dir)), rows, sft.max_length)
        check = mask_check(audit)
        if not check.passed:  # before training spends compute
            raise Failure(description=check.description, metadata=dict(check.metadata))

    def train(directory):
        return train_sft(sft, base_dir, rows, directory, on_log=log_records(context), mask_audit=audit)

    produced, metadata = _tuned_model(stage, sft, [base, data], train)
    stats = produced.manifest.stats
    metadata |= key_numbers(stats, SFT_KEYS, digits=4)
    metadata["loss_mask"] = MetadataValue.md(mask_markdown(stats["mask_audit"]))
    result = materialize_result(produced, metadata)
    check = mask_check(stats["mask_audit"])  # the audit recorded with the artifact (reused or just made)
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata, check_results=[check])


def mask_check(audit: dict) -> AssetCheckResult:
    problems = []
    if audit["fully_masked_after_truncation"]:
        ids = ", ".join(audit["fully_masked_example_ids"][:10])
        problems.append(
            f"{audit['fully_masked_after_truncation']} example(s) have no supervised token left after "
            f"truncation ({ids}): raise max_length or shorten them"
        )
    if not audit["end_of_turn_supervised"]:
        problems.append(
            "the <|im_end|> closing an assistant turn is not supervised: the model would not learn to stop"
        )
    return AssetCheckResult(
        check_name=MASK_CHECK,
        asset_key="sft_model",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "loss mask audit passed",
        metadata={
            "supervised_token_share": round(audit["supervised_token_share"], 4),
            "fully_masked_after_truncation": audit["fully_masked_after_truncation"],
            "truncated": audit["truncated"],
            "end_of_turn_supervised": audit["end_of_turn_supervised"],
        },
    )


def mask_markdown(audit: dict) -> str:
    supervised = f"{audit['supervised_tokens']:,} of {audit['tokens']:,} ({audit['supervised_token_share']:.1%})"
    rows = [
        ("examples", audit["examples"]),
        ("supervised tokens", supervised),
        ("truncated examples", audit["truncated"]),
        ("fully masked after truncation", audit["fully_masked_after_truncation"]),
        ("end of turn supervised", "yes" if audit["end_of_turn_supervised"] else "NO"),
    ]
    return "| loss mask | value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


DpoModelConfig = _lora_config(DpoConfig, "DpoModelConfig")


@asset(
    deps=[sft_model, preference_data],
    code_version=DPO_CODE_VERSION,
    group_name="instruct",
    kinds={"pytorch"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=DPO_DESCRIPTION,
)
def dpo_model(
    context: AssetExecutionContext,
    config: DpoModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """LoRA DPO on the merged SFT model; reward margin/accuracy and held-out preference accuracy reported."""
    from model_code.instruct import train_dpo

    stage = Stage.of(context, artifact_store, mlflow_tracking, DPO_CODE_VERSION)
    dpo = _training_config(DpoConfig, config)
    sft, data = stage.upstream("sft_model"), stage.upstream("preference_data")
    sft_dir = model_dir(stage.store, sft)
    train_rows, validation_rows = read_rows(stage.store, data, TRAIN), read_rows(stage.store, data, VALIDATION)

    def train(directory):
        return train_dpo(dpo, sft_dir, train_rows, validation_rows, directory, on_log=log_records(context))

    produced, metadata = _tuned_model(stage, dpo, [sft, data], train)
    return materialize_result(produced, metadata | key_numbers(produced.manifest.stats, DPO_KEYS, digits=4))


def log_records(context: AssetExecutionContext):
    """on_log callback of a training run: each metrics record as a line of the step's Dagster log."""
    return lambda record: context.log.info(json.dumps(record))


def model_dir(store, manifest) -> Path:
    """The HF model directory inside a base/sft/dpo model artifact."""
    return store.local_path(manifest.asset, manifest.version) / MODEL_DIR
