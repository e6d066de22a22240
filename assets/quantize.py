"""quantized_model: GGUF files (F16, Q8_0, Q4_0) of the tuned model, each loaded by llama.cpp and measured against
its fp32 parent on held-out tokens (perplexity delta, mean KL, top-1 agreement). A blocking check fails when a
quantization loses more than its configured bound.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result
from assets.instruct import dpo_model, model_dir
from assets.tokens import shard_set
from model_code.export.config import QuantizeConfig
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "quantized_model-1"
BOUNDS_CHECK = "quantization_bounds"
QuantizedModelConfig = dagster_config(QuantizeConfig, "QuantizedModelConfig")


@asset(
    deps=[dpo_model, shard_set],
    code_version=CODE_VERSION,
    group_name="deploy",
    kinds={"gguf"},
    description=__doc__,
    check_specs=[
        AssetCheckSpec(
            BOUNDS_CHECK,
            asset="quantized_model",
            blocking=True,
            description="Every GGUF within its perplexity-delta and KL bounds against the fp32 parent.",
        )
    ],
)
def quantized_model(
    context: AssetExecutionContext,
    config: QuantizedModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Write each GGUF with the gguf package, load-check it with llama.cpp, measure it against the parent."""
    from model_code.export.quantize import QUALITY_FILE, quantize_and_measure

    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    quantize = dataclass_from_config(QuantizeConfig, config)
    parent, shards = stage.upstream("dpo_model"), stage.upstream("shard_set")
    parent_dir, shards_dir = model_dir(stage.store, parent), stage.store.local_path(shards.asset, shards.version)
    seq_len = int(shards.stats.get("seq_len", 256))

    def build(directory):
        return quantize_and_measure(
            parent_dir, directory, shards_dir, quantize, seq_len=seq_len, on_line=context.log.info
        )

    produced = stage.produce(quantize, [parent, shards], build, log_files=(QUALITY_FILE,))
    report = produced.manifest.stats["qtypes"]
    return materialize_result(produced, quantization_metadata(report), check_results=[bounds_check(report)])


def quantization_metadata(report: dict) -> dict:
    """The quality table, and each GGUF's size and perplexity delta as numbers (plotted across runs)."""
    metadata = {"quantization": MetadataValue.md(quality_markdown(report))}
    for qtype, row in report.items():
        metadata[f"{qtype}_bytes"] = row["bytes"]
        metadata[f"{qtype}_ppl_delta_pct"] = round(row["ppl_delta_pct"], 3)
    return metadata


def bounds_check(report: dict) -> AssetCheckResult:
    problems = [problem for row in report.values() for problem in row["violations"]]
    return AssetCheckResult(
        check_name=BOUNDS_CHECK,
        asset_key="quantized_model",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "every quantization within its bounds",
        metadata={"violations": len(problems)},
    )


def quality_markdown(report: dict) -> str:
    lines = [
        "| GGUF | size | perplexity (parent → quantized) | on tokens | Δ ppl | mean KL | top-1 agreement | bounds |"
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for qtype, row in report.items():
        lines.append(
            f"| {qtype} | {row['bytes'] / 1e6:.2f} MB | {row['parent_ppl']:.2f} → {row['quant_ppl']:.2f} | "
            f"{row.get('tokens', '?')} held-out | "
            f"{row['ppl_delta_pct']:+.2f}% | {row['mean_kl']:.4f} | {row['top1_agreement']:.3f} | "
            f"{'ok' if not row['violations'] else 'EXCEEDED'} |"
        )
    return "\n".join(lines)
