"""What to audit: a registered model version, an artifact directory, or an asset/version in the store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lineage.manifest import MANIFEST_NAME
from lineage.registry import Registry
from lineage.settings import Settings
from lineage.store import ArtifactStore

MODELS_SCHEME = "models:/"
_ASSET = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^[0-9a-f]{4,64}$")


def resolve_target(
    target: str, store: ArtifactStore, client: MlflowClient | None = None
) -> tuple[str, str, dict[str, Any] | None]:
    """(asset, version, registry info or None) for one of:

    - `models:/NAME@ALIAS` or `models:/NAME/VERSION`: a registered model version (its tags name the artifact);
    - a path to an artifact directory (one holding manifest.json);
    - `ASSET/VERSION` in the store, or `ASSET` alone for its newest complete version.
    ValueError for anything else, for an unknown alias (listing the aliases that exist) or version;
    FileNotFoundError when the artifact is not in the store.
    """
    if target.startswith(MODELS_SCHEME):
        return _from_registry(target, client)
    if (Path(target) / MANIFEST_NAME).is_file():
        raw = json.loads((Path(target) / MANIFEST_NAME).read_text())
        return raw["asset"], raw["version"], None
    asset, _, version = target.partition("/")
    if not _ASSET.match(asset) or (version and not _VERSION.match(version)):
        raise ValueError(
            f"audit target {target!r} is not models:/NAME@ALIAS, models:/NAME/VERSION, an artifact directory "
            "(with manifest.json), ASSET/VERSION or ASSET"
        )
    versions = store.versions(asset)
    if not versions:
        raise FileNotFoundError(f"audit target {target!r}: no complete {asset} artifact under {store.lake()}")
    if not version:
        return asset, max(versions, key=lambda v: store.read_manifest(asset, v).created_at), None
    if version not in versions:
        raise FileNotFoundError(
            f"audit target {target!r}: {asset} has no complete version {version} (versions: {', '.join(versions)})"
        )
    return asset, version, None


def _from_registry(target: str, client: MlflowClient | None) -> tuple[str, str, dict[str, Any]]:
    name, alias, number = _parse_models_uri(target)
    registry = Registry(client or MlflowClient(Settings.from_env().tracking_uri), name)
    if alias:
        found = registry.by_alias(alias)  # ValueError listing the aliases that exist
    else:
        try:
            found = registry.get(number)
        except MlflowException as error:
            raise ValueError(f"audit target {target!r}: model '{name}' has no version {number}") from error
    if not found.asset or not found.artifact_version:
        raise ValueError(
            f"audit target {target!r}: model version {found.version} has no lmforge.asset/lmforge.version tags "
            "(not registered by lmforge)"
        )
    info = {
        "name": found.name,
        "version": found.version,
        "aliases": list(found.aliases),
        "uri": found.uri,
        "gate": found.gate,
        "gate_reason": found.tags.get("lmforge.gate_reason"),
        "tags": dict(found.tags),
    }
    return found.asset, found.artifact_version, info


def _parse_models_uri(target: str) -> tuple[str, str | None, str | None]:
    """models:/NAME@ALIAS -> (NAME, ALIAS, None); models:/NAME/VERSION -> (NAME, None, VERSION)."""
    rest = target.removeprefix(MODELS_SCHEME)
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias and "/" not in name:
            return name, alias, None
    else:
        name, _, number = rest.partition("/")
        if name and number.isdigit():
            return name, None, number
    raise ValueError(f"audit target {target!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION (a number)")
