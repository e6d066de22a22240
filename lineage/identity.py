"""Artifact identity: a version is a short sha256 over what determines an artifact's content.

version = sha256(asset name, code_version, the config fields that change the output, upstream versions)[:16].
Same inputs give the same version, and so the existing artifact is reused instead of rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

VERSION_KEY = "lmforge/version"  # Dagster metadata key under which each materialization records its artifact version
VERSION_LENGTH = 16  # hex characters: 64 bits, collision-free for any realistic number of artifacts


def config_fields(config: Any) -> dict[str, Any]:
    """All fields of a config dataclass (or mapping) as plain JSON-able values."""
    if dataclasses.is_dataclass(config):
        return {field.name: _plain(getattr(config, field.name)) for field in dataclasses.fields(config)}
    return {key: _plain(value) for key, value in dict(config).items()}


def changed_fields(config: Any) -> dict[str, Any]:
    """The fields of a config dataclass whose value is not the field's default (all of a mapping's)."""
    if not dataclasses.is_dataclass(config):
        return config_fields(config)
    changed = {}
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING  # a required field: always worth showing
        value = _plain(getattr(config, field.name))
        if default is dataclasses.MISSING or value != _plain(default):
            changed[field.name] = value
    return changed


def versioned_fields(config: Any) -> dict[str, Any]:
    """The config fields that change an artifact's content.

    A dataclass field opts out with `field(metadata={"versioned": False})`: concurrency, worker counts and other
    knobs that change how fast an artifact is made but not what it holds.
    """
    if not dataclasses.is_dataclass(config):
        return config_fields(config)
    return {
        field.name: _plain(getattr(config, field.name))
        for field in dataclasses.fields(config)
        if field.metadata.get("versioned", True)
    }


def compute_version(
    asset: str, code_version: str, config: Mapping[str, Any], upstream: Mapping[str, str] | None = None
) -> str:
    """Short content address of an artifact from its asset name, code version, config and upstream versions."""
    payload = {
        "asset": asset,
        "code_version": code_version,
        "config": {key: _plain(value) for key, value in sorted(config.items())},
        "upstream": dict(sorted((upstream or {}).items())),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


def _plain(value: Any) -> Any:
    """Tuples become lists, nested dataclasses dicts, so equal configs serialize identically."""
    if dataclasses.is_dataclass(value):
        return config_fields(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value
