"""model_evaluation: the tuned model measured the way the gate compares it — validation perplexity and bits per
byte, lm-evaluation-harness on tasks derived from held-out documents (cloze, exact-match instructions),
generation samples, and serving latency of its Q8_0 GGUF through llama.cpp.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result
from assets.corpus import training_corpus
from assets.instruct import dpo_model, model_dir
from assets.quantize import quantized_model
from assets.tokens import shard_set
from model_code.deploy import gguf_name
from model_code.evaluate.suite import EVALUATION_FILE, EvaluationConfig
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "model_evaluation-2"  # +1: perplexity per night
ModelEvaluationConfig = dagster_config(EvaluationConfig, "ModelEvaluationConfig")


@asset(
    deps=[dpo_model, quantized_model, shard_set, training_corpus],
    code_version=CODE_VERSION,
    group_name="deploy",
    kinds={"mlflow"},
    description=__doc__,
)
def model_evaluation(
    context: AssetExecutionContext,
    config: ModelEvaluationConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Validation perplexity, lm-eval tasks, samples and latency of the tuned model; quantization deltas attached."""
    from model_code.evaluate.suite import evaluate

    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    evaluation = dataclass_from_config(EvaluationConfig, config)
    upstream = [stage.upstream(name) for name in ("dpo_model", "quantized_model", "shard_set", "training_corpus")]
    model, quantized, shards, corpus = upstream
    qtypes = quantized.stats["qtypes"]
    gguf = stage.store.local_path(quantized.asset, quantized.version) / gguf_name(evaluation.latency_qtype)

    def build(directory):
        return evaluate(
            model_dir(stage.store, model),
            stage.store.local_path(shards.asset, shards.version),
            str(stage.store.local_path(corpus.asset, corpus.version)),
            directory,
            evaluation,
            gguf=gguf if evaluation.latency_qtype in qtypes else None,
            quantization=qtypes,
            recorded={"shards_version": shards.version},
        )

    produced = stage.produce(evaluation, upstream, build, log_files=(EVALUATION_FILE,))
    return materialize_result(produced, evaluation_metadata(produced.manifest.stats))


def evaluation_metadata(stats: dict) -> dict:
    metadata = {
        "perplexity": round(stats["perplexity"], 3),
        "perplexity_tokens": stats.get("validation_tokens"),  # how many held-out tokens it was measured on
        "bits_per_byte": round(stats["bits_per_byte"], 4),
        "tasks": MetadataValue.md(tasks_markdown(stats["tasks"])),
        "samples": MetadataValue.md(samples_markdown(stats.get("samples", []))),
    }
    if "latency" in stats:
        metadata["latency"] = MetadataValue.json(stats["latency"])
    if stats.get("perplexity_by_night"):  # what a continued model forgot shows on the older nights
        rows = [f"| {n['day']} | {n['perplexity']:.3f} | {n['tokens']} |" for n in stats["perplexity_by_night"][-30:]]
        metadata["perplexity_by_night"] = MetadataValue.md(
            "\n".join(["| night | validation perplexity | tokens |", "|---|---:|---:|", *rows])
        )
    return metadata


def tasks_markdown(tasks: dict) -> str:
    lines = ["| task | metric | value |", "|---|---|---:|"]
    for task, metrics in sorted(tasks.items()):
        numbers = sorted((metric, value) for metric, value in metrics.items() if isinstance(value, (int, float)))
        lines += [f"| {task} | {metric} | {value:.4f} |" for metric, value in numbers]
    return "\n".join(lines)


def samples_markdown(samples: list) -> str:
    blocks = []
    for sample in samples:
        prompt = str(sample.get("prompt", "")).replace("\n", " ")
        output = str(sample.get("output", sample.get("completion", ""))).replace("\n", " ")
        blocks.append(f"- **{prompt}** → {output[:300]}")
    return "\n".join(blocks) or "no samples"
