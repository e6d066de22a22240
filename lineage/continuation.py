"""Whether tonight's base model continues the champion's, trains from scratch, or is not trained at all.

    plan = plan_continuation(store, champion_base_model(store, client), shard_set, tokenizer, ...)
    plan.mode      continue | scratch | keep (no new night since the parent: the champion's base model stays)
    plan.reason    in plain words, for the asset's metadata and its MLflow run

A continued model starts from its parent's checkpoint (weights + optimizer state) and reads the nights the parent
never read, plus a replay share of the earlier ones. It trains from scratch when there is no champion yet, when
config says `from_scratch`, when the tokenizer or the model preset changed, on the periodic full retrain, when the
parent's weights fail their sha256, or when an opt-out reaches a document the parent read (a continued model could
not forget it; the rebuild from the newest ancestor that never saw it is the next step of this design).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_code.files import file_sha256
from lineage.audit.chain import walk_chain
from lineage.manifest import Manifest
from lineage.store import ArtifactStore
from model_code.checkpoint import MODEL_FILE, OPTIMIZER_FILE
from model_code.outputs import CHECKPOINT_DIR

WEIGHTS, OPTIMIZER = MODEL_FILE, OPTIMIZER_FILE


@dataclass
class Plan:
    mode: str  # continue | scratch | keep
    reason: str
    parent: Manifest | None = None
    new_days: list[str] = field(default_factory=list)
    checkpoint: Path | None = None  # the parent's checkpoint directory (continue)
    optimizer_ok: bool = True  # False: its optimizer state failed its sha256 (continue with a fresh one)
    generation: int = 0  # continued models since the last from-scratch one, this one included


def champion_base_model(store: ArtifactStore, champion_serving_version: str | None) -> Manifest | None:
    """The base_model the champion's serving artifact was tuned from (the nearest one in its chain), or None."""
    if champion_serving_version is None or not store.exists("serving_model", champion_serving_version):
        return None
    nodes = [node for node in walk_chain(store, "serving_model", champion_serving_version).nodes.values()
             if node.manifest.asset == "base_model"]  # fmt: skip
    return min(nodes, key=lambda node: node.depth).manifest if nodes else None


def plan_continuation(
    store: ArtifactStore,
    parent: Manifest | None,
    shard_set: Manifest,
    tokenizer: Manifest,
    preset: dict,
    *,
    from_scratch: bool = False,
    full_retrain_every: int = 0,
) -> Plan:
    """Decide tonight's start (see the module docstring). `preset` is {"preset", "model_overrides"} of tonight."""
    if from_scratch:
        return Plan("scratch", "from scratch: from_scratch is true")
    if parent is None:
        return Plan("scratch", "from scratch: no champion yet")
    parent_tokenizer = _upstream(store, parent, "tokenizer")
    if parent_tokenizer is None or parent_tokenizer.stats.get("fingerprint") != tokenizer.stats.get("fingerprint"):
        return Plan("scratch", "from scratch: the tokenizer changed since the champion's base model", parent)
    wanted = {key: parent.config.get(key) for key in preset}
    if wanted != preset:
        return Plan("scratch", f"from scratch: the model preset changed ({wanted} -> {preset})", parent)
    generation = int(parent.stats.get("generation", 0)) + 1
    if full_retrain_every and generation >= full_retrain_every:
        return Plan("scratch", f"from scratch: the periodic full retrain (every {full_retrain_every} models)", parent)
    parent_set = _upstream(store, parent, "shard_set")
    # A night is new when the parent never read its shards: a day added since, or a day made again (re-filtered).
    seen = {(n["day"], n["version"]) for n in parent_set.stats.get("nights", [])} if parent_set else set()
    new_days = [n["day"] for n in shard_set.stats.get("nights", []) if (n["day"], n["version"]) not in seen]
    newly_excluded = set(_excluded(store, shard_set)) - set(_excluded(store, parent_set) if parent_set else [])
    read_by_parent = _readable_documents(store, parent_set) if parent_set and newly_excluded else set()
    if newly_excluded & read_by_parent:
        count = len(newly_excluded & read_by_parent)
        return Plan("scratch", f"from scratch: {count} newly excluded document(s) were read by the parent", parent)
    checkpoint = store.local_path(parent.asset, parent.version) / CHECKPOINT_DIR
    recorded = {entry.path: entry.sha256 for entry in parent.files}
    weights = f"{CHECKPOINT_DIR}/{WEIGHTS}"
    if (
        weights not in recorded
        or not (checkpoint / WEIGHTS).is_file()
        or (file_sha256(checkpoint / WEIGHTS) != recorded[weights])
    ):
        return Plan("scratch", f"from scratch: the parent's {weights} is missing or fails its sha256", parent)
    if not new_days:
        return Plan(
            "keep", f"no new tokens since base_model/{parent.version}: the champion's base model stays", parent
        )
    optimizer = f"{CHECKPOINT_DIR}/{OPTIMIZER}"
    optimizer_ok = (checkpoint / OPTIMIZER).is_file() and file_sha256(checkpoint / OPTIMIZER) == recorded.get(
        optimizer
    )
    reason = f"continued from base_model/{parent.version} on {len(new_days)} new night(s)"
    if not optimizer_ok:
        reason += f", with a fresh optimizer ({optimizer} is missing or fails its sha256)"
    return Plan("continue", reason, parent, new_days, checkpoint, optimizer_ok, generation)


def _upstream(store: ArtifactStore, manifest: Manifest, asset: str) -> Manifest | None:
    ref = next((ref for ref in manifest.upstream if ref.asset == asset), None)
    return store.read_manifest(ref.asset, ref.version) if ref and store.exists(ref.asset, ref.version) else None


def _excluded(store: ArtifactStore, shard_set: Manifest) -> list[str]:
    from data_code.shards.shard_set import set_description

    return set_description(store.local_path(shard_set.asset, shard_set.version)).get("excluded_documents", [])


def _readable_documents(store: ArtifactStore, shard_set: Manifest) -> set[str]:
    """doc_ids with a span in any shard the set points to (its readers skip excluded rows, not whole shards)."""
    import json

    import pyarrow.parquet as pq

    directory = store.local_path(shard_set.asset, shard_set.version)
    index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
    found: set[str] = set()
    for entries in index["splits"].values():
        for entry in entries:
            found.update(pq.read_table(directory / entry["spans"], columns=["doc_id"]).column("doc_id").to_pylist())
    return found
