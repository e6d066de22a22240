"""serving_model and audit_report: the deployment artifact, its registration and promotion, and its audit.

serving_model assembles HF files + GGUF files + a model card generated from lineage + lineage.json + SHA256SUMS,
load-checks every GGUF with llama.cpp, registers the artifact as an MLflow model version (alias `challenger`),
and runs the promotion gate against the current `champion`: the alias moves only when the gate passes; the
previous champion stays registered for `lmforge rollback`. audit_report audits the deployed artifact back to
every URL and links the report from the model version.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import json

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.common import (
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.evaluate import TASKS_DIR, ModelEvaluationConfig, evaluate_model, model_evaluation
from assets.instruct import dpo_model, model_dir, sft_model
from assets.partitions import DAILY_FRESHNESS
from assets.quantize import gguf_file, quantized_model
from assets.tokens import tokenizer
from lineage.registry import Registry
from model_code.deploy import HF_DIR, assemble_serving_artifact, gguf_path
from model_code.gate import GateConfig, comparison_markdown, decide
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

SERVING_CODE_VERSION = "serving_model-1"
AUDIT_CODE_VERSION = "audit_report-1"
GATE_CHECK = "promotion_gate"
TEMPLATE_CHECK = "chat_template_consistent"
GATE_METRICS = ("perplexity", "bits_per_byte", "tasks", "quant_perplexity_delta_pct", "quant_kl")

ServingModelConfig = dagster_config(GateConfig, "ServingModelConfig")


@asset(
    deps=[dpo_model, sft_model, quantized_model, model_evaluation, tokenizer],
    code_version=SERVING_CODE_VERSION,
    freshness_policy=DAILY_FRESHNESS,
    group_name="deploy",
    kinds={"mlflow", "gguf"},
    description=__doc__,
    check_specs=[
        AssetCheckSpec(
            GATE_CHECK,
            asset="serving_model",
            blocking=True,
            description="Challenger vs champion: perplexity, task scores, quantization deltas.",
        ),
        AssetCheckSpec(
            TEMPLATE_CHECK,
            asset="serving_model",
            blocking=True,
            description="One chat template: identical hash in tokenizer, SFT, DPO and the exported model.",
        ),
    ],  # fmt: skip
)
def serving_model(
    context: AssetExecutionContext,
    config: ServingModelConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Assemble, load-check, register (challenger), gate against the champion, promote when the gate passes."""
    from lineage.audit import build_audit, model_card_markdown
    from model_code.export.llama import check_gguf_loads

    gate = dataclass_from_config(GateConfig, config)  # unknown metric names fail here, before any work
    store = artifact_store.store()
    tracker = mlflow_tracking.tracker()
    model = upstream_manifest(context, store, "dpo_model")
    sft = upstream_manifest(context, store, "sft_model")
    quantized = upstream_manifest(context, store, "quantized_model")
    evaluation = upstream_manifest(context, store, "model_evaluation")
    trained_tokenizer = upstream_manifest(context, store, "tokenizer")
    upstream = [model, quantized, evaluation, sft, trained_tokenizer]

    def build(directory):
        audit = build_audit(store, model.asset, model.version, verify=False)
        ggufs = {
            q: store.local_path(quantized.asset, quantized.version) / gguf_file(q) for q in quantized.stats["qtypes"]
        }
        lineage = {"model": f"{model.asset}/{model.version}",
                   "chain": [{"asset": a["asset"], "version": a["version"], "uri": a.get("uri")}
                             for a in audit["artifacts"]]}  # fmt: skip
        stats = assemble_serving_artifact(
            model_dir(store, model), ggufs, model_card_markdown(audit), lineage, directory
        )
        stats["load_checks"] = {q: check_gguf_loads(gguf_path(directory, q)) for q in ggufs}  # before registration
        stats["templates"] = template_hashes(store, trained_tokenizer, sft, model, directory / HF_DIR)
        stats["evaluation"] = {key: evaluation.stats.get(key) for key in GATE_METRICS}
        return json.loads(json.dumps(stats, default=str))

    produced = produce_artifact(
        context, store=store, tracker=tracker, code_version=SERVING_CODE_VERSION, config={}, upstream=upstream,
        build=build, log_files=("README.md", "lineage.json", "SHA256SUMS"),
    )  # fmt: skip
    registry = Registry(tracker.client)
    registered = registry.register(
        asset="serving_model", version=produced.manifest.version, uri=produced.manifest.uri,
        run_id=produced.manifest.mlflow_run_id, tags={"lmforge.dagster_run_id": context.run_id},
    )  # fmt: skip
    decision_passed, reasons, table_md, promoted = promote_if_better(
        context, store, registry, registered, evaluation, gate
    )
    run_id = produced.manifest.mlflow_run_id
    if run_id:  # the gate decision also on the serving artifact's MLflow run (the registry has it as tags too)
        tracker.client.set_tag(run_id, "lmforge.gate", "passed" if decision_passed else "failed")
        tracker.client.set_tag(run_id, "lmforge.gate_reason", "; ".join(reasons)[:5000])
        tracker.client.log_text(run_id, table_md, f"gate/decision-v{registered}.md")
    stats = produced.manifest.stats
    metadata = {
        "model_version": MetadataValue.text(f"{registry.name} v{registered}"),
        "aliases": MetadataValue.json(registry.aliases()),
        "gate": MetadataValue.md(table_md),
        "promoted": promoted,
        "templates": MetadataValue.json(stats["templates"]),
    }
    result = materialize_result(produced, metadata)
    checks = [gate_check(decision_passed, reasons), template_check(stats["templates"])]
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata, check_results=checks)


