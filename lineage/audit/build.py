"""build_audit: one artifact's whole provenance as a JSON-able dict, from the manifests and files of the store."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lineage.audit.chain import Chain, Node, is_model_asset, walk_chain
from lineage.audit.details import stage_detail
from lineage.audit.verify import verify_chain
from lineage.manifest import now_iso
from lineage.settings import Settings
from lineage.store import ArtifactStore
from lineage.tracking import run_page

AUDIT_FORMAT = 1  # bump when the shape of the audit dict changes
DATA_ASSETS = (
    "raw_crawl",
    "documents",
    "deduplicated_documents",
    "filtered_documents",
    "training_corpus",
    "token_shards",
    "shard_set",
    "instruction_data",
    "preference_data",
)


def build_audit(
    store: ArtifactStore,
    asset: str,
    version: str,
    registry: dict[str, Any] | None = None,
    client: MlflowClient | None = None,
    *,
    verify: bool = True,
) -> dict[str, Any]:
    """The audit of `asset/version`: its upstream DAG (each artifact once), per artifact the manifest's record
    (config, code_version, git commit, packages, Dagster and MLflow run ids + MLflow link, stats) and stage detail,
    and, with `verify`, the reproducibility check of every artifact.

    Returns {format, generated_at, target, verified, verification, artifacts, missing_upstream, summary};
    `artifacts` is ordered ancestors first, the target last. `client` (optional) turns MLflow run ids into
    experiment-scoped links; without it the links use MLflow's direct run route.
    """
    chain = walk_chain(store, asset, version)
    verification = verify_chain(store, chain) if verify else None
    links = RunLinks(Settings.from_env().mlflow_ui_url, client)
    artifacts = [describe_artifact(store, node, links) for node in chain.ordered()]
    target = chain.nodes[chain.target].manifest
    return {
        "format": AUDIT_FORMAT,
        "generated_at": now_iso(),
        "target": {"asset": asset, "version": version, "uri": target.uri, "registry": registry},
        "verified": verification["verified"] if verification else None,
        "verification": verification,
        "artifacts": artifacts,
        "missing_upstream": chain.missing,
        "summary": {**summarize(chain, artifacts), **_opt_out_proof(store, chain)},
    }


def _opt_out_proof(store: ArtifactStore, chain: Chain) -> dict[str, Any]:
    """{"opt_out_proof": ...} for a chain with base models (see lineage.continuation.opt_out_proof), else {}."""
    from lineage.continuation import opt_out_proof

    manifests = [node.manifest for node in chain.ordered()]
    base_models = [m for m in manifests if m.asset == "base_model"]
    if not base_models:
        return {}
    return {"opt_out_proof": opt_out_proof(store, base_models, [m for m in manifests if m.asset == "shard_set"])}


def describe_artifact(store: ArtifactStore, node: Node, links: RunLinks) -> dict[str, Any]:
    manifest = node.manifest
    return {
        "asset": manifest.asset,
        "version": manifest.version,
        "partition": manifest.partition,
        "uri": manifest.uri,
        "created_at": manifest.created_at,
        "depth": node.depth,
        "code_version": manifest.code_version,
        "git_commit": manifest.git_commit,
        "packages": manifest.packages,
        "dagster_run_id": manifest.dagster_run_id,
        "mlflow_run_id": manifest.mlflow_run_id,
        "mlflow_run_url": links.url(manifest.mlflow_run_id),
        "config": manifest.config,
        "upstream": [dataclasses.asdict(ref) for ref in manifest.upstream],
        "files": {
            "count": len(manifest.files),
            "bytes": sum(entry.size for entry in manifest.files),
            "entries": [dataclasses.asdict(entry) for entry in manifest.files],  # path, sha256, size (bytes)
        },
        "stats": manifest.stats,
        "detail": stage_detail(store, manifest),
    }


class RunLinks:
    """MLflow UI links for run ids: experiment-scoped when a client can look the run up, else the direct route."""

    def __init__(self, ui_url: str, client: MlflowClient | None):
        self.ui_url, self.client = ui_url.rstrip("/"), client

    def url(self, run_id: str | None) -> str | None:
        if not run_id:
            return None
        if self.client is not None:
            try:
                experiment_id = self.client.get_run(run_id).info.experiment_id
                return run_page(self.ui_url, experiment_id, run_id)
            except MlflowException:
                pass  # a run of another tracking store: the direct route still names it
        return f"{self.ui_url}/#/runs/{run_id}"


def summarize(chain: Chain, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline facts: the data the target was trained on, crawl days, tokens seen, stage counts."""
    by_asset: dict[str, list[dict]] = {}
    for artifact in artifacts:
        by_asset.setdefault(artifact["asset"], []).append(artifact)
    summary: dict[str, Any] = {
        "artifacts": len(artifacts),
        "assets": {name: len(items) for name, items in by_asset.items()},
        "crawl_days": sorted({a["partition"] for a in by_asset.get("raw_crawl", []) if a["partition"]}),
        "urls_fetched": sum(a["detail"].get("urls", 0) for a in by_asset.get("raw_crawl", [])),
    }
    corpora = by_asset.get("training_corpus", [])
    if corpora:
        corpus = corpora[-1]["detail"]  # the one nearest the target
        summary["training_documents"] = corpus.get("documents")
        summary["training_domains"] = corpus.get("domains")
        summary["training_licenses"] = corpus.get("licenses")
        summary["training_opt_out_signals"] = corpus.get("opt_out_signals")
    models = [a for a in artifacts if is_model_asset(a["asset"]) and "tokens_seen" in a["detail"]]
    if models:
        summary["tokens_seen"] = models[-1]["detail"]["tokens_seen"]
    base_models = [a for a in by_asset.get("base_model", []) if "start" in a["detail"]]
    if base_models:  # a continued model inherits every night its ancestors trained on
        summary["base_model_lineage"] = [
            {"version": a["version"], "start": a["detail"]["start"], "parent": a["detail"].get("parent"),
             "new_nights": (a["detail"].get("nights") or {}).get("new", []),
             "rebuild_of": a["detail"].get("rebuild_of")}
            for a in base_models
        ]  # fmt: skip
        summary["nights_inherited"] = sorted(
            {night for a in base_models for night in (a["detail"].get("nights") or {}).get("new", [])}
        )
    filtered = by_asset.get("filtered_documents", [])
    if filtered:
        summary["filter_rejections"] = sum(a["detail"]["rejections"]["total"] for a in filtered)
    dedupe = by_asset.get("deduplicated_documents", [])
    if dedupe:
        summary["duplicates_removed"] = sum(a["detail"].get("duplicates_removed") or 0 for a in dedupe)
    return summary
