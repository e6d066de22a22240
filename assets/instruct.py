"""Instruction tuning: instruction_data and preference_data (derived from the corpus, plus user files), sft_model
(LoRA SFT, loss on assistant turns only, after a loss-mask audit) and dpo_model (LoRA DPO on the SFT model).

Every example carries `source_doc_ids`, so lineage reaches from a tuned model to the documents its examples
came from. Both models are exported merged (full weights) with their adapters kept beside them.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import hashlib
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

from assets.common import (
    artifact_version,
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.corpus import training_corpus
from assets.images import png_markdown
from assets.metadata import count_table
from assets.pretrain import base_model
from data_code.instruct import (
    GeneratorConfig,
    generate_examples,
    load_chat_dataset,
    load_preference_dataset,
    write_dataset,
)
from model_code.instruct.config import DpoConfig, SftConfig
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

DATA_CODE_VERSION = "instruct_data-1"
SFT_CODE_VERSION = "sft_model-1"
DPO_CODE_VERSION = "dpo_model-2"  # 2: held-out implicit reward accuracy in the stats
MASK_CHECK = "loss_mask_audit"
EXAMPLES_FILE = "examples.parquet"
MODEL_FILES = ("metrics.jsonl", "loss_curve.png")

InstructionDataConfig = dagster_config(
    GeneratorConfig,
    "InstructionDataConfig",
    files=(list[str], Field(default=[], description="User datasets (JSONL/Parquet, local or fsspec) to add.")),
    generate=(bool, Field(default=True, description="Derive examples from the training corpus (offline).")),
    max_chars=(int, Field(default=4000, description="Longest message kept; longer rows are counted, not kept.")),
)


def _file_digests(files: list[str]) -> dict:
    """sha256 of each user dataset file, so an edited file makes a new artifact version."""
    digests = {}
    for uri in files:
        try:
            with fsspec.open(uri, "rb") as handle:
                digests[uri] = hashlib.sha256(handle.read()).hexdigest()
        except FileNotFoundError as error:
            raise FileNotFoundError(f"instruction dataset not found: {uri}") from error
    return digests


def _dataset_asset(kind: str):
    """instruction_data (chat rows) or preference_data (prompt/chosen/rejected rows): the same recipe."""
    name = "instruction_data" if kind == "chat" else "preference_data"
    loader = load_chat_dataset if kind == "chat" else load_preference_dataset

    @asset(name=name, deps=[training_corpus], code_version=DATA_CODE_VERSION, group_name="instruct",
           kinds={"parquet"}, description=__doc__)  # fmt: skip
    def dataset(
        context: AssetExecutionContext,
        config: InstructionDataConfig,
        artifact_store: ArtifactStoreResource,
        mlflow_tracking: MlflowTrackingResource,
    ) -> MaterializeResult:
        store = artifact_store.store()
        generator = dataclass_from_config(GeneratorConfig, config)
        corpus = upstream_manifest(context, store, "training_corpus")

        def build(directory):
            rows, stats = [], {}
            if config.generate:
                instructions, preferences, stats = generate_examples(
                    store.file_uri(corpus.asset, corpus.version, "documents.parquet"), generator
                )
                rows = instructions if kind == "chat" else preferences
            for uri in config.files:
                rows += [{**row, "source": uri} for row in loader(uri)]
            report = write_dataset(rows, str(directory / EXAMPLES_FILE), max_chars=config.max_chars)
            (directory / "report.json").write_text(json.dumps(report, indent=2, default=str))
            return {"generator": stats, **{k: v for k, v in report.items() if k not in ("rejected", "path")}}

        produced = produce_artifact(
            context,
            store=store,
            tracker=mlflow_tracking.tracker(),
            code_version=DATA_CODE_VERSION,
            config=generator,
            upstream=[corpus],
            build=build,
            extra_identity={
                "kind": kind,
                "files": _file_digests(config.files),
                "generate": config.generate,
                "max_chars": config.max_chars,
            },  # fmt: skip
            log_files=("report.json",),
        )
        stats = produced.manifest.stats
        return materialize_result(
            produced,
            {
                "rows": stats["rows_written"],
                "rows_rejected": stats["rows_rejected"],
                "rejected_by_reason": count_table(stats["rejected_by_reason"], "reason"),
                "splits": count_table(stats["splits"], "split"),
                "sample": MetadataValue.json(_sample(produced)),
            },
        )

    return dataset


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
    return [row for row in rows if split is None or row.get("split", "train") == split]


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


def _tuned_model(context, *, store, tracker, code_version, config, upstream, train, files=MODEL_FILES):
    """Train (or reuse) a tuned model artifact; log its metric history to MLflow; metadata for the UI."""
    produced = produce_artifact(
        context, store=store, tracker=tracker, code_version=code_version, config=config, upstream=upstream,
        build=train, log_files=files,
    )  # fmt: skip
    # A run shorter than logging_steps writes no metrics.jsonl (its summary is in the stats): no history then.
    if not produced.reused and produced.path is not None and produced.manifest.mlflow_run_id:
        tracker.log_history_file(produced.manifest.mlflow_run_id, produced.path / "metrics.jsonl")
    metadata = {}
    if produced.path is not None and (produced.path / "loss_curve.png").exists():
        metadata["loss_curve"] = png_markdown(produced.path / "loss_curve.png", "train loss")
    return produced, metadata


SftModelConfig = _lora_config(SftConfig, "SftModelConfig")


@asset(
    deps=[base_model, instruction_data],
    code_version=SFT_CODE_VERSION,
    group_name="instruct",
    kinds={"pytorch"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=__doc__,
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

    store = artifact_store.store()
    sft = _training_config(SftConfig, config)
    base = upstream_manifest(context, store, "base_model")
    data = upstream_manifest(context, store, "instruction_data")
    base_dir = model_dir(store, base)
    rows = read_rows(store, data, "train")
    audit = None
    if not store.exists("sft_model", artifact_version(context, SFT_CODE_VERSION, sft, [base, data])):
        audit = audit_loss_mask(AutoTokenizer.from_pretrained(str(base_dir)), rows, sft.max_length)
        check = mask_check(audit)
        if not check.passed:  # before training spends compute
            raise Failure(description=check.description, metadata=dict(check.metadata))

    def train(directory):
        return train_sft(
            sft, base_dir, rows, directory, on_log=lambda rec: context.log.info(json.dumps(rec)), mask_audit=audit
        )

    produced, metadata = _tuned_model(
        context, store=store, tracker=mlflow_tracking.tracker(), code_version=SFT_CODE_VERSION, config=sft,
        upstream=[base, data], train=train,
    )  # fmt: skip
    stats = produced.manifest.stats
    metadata.update(_numbers(stats, ("steps", "examples", "train_loss_first", "train_loss_last",
                                     "trainable_parameters", "chat_template_hash")))  # fmt: skip
    metadata["loss_mask"] = MetadataValue.md(mask_markdown(stats["mask_audit"]))
    result = materialize_result(produced, metadata)
    check = mask_check(stats["mask_audit"])  # the audit recorded with the artifact (reused or just made)
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata, check_results=[check])


def mask_check(audit: dict) -> AssetCheckResult:
    problems = []
    if audit["fully_masked_after_truncation"]:
        ids = ", ".join(audit["fully_masked_example_ids"][:10])
        problems.append(f"{audit['fully_masked_after_truncation']} example(s) have no supervised token left after "
                        f"truncation ({ids}): raise max_length or shorten them")  # fmt: skip
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
    rows = [
        ("examples", audit["examples"]),
        ("supervised tokens", f"{audit['supervised_tokens']:,} of {audit['tokens']:,} "
                              f"({audit['supervised_token_share']:.1%})"),
        ("truncated examples", audit["truncated"]),
        ("fully masked after truncation", audit["fully_masked_after_truncation"]),
        ("end of turn supervised", "yes" if audit["end_of_turn_supervised"] else "NO"),
    ]  # fmt: skip
    return "| loss mask | value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


DpoModelConfig = _lora_config(DpoConfig, "DpoModelConfig")


@asset(
    deps=[sft_model, preference_data],
    code_version=DPO_CODE_VERSION,
    group_name="instruct",
    kinds={"pytorch"},
    pool="gpu",
    retry_policy=RetryPolicy(max_retries=1),
    description=__doc__,
)
def dpo_model(
    context: AssetExecutionContext,
    config: DpoModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """LoRA DPO on the merged SFT model; reward margin/accuracy and held-out preference accuracy reported."""
    from model_code.instruct import train_dpo

    store = artifact_store.store()
    dpo = _training_config(DpoConfig, config)
    sft = upstream_manifest(context, store, "sft_model")
    data = upstream_manifest(context, store, "preference_data")
    sft_dir = model_dir(store, sft)
    train_rows, heldout_rows = read_rows(store, data, "train"), read_rows(store, data, "heldout")

    def train(directory):
        return train_dpo(dpo, sft_dir, train_rows, heldout_rows, directory,
                         on_log=lambda record: context.log.info(json.dumps(record)))  # fmt: skip

    produced, metadata = _tuned_model(
        context, store=store, tracker=mlflow_tracking.tracker(), code_version=DPO_CODE_VERSION, config=dpo,
        upstream=[sft, data], train=train,
    )  # fmt: skip
    keys = ("steps", "pairs", "reward_margin", "reward_accuracy", "heldout_pairs",
            "heldout_preference_accuracy_before", "heldout_preference_accuracy", "heldout_reward_accuracy",
            "chat_template_hash")  # fmt: skip
    metadata.update(_numbers(produced.manifest.stats, keys))
    return materialize_result(produced, metadata)


def _numbers(stats: dict, keys: tuple[str, ...]) -> dict:
    return {key: round(stats[key], 4) if isinstance(stats[key], float) else stats[key] for key in keys
            if stats.get(key) is not None}  # fmt: skip


def model_dir(store, manifest) -> Path:
    """The HF model directory inside a base/sft/dpo model artifact."""
    return store.local_path(manifest.asset, manifest.version) / "model"
