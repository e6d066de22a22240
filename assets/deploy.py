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
    Stage,
    dagster_config,
    dataclass_from_config,
    lake_link,
    materialize_result,
    upstream_manifest,
)
from assets.draft import DRAFTER_GGUF, draft_model
from assets.evaluate import model_evaluation
from assets.images import png_markdown
from assets.instruct import dpo_model, model_dir, sft_model
from assets.partitions import DAILY_FRESHNESS
from assets.quantize import quantized_model
from assets.tokens import tokenizer
from lineage.promotion import deploy_and_gate
from lineage.registry import Registry
from lineage.settings import Settings
from model_code.deploy import HF_DIR, SUMS_FILE, assemble_serving_artifact, gguf_name, gguf_path
from model_code.gate import GateConfig
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

SERVING_CODE_VERSION = "serving_model-2"  # 2: carries the model's drafter (draft/)
AUDIT_CODE_VERSION = "audit_report-1"
GATE_CHECK = "promotion_gate"
TEMPLATE_CHECK = "chat_template_consistent"
GATE_METRICS = ("perplexity", "bits_per_byte", "tasks", "quant_perplexity_delta_pct", "quant_kl")

ServingModelConfig = dagster_config(GateConfig, "ServingModelConfig")


@asset(
    deps=[dpo_model, sft_model, quantized_model, model_evaluation, tokenizer, draft_model],
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
    ],
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
    stage = Stage.of(context, artifact_store, mlflow_tracking, SERVING_CODE_VERSION)
    names = ("dpo_model", "quantized_model", "model_evaluation", "sft_model", "tokenizer", "draft_model")
    upstream = [stage.upstream(name) for name in names]
    model, quantized, evaluation, sft, trained_tokenizer, drafter = upstream
    store = stage.store

    def build(directory):
        audit = build_audit(store, model.asset, model.version, verify=False)
        quantized_dir = store.local_path(quantized.asset, quantized.version)
        ggufs = {qtype: quantized_dir / gguf_name(qtype) for qtype in quantized.stats["qtypes"]}
        draft = matching_drafter(store, drafter, model, log=context.log)
        stats = assemble_serving_artifact(
            model_dir(store, model), ggufs, model_card_markdown(audit), lineage_record(audit, model), directory, draft
        )
        stats["drafter"] = draft[1] if draft else None
        stats["load_checks"] = {q: check_gguf_loads(gguf_path(directory, q)) for q in ggufs}  # before registration
        stats["templates"] = template_hashes(store, trained_tokenizer, sft, model, directory / HF_DIR)
        stats["evaluation"] = {key: evaluation.stats.get(key) for key in GATE_METRICS}
        return json.loads(json.dumps(stats, default=str))

    produced = stage.produce({}, upstream, build, log_files=("README.md", "lineage.json", SUMS_FILE))
    outcome = deploy_and_gate(
        stage.tracker, store, produced.manifest, evaluation, gate, dagster_run_id=context.run_id, log=context.log.info
    )
    templates = produced.manifest.stats["templates"]
    checks = [gate_check(outcome.passed, outcome.reasons), template_check(templates)]
    metadata = serving_metadata(stage, outcome, templates) | comparison_metadata(stage, produced.manifest)
    return materialize_result(produced, metadata, check_results=checks)


def comparison_metadata(stage: Stage, manifest) -> dict:
    """Registry versions side by side (table and overlaid loss curves), in the UI and in the serving run."""
    import tempfile
    from pathlib import Path

    from lineage.comparison import comparison_markdown, loss_histories, plot_loss_comparison, registry_comparison

    rows = registry_comparison(Registry(stage.tracker.client), stage.store)
    table = comparison_markdown(rows)
    metadata = {"model_comparison": MetadataValue.md(table)}
    run_id = manifest.mlflow_run_id
    if run_id:
        stage.tracker.client.log_text(run_id, table, "model_comparison.md")
    with tempfile.TemporaryDirectory() as scratch:
        plot = plot_loss_comparison(loss_histories(stage.store, rows), Path(scratch) / "loss_comparison.png")
        if plot is not None:
            metadata["loss_comparison"] = png_markdown(plot, "train loss of every registered version, overlaid")
            if run_id:
                stage.tracker.client.log_artifact(run_id, str(plot))
    return metadata


def matching_drafter(store, drafter, model, log) -> tuple | None:
    """(drafter GGUF, record) when the draft_model artifact was distilled from this very model, else None (logged)."""
    served = f"{model.asset}/{model.version}"
    if drafter.stats.get("enabled") is False:
        log.info("draft_model is disabled (enabled: false): the artifact carries no drafter")
        return None
    if drafter.stats.get("teacher") != served:
        log.warning(f"draft_model's teacher is {drafter.stats.get('teacher')}, not {served}: no drafter is carried")
        return None
    record = {key: drafter.stats.get(key) for key in ("teacher", "acceptance_distilled", "acceptance_undistilled",
                                                       "parameters", "shape")}  # fmt: skip
    record |= {"artifact": f"{drafter.asset}/{drafter.version}", "acceptance": record["acceptance_distilled"]}
    return store.local_path(drafter.asset, drafter.version) / DRAFTER_GGUF, record


