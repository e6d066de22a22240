"""model_evaluation: the tuned model measured the way the gate compares it — held-out perplexity and bits per
byte, lm-evaluation-harness on tasks derived from held-out documents (cloze, exact-match instructions),
generation samples, and serving latency of its Q8_0 GGUF through llama.cpp.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json
from pathlib import Path

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.common import materialize_result, produce_artifact, upstream_manifest
from assets.corpus import training_corpus
from assets.instruct import dpo_model, model_dir
from assets.quantize import gguf_file, quantized_model
from assets.tokens import token_shards
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "model_evaluation-1"
TASKS_DIR = "tasks"
SAMPLE_PROMPTS = (
    "What is a Python module?",
    "Explain what a list comprehension does.",
    "Write one sentence about exceptions.",
)


class ModelEvaluationConfig(Config):
    eval_tokens: int = Field(default=16384, description="Held-out validation tokens for perplexity / bits per byte.")
    task_examples: int = Field(default=200, description="Examples per derived lm-eval task at most.")
    task_limit: int = Field(default=100, description="Examples per task lm-eval scores (None-like: 0 = all).")
    max_new_tokens: int = Field(default=32, description="Tokens per generation sample and latency prompt.")
    latency_qtype: str = Field(default="Q8_0", description="GGUF whose serving latency is measured.")


def evaluate_model(model_directory: Path, shards_dir: Path, task_dir: Path, config, gguf: Path | None) -> dict:
    """Every measurement of one HF model (and its GGUF, when given) on fixed held-out data."""
    from model_code.evaluate.generation import generation_samples, serving_latency
    from model_code.evaluate.perplexity import heldout_perplexity
    from model_code.evaluate.tasks import run_lm_eval

    heldout = heldout_perplexity(model_directory, shards_dir, max_tokens=config.eval_tokens)
    tasks = run_lm_eval(model_directory, task_dir, limit=config.task_limit or None)
    metrics = {"perplexity": heldout["perplexity"], "bits_per_byte": heldout["bits_per_byte"],
               "heldout_tokens": heldout["tokens"], "tasks": tasks}  # fmt: skip
    metrics["samples"] = generation_samples(model_directory, list(SAMPLE_PROMPTS), config.max_new_tokens)
    if gguf is not None:
        metrics["latency"] = serving_latency(gguf, list(SAMPLE_PROMPTS), config.max_new_tokens)
    return metrics


@asset(deps=[dpo_model, quantized_model, token_shards, training_corpus], code_version=CODE_VERSION,
       group_name="deploy", kinds={"mlflow"}, description=__doc__)  # fmt: skip
def model_evaluation(
    context: AssetExecutionContext,
    config: ModelEvaluationConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Held-out perplexity, lm-eval tasks, samples and latency of the tuned model; quantization deltas attached."""
    from model_code.evaluate.tasks import TaskSetConfig, heldout_doc_ids, write_eval_tasks

    store = artifact_store.store()
    model = upstream_manifest(context, store, "dpo_model")
    quantized = upstream_manifest(context, store, "quantized_model")
    shards = upstream_manifest(context, store, "token_shards")
    corpus = upstream_manifest(context, store, "training_corpus")
    shards_dir = store.local_path(shards.asset, shards.version)
    qtypes = quantized.stats["qtypes"]
    latency_gguf = (
        store.local_path(quantized.asset, quantized.version) / gguf_file(config.latency_qtype)
        if config.latency_qtype in qtypes
        else None
    )

    def build(directory):
        tasks = write_eval_tasks(
            str(store.local_path(corpus.asset, corpus.version) / "documents.parquet"),
            directory / TASKS_DIR,
            TaskSetConfig(max_examples=config.task_examples),
            doc_ids=heldout_doc_ids(shards_dir),
        )
        metrics = evaluate_model(model_dir(store, model), shards_dir, directory / TASKS_DIR, config, latency_gguf)
        quant = qtypes.get(config.latency_qtype) or next(iter(qtypes.values()))
        metrics["quant_perplexity_delta_pct"] = quant["ppl_delta_pct"]
        metrics["quant_kl"] = quant["mean_kl"]
        metrics["quantization"] = {q: {k: row[k] for k in ("bytes", "ppl_delta_pct", "mean_kl", "top1_agreement")}
                                   for q, row in qtypes.items()}  # fmt: skip
        metrics["task_set"] = tasks
        metrics["shards_version"] = shards.version
        (directory / "evaluation.json").write_text(json.dumps(metrics, indent=2, default=str))
        return metrics

    produced = produce_artifact(
        context, store=store, tracker=mlflow_tracking.tracker(), code_version=CODE_VERSION, config=config,
        upstream=[model, quantized, shards, corpus], build=build, log_files=("evaluation.json",),
    )  # fmt: skip
    stats = produced.manifest.stats
    metadata = {
        "perplexity": round(stats["perplexity"], 3),
        "bits_per_byte": round(stats["bits_per_byte"], 4),
        "tasks": MetadataValue.md(tasks_markdown(stats["tasks"])),
        "samples": MetadataValue.md(samples_markdown(stats.get("samples", []))),
    }
    if "latency" in stats:
        metadata["latency"] = MetadataValue.json(stats["latency"])
    return materialize_result(produced, metadata)


def tasks_markdown(tasks: dict) -> str:
    lines = ["| task | metric | value |", "|---|---|---:|"]
    for task, metrics in sorted(tasks.items()):
        lines += [f"| {task} | {metric} | {value:.4f} |" for metric, value in sorted(metrics.items())
                  if isinstance(value, (int, float))]  # fmt: skip
    return "\n".join(lines)


def samples_markdown(samples: list) -> str:
    blocks = []
    for sample in samples:
        prompt = str(sample.get("prompt", "")).replace("\n", " ")
        output = str(sample.get("output", sample.get("completion", ""))).replace("\n", " ")
        blocks.append(f"- **{prompt}** → {output[:300]}")
    return "\n".join(blocks) or "no samples"
