"""Whether tonight's base model continues the champion's, trains from scratch, or is not trained at all.

    plan = plan_continuation(store, champion_base_model(store, client), shard_set, tokenizer, ...)
    plan.mode      continue | scratch | keep (no new night since the parent: the champion's base model stays)
    plan.reason    in plain words, for the asset's metadata and its MLflow run

A continued model starts from its parent's checkpoint (weights + optimizer state) and reads the nights the parent
never read, plus a replay share of the earlier ones. It trains from scratch when there is no champion yet, when
config says `from_scratch`, when the tokenizer or the model preset changed, on the periodic full retrain, when the
weights of the model it would start from fail their sha256.

An opt-out that reaches a document the parent, or any ancestor, read (a continued model cannot forget it) makes a
rebuild: tonight continues the newest ancestor whose whole chain never read an opted-out document, and replays every
night since (the shard set no longer holds the opted-out rows), or trains from scratch when there is none. Each base
model's documents_read.parquet says what its run read; the audit checks the new chain against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_code.files import file_sha256
from lineage.audit.chain import walk_chain
from lineage.manifest import Manifest
from lineage.store import ArtifactStore
from model_code.checkpoint import MODEL_FILE, OPTIMIZER_FILE
from model_code.outputs import CHECKPOINT_DIR, DOCUMENTS_READ_FILE

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
    rebuild_of: str | None = None  # the base_model version this one replaces because of an opt-out (continue)


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
    opted_out: set[str] | frozenset[str] = frozenset(),
) -> Plan:
    """Decide tonight's start (see the module docstring). `preset` is {"preset", "model_overrides"} of tonight;
    `opted_out` doc_ids the opt-out list reaches beyond what the shard set excludes (pages of a day made again
    without them: see parent_opt_outs)."""
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
    start, rebuild = _clean_start(store, parent, set(opted_out_documents(store, shard_set)) | set(opted_out))
    if start is None:
        return Plan("scratch", f"from scratch: {rebuild}", parent)
    generation = int(start.stats.get("generation", 0)) + 1
    if full_retrain_every and generation >= full_retrain_every:
        return Plan("scratch", f"from scratch: the periodic full retrain (every {full_retrain_every} models)", parent)
    start_set = _upstream(store, start, "shard_set")
    # A night is new when the start model never read its shards: a day added since, or one made again (re-filtered).
    seen = {(n["day"], n["version"]) for n in start_set.stats.get("nights", [])} if start_set else set()
    new_days = [n["day"] for n in shard_set.stats.get("nights", []) if (n["day"], n["version"]) not in seen]
    checkpoint = store.local_path(start.asset, start.version) / CHECKPOINT_DIR
    recorded = {entry.path: entry.sha256 for entry in start.files}
    weights = f"{CHECKPOINT_DIR}/{WEIGHTS}"
    if (
        weights not in recorded
        or not (checkpoint / WEIGHTS).is_file()
        or (file_sha256(checkpoint / WEIGHTS) != recorded[weights])
    ):
        return Plan("scratch", f"from scratch: base_model/{start.version}'s {weights} is missing or fails its sha256",
                    parent)  # fmt: skip
    if not new_days:
        return Plan(
            "keep", f"no new tokens since base_model/{parent.version}: the champion's base model stays", parent
        )
    optimizer = f"{CHECKPOINT_DIR}/{OPTIMIZER}"
    optimizer_ok = (checkpoint / OPTIMIZER).is_file() and file_sha256(checkpoint / OPTIMIZER) == recorded.get(
        optimizer
    )
    if rebuild:
        reason = f"rebuilt from base_model/{start.version}, {rebuild}; replaying {len(new_days)} night(s) since"
    else:
        reason = f"continued from base_model/{start.version} on {len(new_days)} new night(s)"
    if not optimizer_ok:
        reason += f", with a fresh optimizer ({optimizer} is missing or fails its sha256)"
    rebuild_of = parent.version if rebuild else None
    return Plan("continue", reason, start, new_days, checkpoint, optimizer_ok, generation, rebuild_of)


def parent_opt_outs(store: ArtifactStore, parent: Manifest | None) -> set[str]:
    """doc_ids in the parent's training chain that today's opt-out list names: a page an owner opted out of after
    its day was made is excluded by the shard set, but one whose day was made again leaves the set altogether, and
    only the list says the parent's chain holds it."""
    from lineage.optout import compliance_violations, load_optout

    if parent is None:
        return set()
    return {found["doc_id"] for found in compliance_violations(store, parent.asset, parent.version, load_optout())}


