"""Promotion policy: register a serving artifact as the challenger, gate it against the champion measured on the
same data, and move `champion` only when the gate passes. The decision is recorded on the model version (tags) and
on the artifact's MLflow run (tags and a Markdown table), so the UI, the registry and an audit all say why.

    outcome = deploy_and_gate(tracker, store, serving_manifest, evaluation_manifest, GateConfig(), log=print)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lineage.manifest import Manifest
from lineage.registry import RegisteredVersion, Registry
from lineage.store import ArtifactStore
from lineage.tracking import Tracker
from model_code.deploy import HF_DIR
from model_code.gate import GateConfig, comparison_markdown, decide

SAME_DATA_KEYS = ("shards_version", "task_set")  # evaluations are comparable only on the same shards and tasks


@dataclass
class Outcome:
    """What deploy_and_gate decided for one serving artifact."""

    version: str  # the model version registered for the artifact
    passed: bool
    reasons: list[str] = field(default_factory=list)
    table: str = ""  # Markdown: the verdict and the metric-by-metric comparison
    promoted: bool = False


def deploy_and_gate(
    tracker: Tracker,
    store: ArtifactStore,
    serving: Manifest,
    evaluation: Manifest,
    gate: GateConfig,
    *,
    dagster_run_id: str = "",
    log: Callable[[str], None] = print,
) -> Outcome:
    """Register `serving` (alias challenger), gate it against the champion, promote it when it passes."""
    registry = Registry(tracker.client)
    registered = registry.register(
        asset=serving.asset,
        version=serving.version,
        uri=serving.uri,
        run_id=serving.mlflow_run_id,
        tags={"lmforge.dagster_run_id": dagster_run_id},
    )
    outcome = _gate(registry, store, registered, evaluation, gate, log)
    if serving.mlflow_run_id:  # the decision also on the artifact's run (the registry has it as tags too)
        tracker.client.set_tag(serving.mlflow_run_id, "lmforge.gate", "passed" if outcome.passed else "failed")
        tracker.client.set_tag(serving.mlflow_run_id, "lmforge.gate_reason", "; ".join(outcome.reasons)[:5000])
        tracker.client.log_text(serving.mlflow_run_id, outcome.table, f"gate/decision-v{registered}.md")
    return outcome


def _gate(registry: Registry, store, registered: str, evaluation: Manifest, gate: GateConfig, log) -> Outcome:
    champion = registry.champion()
    if champion is not None and champion.version == registered:
        reason = f"v{registered} already is the champion: nothing to decide"
        return Outcome(registered, True, [reason], reason)
    champion_metrics = champion_evaluation(store, champion, evaluation, log) if champion else None
    decision = decide(evaluation.stats, champion_metrics, gate)
    summary = "; ".join(decision.reasons)
    registry.record_gate(registered, decision.passed, summary)
    if decision.passed:
        registry.promote(registered, f"gate passed: {summary}")
        log(f"v{registered} promoted to champion: {summary}")
    else:
        log(f"v{registered} stays challenger; champion unchanged: {summary}")
    return Outcome(registered, decision.passed, decision.reasons, comparison_markdown(decision), decision.passed)


def champion_evaluation(store: ArtifactStore, champion: RegisteredVersion, evaluation: Manifest, log) -> dict:
    """The champion measured on the challenger's validation data: its recorded evaluation when that used the same
    shards and tasks, else a fresh evaluation of its HF files (numbers from other data are not comparable)."""
    from model_code.evaluate.suite import TASKS_DIR, EvaluationConfig, measure_model

    serving = store.read_manifest("serving_model", champion.artifact_version)
    recorded = next((ref for ref in serving.upstream if ref.asset == "model_evaluation"), None)
    if recorded is not None and store.exists("model_evaluation", recorded.version):
        old = store.read_manifest("model_evaluation", recorded.version)
        if all(old.stats.get(key) == evaluation.stats.get(key) for key in SAME_DATA_KEYS):
            return old.stats
    log(f"re-evaluating champion v{champion.version} on the challenger's validation data")
    known = EvaluationConfig.__dataclass_fields__
    config = EvaluationConfig(**{key: value for key, value in evaluation.config.items() if key in known})
    shards = next(ref for ref in evaluation.upstream if ref.asset == "shard_set")
    return measure_model(
        store.local_path(serving.asset, serving.version) / HF_DIR,
        store.local_path(shards.asset, shards.version),
        store.local_path(evaluation.asset, evaluation.version) / TASKS_DIR,
        config,
        None,
    )
