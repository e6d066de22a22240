"""quantized_model: GGUF files (F16, Q8_0, Q4_0) of the tuned model, each loaded by llama.cpp and measured against
its fp32 parent on held-out tokens (perplexity delta, mean KL, top-1 agreement). A blocking check fails when a
quantization loses more than its configured bound.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.common import (
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.instruct import dpo_model, model_dir
from assets.tokens import token_shards
from model_code.export.config import QuantizeConfig, within_bounds
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "quantized_model-1"
BOUNDS_CHECK = "quantization_bounds"
QuantizedModelConfig = dagster_config(QuantizeConfig, "QuantizedModelConfig")


def gguf_file(qtype: str) -> str:
    return f"model-{qtype}.gguf"


@asset(
    deps=[dpo_model, token_shards],
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
    ],  # fmt: skip
)
def quantized_model(
    context: AssetExecutionContext,
    config: QuantizedModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Write each GGUF with the gguf package, load-check it with llama.cpp, measure it against the parent."""
    from model_code.export.gguf import write_gguf
    from model_code.export.llama import check_gguf_loads
    from model_code.export.quality import quantization_quality

    store = artifact_store.store()
    quantize = dataclass_from_config(QuantizeConfig, config)
    parent = upstream_manifest(context, store, "dpo_model")
    shards = upstream_manifest(context, store, "token_shards")
    parent_dir = model_dir(store, parent)
    shards_dir = store.local_path(shards.asset, shards.version)
    seq_len = int(shards.config.get("seq_len", 256))

    def build(directory):
        report = {}
        for qtype in quantize.qtypes:
            path = directory / gguf_file(qtype)
            written = write_gguf(parent_dir, path, qtype)
            loaded = check_gguf_loads(path)
            quality = quantization_quality(parent_dir, path, shards_dir, max_tokens=quantize.eval_tokens,
                                           seq_len=seq_len)  # fmt: skip
            report[qtype] = {"bytes": written["bytes"], "tensor_types": written["tensor_types"],
                             "load_s": loaded["load_s"], **quality,
                             "violations": within_bounds(qtype, quality, quantize)}  # fmt: skip
            context.log.info(f"{qtype}: {written['bytes']:,} B, perplexity {quality['ppl_delta_pct']:+.2f}%, "
                             f"KL {quality['mean_kl']:.4f}, top-1 {quality['top1_agreement']:.3f}")  # fmt: skip
        (directory / "quality.json").write_text(json.dumps(report, indent=2))
        return {"qtypes": report, "parent_parameters": written["parameters"]}

    produced = produce_artifact(
        context, store=store, tracker=mlflow_tracking.tracker(), code_version=CODE_VERSION, config=quantize,
        upstream=[parent, shards], build=build, log_files=("quality.json",),
    )  # fmt: skip
    report = produced.manifest.stats["qtypes"]
    metadata = {"quantization": MetadataValue.md(quality_markdown(report))}
    for qtype, row in report.items():
        metadata[f"{qtype}_bytes"] = row["bytes"]
        metadata[f"{qtype}_ppl_delta_pct"] = round(row["ppl_delta_pct"], 3)
    result = materialize_result(produced, metadata)
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata,
                             check_results=[bounds_check(report)])  # fmt: skip


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
    lines = ["| GGUF | size | perplexity (parent → quantized) | Δ ppl | mean KL | top-1 agreement | bounds |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for qtype, row in report.items():
        lines.append(
            f"| {qtype} | {row['bytes'] / 1e6:.2f} MB | {row['parent_ppl']:.2f} → {row['quant_ppl']:.2f} | "
            f"{row['ppl_delta_pct']:+.2f}% | {row['mean_kl']:.4f} | {row['top1_agreement']:.3f} | "
            f"{'ok' if not row['violations'] else 'EXCEEDED'} |"
        )
    return "\n".join(lines)
