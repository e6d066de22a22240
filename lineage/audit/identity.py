"""Re-derive an artifact's version from its manifest, exactly as assets/common.py artifact_version() derives it:

    compute_version(asset, code_version, {versioned config fields, extra_identity, partition}, {ref.key: version})

The manifest records every config field (versioned or not) and no extra_identity, so for the stages known here the
versioned fields come from the stage's config dataclass and the extra identity is rebuilt from recorded values.
A manifest that records `identity` (the exact mapping hashed) is used as is: that works for any stage.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from typing import Any

from lineage.identity import compute_version
from lineage.manifest import Manifest

IDENTITY_FIELD = "identity"  # manifest field, when present: the exact mapping handed to compute_version

# asset -> "module:ConfigClass" whose fields marked {"versioned": False} stay out of the version.
CONFIG_CLASSES = {
    "raw_crawl": "data_code.crawl.config:CrawlConfig",
    "documents": "data_code.extract.config:ExtractConfig",
    "deduplicated_documents": "data_code.dedupe.config:DedupeConfig",
    "filtered_documents": "data_code.filters.config:FilterConfig",
    "quality_classifier": "data_code.filters.quality_classifier:QualityClassifierConfig",
    "tokenizer": "data_code.tokenizer.config:TokenizerConfig",
    "token_shards": "data_code.shards.config:ShardConfig",
    "base_model": "model_code.config:PretrainConfig",
}
NO_CONFIG = frozenset({"training_corpus", "shard_set"})  # stages whose config is empty by construction


def _contract_identity(config: dict[str, Any]) -> dict[str, Any]:
    """filtered_documents hashes the corpus contract it validates with, built from two of its config fields."""
    from data_code.contracts import CorpusContract

    contract = CorpusContract(languages=tuple(config["languages"]), max_text_chars=config["max_text_chars"])
    return {"contract": repr(contract)}


def _default_examples_identity(config: dict[str, Any]) -> dict[str, Any]:
    """quality_classifier hashes its example files; the manifest does not record them, so only the demo default
    (built-in examples, this Python's minor version) can be re-derived."""
    default = f"stdlib-defaults-py{sys.version_info.major}.{sys.version_info.minor}"
    return {"positives": default, "negatives": default}


EXTRA_IDENTITY: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "filtered_documents": _contract_identity,
    "quality_classifier": _default_examples_identity,
}
# Stages whose extra identity is a guess (a mismatch there is reported as unverifiable, not as tampering).
GUESSED_EXTRA_IDENTITY = frozenset({"quality_classifier"})


def rederive_version(manifest: Manifest, raw: dict[str, Any]) -> tuple[str | None, str]:
    """(re-derived version or None when it cannot be re-derived, how it was derived / why not)."""
    upstream = {ref.key: ref.version for ref in manifest.upstream}
    recorded = raw.get(IDENTITY_FIELD)
    # An empty recorded identity is genuine only when there is nothing to hash (older manifests default to {}).
    if isinstance(recorded, dict) and (recorded or not (manifest.config or manifest.partition)):
        return compute_version(manifest.asset, manifest.code_version, recorded, upstream), "recorded identity"
    versioned = versioned_config(manifest.asset, manifest.config)
    if versioned is None:
        return None, (
            f"{manifest.asset} is not a stage this audit knows, and its manifest records no '{IDENTITY_FIELD}': "
            "which config fields are versioned is unknown"
        )
    identity = {**versioned, **EXTRA_IDENTITY.get(manifest.asset, lambda _: {})(manifest.config)}
    if manifest.partition:
        identity["partition"] = manifest.partition
    derived = compute_version(manifest.asset, manifest.code_version, identity, upstream)
    if manifest.asset in GUESSED_EXTRA_IDENTITY and derived != manifest.version:
        return None, (
            f"{manifest.asset}'s version hashes inputs its manifest does not record (extra identity: "
            f"{', '.join(sorted(EXTRA_IDENTITY[manifest.asset](manifest.config)))})"
        )
    return derived, "config dataclass " + CONFIG_CLASSES.get(manifest.asset, "(none)")


def identity_conflicts(manifest: Manifest, raw: dict[str, Any]) -> list[str]:
    """Fields whose value in the recorded identity differs from the recorded config (or partition): the version
    would check out while the config shown to an auditor is not what was hashed."""
    recorded = raw.get(IDENTITY_FIELD) or {}
    shown = {**manifest.config, **({"partition": manifest.partition} if manifest.partition else {})}
    return sorted(key for key in recorded.keys() & shown.keys() if recorded[key] != shown[key])  # both read from JSON


def versioned_config(asset: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded config without the fields its stage marks unversioned; None for an unknown stage."""
    if asset in NO_CONFIG:
        return dict(config)
    if asset not in CONFIG_CLASSES:
        return None
    module_name, class_name = CONFIG_CLASSES[asset].split(":")
    config_class = getattr(importlib.import_module(module_name), class_name)
    unversioned = {f.name for f in dataclasses.fields(config_class) if not f.metadata.get("versioned", True)}
    return {key: value for key, value in config.items() if key not in unversioned}