def template_hashes(store, trained_tokenizer, sft, model, exported_dir) -> dict:
    from model_code.instruct.template import chat_template_hash

    return {
        "tokenizer": chat_template_hash(store.local_path(trained_tokenizer.asset, trained_tokenizer.version)),
        "sft_model": chat_template_hash(model_dir(store, sft)),
        "dpo_model": chat_template_hash(model_dir(store, model)),
        "serving_model": chat_template_hash(exported_dir),
    }


def promote_if_better(context, store, registry: Registry, registered: str, evaluation, gate: GateConfig):
    """Gate the registered challenger against the champion; move `champion` when it passes. Returns
    (passed, reasons, markdown table, promoted)."""
    champion = registry.champion()
    if champion is not None and champion.version == registered:
        reason = f"v{registered} already is the champion: nothing to decide"
        return True, [reason], reason, False
    champion_metrics = champion_evaluation(context, store, champion, evaluation) if champion else None
    decision = decide(evaluation.stats, champion_metrics, gate)
    summary = "; ".join(decision.reasons)
    registry.record_gate(registered, decision.passed, summary)
    promoted = False
    if decision.passed:
        registry.promote(registered, f"gate passed: {summary}")
        promoted = True
        context.log.info(f"v{registered} promoted to champion: {summary}")
    else:
        context.log.warning(f"v{registered} stays challenger; champion unchanged: {summary}")
    return decision.passed, decision.reasons, comparison_markdown(decision), promoted


def champion_evaluation(context, store, champion, evaluation) -> dict:
    """The champion measured on the challenger's held-out data: its recorded evaluation when that used the same
    shards and tasks, else a fresh evaluation of its HF files (numbers from other data are not comparable)."""
    serving = store.read_manifest("serving_model", champion.artifact_version)
    recorded = next((ref for ref in serving.upstream if ref.asset == "model_evaluation"), None)
    if recorded is not None and store.exists("model_evaluation", recorded.version):
        old = store.read_manifest("model_evaluation", recorded.version)
        same_data = all(old.stats.get(key) == evaluation.stats.get(key) for key in ("shards_version", "task_set"))
        if same_data:
            return old.stats
    context.log.info(f"re-evaluating champion v{champion.version} on the challenger's held-out data")
    config = ModelEvaluationConfig(
        **{k: v for k, v in evaluation.config.items() if k in ModelEvaluationConfig.model_fields}
    )
    shards = next(ref for ref in evaluation.upstream if ref.asset == "token_shards")
    return evaluate_model(
        store.local_path(serving.asset, serving.version) / HF_DIR,
        store.local_path(shards.asset, shards.version),
        store.local_path(evaluation.asset, evaluation.version) / TASKS_DIR,
        config,
        None,
    )