def lineage_record(audit: dict, model) -> dict:
    """lineage.json of the serving artifact: the model it serves and every artifact of its chain."""
    chain = [{"asset": a["asset"], "version": a["version"], "uri": a.get("uri")} for a in audit["artifacts"]]
    return {"model": f"{model.asset}/{model.version}", "chain": chain}


def serving_metadata(stage: Stage, outcome, templates: dict) -> dict:
    registry = Registry(stage.tracker.client)
    return {
        "model_version": MetadataValue.text(f"{registry.name} v{outcome.version}"),
        "aliases": MetadataValue.json(registry.aliases()),
        "gate": MetadataValue.md(outcome.table),
        "promoted": outcome.promoted,
        "templates": MetadataValue.json(templates),
    }


def template_hashes(store, trained_tokenizer, sft, model, exported_dir) -> dict:
    from model_code.instruct.template import chat_template_hash

    return {
        "tokenizer": chat_template_hash(store.local_path(trained_tokenizer.asset, trained_tokenizer.version)),
        "sft_model": chat_template_hash(model_dir(store, sft)),
        "dpo_model": chat_template_hash(model_dir(store, model)),
        "serving_model": chat_template_hash(exported_dir),
    }


def gate_check(passed: bool, reasons: list[str]) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=GATE_CHECK,
        asset_key="serving_model",
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(reasons),
        metadata={"reasons": MetadataValue.md("\n".join(f"- {reason}" for reason in reasons))},
    )


def template_check(hashes: dict) -> AssetCheckResult:
    distinct = set(hashes.values())
    passed = len(distinct) == 1 and None not in distinct
    differ = "chat templates differ: " + ", ".join(f"{name}={str(value)[:12]}" for name, value in hashes.items())
    return AssetCheckResult(
        check_name=TEMPLATE_CHECK,
        asset_key="serving_model",
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description="one chat template everywhere" if passed else differ,
        metadata={"hashes": MetadataValue.json(hashes)},
    )


@asset(
    deps=[serving_model],
    code_version=AUDIT_CODE_VERSION,
    group_name="deploy",
    kinds={"html"},
    description="The compliance audit of the deployed model: report.html/.md/.json, CycloneDX ML-BOM, model "
    "card and datasheet; linked from the MLflow model version.",
)
def audit_report(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """Audit the serving artifact back to every URL (with the reproducibility check)."""
    from lineage.audit import build_audit, write_report

    stage = Stage.of(context, artifact_store, mlflow_tracking, AUDIT_CODE_VERSION)
    serving = stage.upstream("serving_model")
    registry = Registry(stage.tracker.client)
    registered = registry.find("serving_model", serving.version)
    info = None
    if registered:  # the gate decision too: the report says passed or failed, never "-"
        info = {"name": registry.name, "version": registered.version, "aliases": list(registered.aliases),
                "gate": registered.gate, "gate_reason": registered.tags.get("lmforge.gate_reason")}  # fmt: skip

    def build(directory):
        audit = build_audit(stage.store, serving.asset, serving.version, registry=info, client=stage.tracker.client)
        write_report(audit, directory)
        mismatches = (audit.get("verification") or {}).get("mismatches", [])
        return {"verified": audit["verified"], "artifacts": len(audit["artifacts"]), "mismatches": len(mismatches)}

    produced = stage.produce({}, [serving], build, log_files=("report.html", "report.md", "mlbom.cdx.json"))
    report_uri = produced.manifest.uri.rstrip("/") + "/report.html"
    # One click from the UIs: over http from the lake server of `lmforge ui` (a browser opens no file:// link).
    report_link = lake_link(produced.manifest.asset, produced.manifest.version, "report.html")
    report_link = report_link if report_uri.startswith("file:") else report_uri
    if registered is not None:
        registry.client.set_model_version_tag(registry.name, registered.version, "lmforge.audit_report", report_uri)
        registry.client.set_model_version_tag(
            registry.name, registered.version, "lmforge.audit_report_link", report_link
        )
        links = {"audit report": report_link, "serving artifact": lake_link(serving.asset, serving.version)}
        if serving.dagster_run_id:
            links["Dagster run"] = f"{Settings.from_env().dagster_ui_url}/runs/{serving.dagster_run_id}"
        registry.describe(registered.version, links)
    stats = produced.manifest.stats
    metadata = {"verified": stats["verified"], "artifacts_audited": stats["artifacts"]}
    return materialize_result(produced, {**metadata, "report": MetadataValue.url(report_link)})


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
        ),
        metadata={
            "opted_out_urls": MetadataValue.json(urls[:200]),
            "flagged": MetadataValue.json(flagged),
            "entries": len(optout.domains) + len(optout.url_prefixes),
        },
    )
