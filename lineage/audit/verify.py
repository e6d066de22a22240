"""Reproducibility check: are an artifact's files the ones its manifest lists, and is its version what its recorded
config, code version and upstream versions say it must be?

Each finding is a dict {asset, version, kind, path?, expected?, actual?, detail}. Kinds that fail verification:
missing_file, extra_file, size_changed, hash_changed, version_mismatch, config_mismatch, manifest_mismatch,
missing_upstream.
`identity_unverified` (the manifest lacks what re-deriving its version needs) is a warning, not a failure.
"""

from __future__ import annotations

import time
from typing import Any

from upath import UPath

from data_code.files import file_sha256
from lineage.audit.chain import Chain, Node, read_raw_manifest
from lineage.audit.identity import identity_conflicts, rederive_version
from lineage.manifest import MANIFEST_NAME
from lineage.store import ArtifactStore

CHUNK_BYTES = 1 << 20  # hash in 1 MiB reads: flat memory whatever the file size
WARNING_KINDS = frozenset({"identity_unverified"})


def verify_artifact(store: ArtifactStore, asset: str, version: str) -> list[dict]:
    """Findings for one artifact (an empty list: every file and the version check out)."""
    manifest, raw = read_raw_manifest(store, asset, version)
    missing = [
        {
            "asset": asset,
            "version": version,
            "kind": "missing_upstream",
            "detail": f"upstream {ref.asset}/{ref.version} is not a complete artifact in the store",
        }
        for ref in manifest.upstream
        if not store.exists(ref.asset, ref.version)
    ]
    return verify_node(store, Node(manifest, raw, 0))[0] + missing


def verify_chain(store: ArtifactStore, chain: Chain) -> dict[str, Any]:
    """Verify every artifact of a chain. Returns {verified, mismatches, warnings, artifacts_checked,
    files_checked, bytes_hashed, elapsed_s}; `verified` is True when there is no mismatch (warnings allowed)."""
    started = time.perf_counter()
    findings: list[dict] = [
        {
            **missing,
            "kind": "missing_upstream",
            "detail": f"{missing['referenced_by']} names "
            f"{missing['asset']}/{missing['version']}, which is not a complete artifact in the store",
        }
        for missing in chain.missing
    ]
    files = hashed = 0
    for node in chain.ordered():
        node_findings, node_files, node_bytes = verify_node(store, node)
        findings.extend(node_findings)
        files, hashed = files + node_files, hashed + node_bytes
    mismatches = [item for item in findings if item["kind"] not in WARNING_KINDS]
    return {
        "verified": not mismatches,
        "mismatches": mismatches,
        "warnings": [item for item in findings if item["kind"] in WARNING_KINDS],
        "artifacts_checked": len(chain.nodes),
        "files_checked": files,
        "bytes_hashed": hashed,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def verify_node(store: ArtifactStore, node: Node) -> tuple[list[dict], int, int]:
    """(findings, files checked, bytes hashed) for one artifact of a chain."""
    manifest = node.manifest
    where = {"asset": manifest.asset, "version": manifest.version}
    directory = store.artifact_path(manifest.asset, manifest.version)
    findings = [{**where, **item} for item in _identity_findings(node)]
    on_disk = _files_on_disk(directory)
    hashed = 0
    for entry in manifest.files:
        size = on_disk.pop(entry.path, None)
        if size is None:
            findings.append({**where, "kind": "missing_file", "path": entry.path, "detail": "listed, not on disk"})
            continue
        if size != entry.size:
            findings.append(
                {
                    **where,
                    "kind": "size_changed",
                    "path": entry.path,
                    "expected": entry.size,
                    "actual": size,
                    "detail": f"{entry.size} bytes recorded, {size} on disk",
                }
            )
            continue
        digest = file_sha256(directory / entry.path)
        hashed += size
        if digest != entry.sha256:
            findings.append(
                {
                    **where,
                    "kind": "hash_changed",
                    "path": entry.path,
                    "expected": entry.sha256,
                    "actual": digest,
                    "detail": "sha256 differs from the manifest",
                }
            )
    for path in sorted(on_disk):
        findings.append({**where, "kind": "extra_file", "path": path, "detail": "on disk, not in the manifest"})
    return findings, len(manifest.files), hashed


def _identity_findings(node: Node) -> list[dict]:
    manifest = node.manifest
    findings = []
    for field_name, recorded in (("asset", manifest.asset), ("version", manifest.version)):
        if node.raw.get(field_name) != recorded:
            findings.append({"kind": "manifest_mismatch", "path": MANIFEST_NAME, "detail": f"field {field_name}"})
    for name in identity_conflicts(manifest, node.raw):
        findings.append(
            {
                "kind": "config_mismatch",
                "path": MANIFEST_NAME,
                "detail": f"config field {name} differs "
                "from the value its version was computed from (manifest identity)",
            }
        )
    derived, how = rederive_version(manifest, node.raw)
    if derived is None:
        findings.append({"kind": "identity_unverified", "detail": how})
    elif derived != manifest.version:
        findings.append(
            {
                "kind": "version_mismatch",
                "path": MANIFEST_NAME,
                "expected": manifest.version,
                "actual": derived,
                "detail": f"re-derived from recorded config/code_version/upstream "
                f"({how}) gives {derived}, not {manifest.version}",
            }
        )
    return findings


def _files_on_disk(directory: UPath) -> dict[str, int]:
    """relative path -> size of every file under an artifact, manifests excluded (as lineage.manifest.hash_files
    excludes every file named manifest.json, nested ones included)."""
    found = {}
    for path in directory.rglob("*"):
        if path.is_file() and path.name != MANIFEST_NAME:
            found[path.relative_to(directory).as_posix()] = path.stat().st_size
    return found