def gate_check(passed: bool, reasons: list[str]) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=GATE_CHECK, asset_key="serving_model", passed=passed, severity=AssetCheckSeverity.ERROR,
        description="; ".join(reasons), metadata={"reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons))},
    )  # fmt: skip


def template_check(hashes: dict) -> AssetCheckResult:
    distinct = set(hashes.values())
    passed = len(distinct) == 1 and None not in distinct
    description = "one chat template everywhere" if passed else (
        "chat templates differ: " + ", ".join(f"{k}={str(v)[:12]}" for k, v in hashes.items()))  # fmt: skip
    return AssetCheckResult(check_name=TEMPLATE_CHECK, asset_key="serving_model", passed=passed,
                            severity=AssetCheckSeverity.ERROR, description=description,
                            metadata={"hashes": MetadataValue.json(hashes)})  # fmt: skip


@asset(deps=[serving_model], code_version=AUDIT_CODE_VERSION, group_name="deploy", kinds={"html"},
       description="The compliance audit of the deployed model: report.html/.md/.json, CycloneDX ML-BOM, model "
       "card and datasheet; linked from the MLflow model version.")  # fmt: skip
def audit_report(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """Audit the serving artifact back to every URL (with the reproducibility check)."""
    from lineage.audit import build_audit, write_report

    store = artifact_store.store()
    tracker = mlflow_tracking.tracker()
    serving = upstream_manifest(context, store, "serving_model")
    registry = Registry(tracker.client)
    registered = registry.find("serving_model", serving.version)
    info = (
        {"name": registry.name, "version": registered.version, "aliases": list(registered.aliases)}
        if registered
        else None
    )

    def build(directory):
        audit = build_audit(store, serving.asset, serving.version, registry=info, client=tracker.client)
        write_report(audit, directory)
        return {"verified": audit["verified"], "artifacts": len(audit["artifacts"]),
                "mismatches": len((audit.get("verification") or {}).get("mismatches", []))}  # fmt: skip

    produced = produce_artifact(
        context, store=store, tracker=tracker, code_version=AUDIT_CODE_VERSION, config={}, upstream=[serving],
        build=build, log_files=("report.html", "report.md", "mlbom.cdx.json"),
    )  # fmt: skip
    report_uri = produced.manifest.uri.rstrip("/") + "/report.html"
    if registered is not None:
        tracker.client.set_model_version_tag(registry.name, registered.version, "lmforge.audit_report", report_uri)
    stats = produced.manifest.stats
    return materialize_result(produced, {"verified": stats["verified"], "artifacts_audited": stats["artifacts"],
                                         "report": MetadataValue.url(report_uri)})  # fmt: skip


@asset_check(
    asset=serving_model,
    name="optout_compliance",
    blocking=False,
    description="No document of an opted-out domain or URL (the opt-out list) is in the serving model's training "
    "data. Fails, naming the URLs, as soon as an owner's opt-out touches the served model.",
)
def optout_compliance(
    context: AssetCheckExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> AssetCheckResult:
    """Check the latest serving artifact and the registered champion against the opt-out list."""
    from lineage.optout import compliance_violations, load_optout

    store = artifact_store.store()
    optout = load_optout()
    targets = {}
    latest = upstream_manifest(context, store, "serving_model")
    targets[f"serving_model/{latest.version}"] = latest.version
    champion = Registry(mlflow_tracking.tracker().client).champion()
    if champion is not None:
        targets[f"champion v{champion.version}"] = champion.artifact_version
    found = {name: compliance_violations(store, "serving_model", version, optout) for name, version in targets.items()}
    urls = sorted({v["url"] for violations in found.values() for v in violations})
    flagged = [name for name, violations in found.items() if violations]
    return AssetCheckResult(
        passed=not urls,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"out of compliance: {', '.join(flagged)} trained on {len(urls)} opted-out URL(s)"
            if urls
            else f"no opted-out document in {', '.join(targets)}"
        ),  # fmt: skip
        metadata={
            "opted_out_urls": MetadataValue.json(urls[:200]),
            "flagged": MetadataValue.json(flagged),
            "entries": len(optout.domains) + len(optout.url_prefixes),
        },  # fmt: skip
    )