def ancestors(store: ArtifactStore, model: Manifest) -> list[Manifest]:
    """`model` and the base models it continued, newest first, back to the one trained from scratch."""
    chain = [model]
    while (parent := _upstream(store, chain[-1], "base_model")) is not None and len(chain) < 10_000:
        chain.append(parent)
    return chain


def documents_read(store: ArtifactStore, model: Manifest) -> set[str]:
    """doc_ids `model`'s own run read (its documents_read.parquet). A base model made before that record: every
    document its shard set let it read (more than it read; an over-count only ever asks for a rebuild)."""
    import pyarrow.parquet as pq

    recorded = store.local_path(model.asset, model.version) / DOCUMENTS_READ_FILE
    if recorded.is_file():
        return set(pq.read_table(recorded, columns=["doc_id"]).column("doc_id").to_pylist())
    shard_set = _upstream(store, model, "shard_set")
    return _readable_documents(store, shard_set) if shard_set is not None else set()


def opted_out_documents(store: ArtifactStore, shard_set: Manifest) -> list[str]:
    """The doc_ids a shard set excludes because their owners opted out."""
    from data_code.shards.shard_set import set_description

    return set_description(store.local_path(shard_set.asset, shard_set.version)).get("opted_out_documents", [])


def opt_out_proof(store: ArtifactStore, base_models: list[Manifest], shard_sets: list[Manifest]) -> dict:
    """For an audit: every doc_id the shard sets of a chain exclude as opted out, checked against what each base
    model of the chain read (its documents_read.parquet). `absent` is True when no model read one of them;
    `rebuilds` names, for a model made because an opt-out reached the one it replaces, the ancestor it started from."""
    opted_out = set().union(*(set(opted_out_documents(store, shards)) for shards in shard_sets))
    checked, rebuilds = [], []
    for model in base_models:
        read = documents_read(store, model)
        recorded = (store.local_path(model.asset, model.version) / DOCUMENTS_READ_FILE).is_file()
        found = sorted(opted_out & read)
        checked.append({"base_model": model.version, "documents_read": len(read), "recorded": recorded,
                        "opted_out_read": found})  # fmt: skip
        if model.stats.get("rebuild_of"):
            parent = _upstream(store, model, "base_model")
            rebuilds.append({"base_model": model.version, "replaces": model.stats["rebuild_of"],
                             "started_from": parent.version if parent else None})  # fmt: skip
    return {
        "opted_out_documents": sorted(opted_out),
        "base_models": checked,
        "rebuilds": rebuilds,
        "absent": not any(entry["opted_out_read"] for entry in checked),
    }


def _clean_start(store: ArtifactStore, parent: Manifest, opted_out: set[str]) -> tuple[Manifest | None, str]:
    """The model tonight continues: the parent, unless it or an ancestor read an opted-out document; then the newest
    ancestor whose whole chain never read one (with why), or (None, why) when every chain back to the first read one.
    """
    if not opted_out:
        return parent, ""
    chain = ancestors(store, parent)
    reached = [opted_out & documents_read(store, model) for model in chain]
    if not any(reached):
        return parent, ""
    newest_dirty_root_side = max(i for i, found in enumerate(reached) if found)  # every model newer inherits it
    hits = len(set().union(*reached))
    why = f"the newest ancestor that never read the {hits} opted-out document(s) base_model/{parent.version} inherits"
    if newest_dirty_root_side + 1 < len(chain):
        return chain[newest_dirty_root_side + 1], why
    return None, f"{hits} opted-out document(s) were read back to the first model of the chain (no clean ancestor)"


def _upstream(store: ArtifactStore, manifest: Manifest, asset: str) -> Manifest | None:
    ref = next((ref for ref in manifest.upstream if ref.asset == asset), None)
    return store.read_manifest(ref.asset, ref.version) if ref and store.exists(ref.asset, ref.version) else None


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
