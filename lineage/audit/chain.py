"""The lineage graph as recorded by manifests: an artifact's upstream chain, and every artifact downstream of one.

Both directions come from the `upstream` refs of manifest.json alone, so they work on any store (local or fsspec)
without Dagster or MLflow.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lineage.manifest import MANIFEST_NAME, Manifest
from lineage.store import ArtifactStore


def is_model_asset(asset: str) -> bool:
    """Whether artifacts of `asset` are trained models (base, tuned, quantized, serving; the quality classifier):
    the one rule the audit, the ML-BOM, the cards and which-models share."""
    return asset.endswith(("_model", "_classifier"))


@dataclass
class Node:
    """One artifact of a chain: its parsed manifest, the raw JSON (fields the dataclass does not know yet) and
    its distance from the target (0 = the target; an ancestor reached by two paths keeps the longest)."""

    manifest: Manifest
    raw: dict[str, Any]
    depth: int

    @property
    def key(self) -> str:
        return artifact_key(self.manifest.asset, self.manifest.version)


@dataclass
class Chain:
    """The target and all its ancestors (each once), plus upstream refs that point at no complete artifact."""

    target: str  # 'asset/version'
    nodes: dict[str, Node]  # 'asset/version' -> node
    missing: list[dict[str, str]] = field(default_factory=list)  # [{referenced_by, asset, version}]

    def ordered(self) -> list[Node]:
        """Ancestors first (deepest first), the target last; ties by asset, partition, version."""
        return sorted(
            self.nodes.values(),
            key=lambda node: (-node.depth, node.manifest.asset, node.manifest.partition or "", node.manifest.version),
        )

    def of_asset(self, asset: str) -> list[Node]:
        return [node for node in self.ordered() if node.manifest.asset == asset]


def artifact_key(asset: str, version: str) -> str:
    return f"{asset}/{version}"


def read_raw_manifest(store: ArtifactStore, asset: str, version: str) -> tuple[Manifest, dict[str, Any]]:
    """(parsed manifest, raw JSON dict) of a complete artifact; FileNotFoundError naming it when incomplete."""
    path = store.artifact_path(asset, version) / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"no complete artifact {asset}/{version}: {path} does not exist")
    text = path.read_text()
    return Manifest.from_json(text), json.loads(text)


def walk_chain(store: ArtifactStore, asset: str, version: str) -> Chain:
    """The upstream DAG of `asset/version`; shared ancestors appear once. FileNotFoundError if the target is
    missing; missing ancestors are listed in `Chain.missing` (the audit reports them, it does not stop)."""
    manifest, raw = read_raw_manifest(store, asset, version)
    target = artifact_key(asset, version)
    chain = Chain(target=target, nodes={target: Node(manifest, raw, 0)})
    queue = deque([target])
    while queue:
        node = chain.nodes[queue.popleft()]
        for ref in node.manifest.upstream:
            key = artifact_key(ref.asset, ref.version)
            if key in chain.nodes:
                if chain.nodes[key].depth < node.depth + 1:  # longest path: ancestors sort before descendants
                    chain.nodes[key].depth = node.depth + 1
                    queue.append(key)
                continue
            if not store.exists(ref.asset, ref.version):
                chain.missing.append({"referenced_by": node.key, "asset": ref.asset, "version": ref.version})
                continue
            up_manifest, up_raw = read_raw_manifest(store, ref.asset, ref.version)
            chain.nodes[key] = Node(up_manifest, up_raw, node.depth + 1)
            queue.append(key)
    return chain


def all_artifacts(store: ArtifactStore) -> list[tuple[str, str]]:
    """(asset, version) of every complete artifact in the store, sorted."""
    lake = store.lake()
    if not lake.exists():
        return []
    assets = sorted(p.name for p in lake.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [(asset, version) for asset in assets for version in store.versions(asset)]


def downstream_map(store: ArtifactStore, manifests: dict[str, Manifest] | None = None) -> dict[str, list[str]]:
    """'asset/version' -> the artifacts that name it as upstream (direct children only)."""
    manifests = manifests if manifests is not None else load_manifests(store)
    children: dict[str, list[str]] = {}
    for key, manifest in manifests.items():
        for ref in manifest.upstream:
            children.setdefault(artifact_key(ref.asset, ref.version), []).append(key)
    return {key: sorted(set(value)) for key, value in children.items()}


def descendants(children: dict[str, list[str]], start: str) -> list[str]:
    """Every artifact reachable downstream of `start` (not `start` itself), sorted."""
    seen: set[str] = set()
    queue = deque(children.get(start, []))
    while queue:
        key = queue.popleft()
        if key not in seen:
            seen.add(key)
            queue.extend(children.get(key, []))
    return sorted(seen)


def load_manifests(store: ArtifactStore) -> dict[str, Manifest]:
    """Every complete artifact's manifest, keyed 'asset/version'."""
    return {artifact_key(a, v): store.read_manifest(a, v) for a, v in all_artifacts(store)}


def read_table(store: ArtifactStore, asset: str, version: str, relative: str, columns=None) -> pa.Table | None:
    """A Parquet file of an artifact (selected columns), or None when the artifact has no such file."""
    path = store.artifact_path(asset, version) / relative
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return pq.read_table(handle, columns=columns)


def read_json_file(store: ArtifactStore, asset: str, version: str, relative: str) -> Any:
    """A JSON file of an artifact, or None when the artifact has no such file."""
    path = store.artifact_path(asset, version) / relative
    return json.loads(path.read_text()) if path.exists() else None
