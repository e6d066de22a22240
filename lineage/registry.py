"""The MLflow Model Registry conventions: which serving artifact is registered, which one serves, and why.

One registered model (`lmforge`, or $LMFORGE_MODEL_NAME). Each deployment registers its serving artifact as a new
model version whose source is the artifact's uri and whose tags name the artifact (`lmforge.asset`, `lmforge.version`,
`lmforge.uri`) and the gate decision (`lmforge.gate`, `lmforge.gate_reason`). Aliases:
- `challenger`: the newest registered version;
- `champion`: the version that serves; moved only when the gate passes (or by `rollback`, with a recorded reason).
The previous champion keeps its version (and gets the tag `lmforge.demoted_at`), so a rollback can return to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lineage.manifest import now_iso
from lineage.settings import Settings
from lineage.tracking import TAG_PREFIX

MODEL_NAME = "lmforge"
CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    asset: str
    artifact_version: str
    uri: str
    aliases: tuple[str, ...]
    gate: str | None
    tags: dict


class Registry:
    """Register serving artifacts, move aliases, roll back; every change leaves a tag saying when and why."""

    def __init__(self, client: MlflowClient, name: str | None = None):
        self.client, self.name = client, name or Settings.from_env().model_name

    def ensure_model(self) -> None:
        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="lmforge serving artifacts; alias `champion` serves."
            )

    def register(self, *, asset: str, version: str, uri: str, run_id: str | None, tags: dict[str, str]) -> str:
        """A new model version for an artifact (or the existing one when that artifact is already registered)."""
        self.ensure_model()
        existing = self.find(asset, version)
        if existing is not None:
            return existing.version
        all_tags = {
            f"{TAG_PREFIX}asset": asset,
            f"{TAG_PREFIX}version": version,
            f"{TAG_PREFIX}uri": uri,
            f"{TAG_PREFIX}registered_at": now_iso(),
            **tags,
        }
        model_version = self.client.create_model_version(
            self.name, source=uri, run_id=run_id, tags={k: str(v) for k, v in all_tags.items()}
        )
        self.client.set_registered_model_alias(self.name, CHALLENGER, model_version.version)
        return str(model_version.version)

    def describe(self, version: str, links: dict[str, str]) -> None:
        """The model version's description: Markdown links (the MLflow UI renders them), one click each."""
        text = " · ".join(f"[{label}]({url})" for label, url in links.items())
        self.client.update_model_version(self.name, version, description=text)

    def find(self, asset: str, version: str) -> RegisteredVersion | None:
        """The model version registered for artifact `asset/version`, if any."""
        query = f"name='{self.name}' and tags.`{TAG_PREFIX}version`='{version}'"
        for found in self.client.search_model_versions(query):
            if found.tags.get(f"{TAG_PREFIX}asset") == asset:
                return self.get(str(found.version))
        return None

    def get(self, version: str) -> RegisteredVersion:
        found = self.client.get_model_version(self.name, version)
        tags = dict(found.tags)
        return RegisteredVersion(
            name=self.name,
            version=str(found.version),
            asset=tags.get(f"{TAG_PREFIX}asset", ""),
            artifact_version=tags.get(f"{TAG_PREFIX}version", ""),
            uri=tags.get(f"{TAG_PREFIX}uri", found.source),
            aliases=tuple(found.aliases),
            gate=tags.get(f"{TAG_PREFIX}gate"),
            tags=tags,
        )

    def aliases(self) -> dict[str, str]:
        """alias -> model version (empty when nothing is registered)."""
        try:
            aliases = self.client.get_registered_model(self.name).aliases
            return {alias: str(version) for alias, version in aliases.items()}
        except MlflowException:
            return {}

    def by_alias(self, alias: str) -> RegisteredVersion:
        """The version behind `alias`; ValueError listing the aliases that exist when it does not."""
        aliases = self.aliases()
        if alias not in aliases:
            known = ", ".join(f"{name} -> v{version}" for name, version in sorted(aliases.items())) or "none"
            raise ValueError(f"model '{self.name}' has no alias '{alias}' (aliases: {known})")
        return self.get(aliases[alias])

    def champion(self) -> RegisteredVersion | None:
        aliases = self.aliases()
        return self.get(aliases[CHAMPION]) if CHAMPION in aliases else None

    def record_gate(self, version: str, passed: bool, reason: str) -> None:
        self.client.set_model_version_tag(self.name, version, f"{TAG_PREFIX}gate", "passed" if passed else "failed")
        self.client.set_model_version_tag(self.name, version, f"{TAG_PREFIX}gate_reason", reason[:5000])

    def promote(self, version: str, reason: str) -> str | None:
        """Move `champion` to `version`; returns the previous champion's version (kept registered)."""
        previous = self.champion()
        if previous is not None and previous.version == version:
            return None
        stamp = now_iso()
        if previous is not None:
            self.client.set_model_version_tag(self.name, previous.version, f"{TAG_PREFIX}demoted_at", stamp)
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        self.client.set_model_version_tag(self.name, version, f"{TAG_PREFIX}promoted_at", stamp)
        self.client.set_model_version_tag(self.name, version, f"{TAG_PREFIX}promotion_reason", reason[:5000])
        return previous.version if previous is not None else None

    def rollback(self, reason: str, to_version: str | None = None) -> tuple[str, str]:
        """Move `champion` back to `to_version` (default: the most recently demoted earlier champion).

        Returns (from, to). The reason is recorded on both versions; ValueError when there is nothing to go back to.
        """
        if not reason.strip():
            raise ValueError("rollback needs a reason (it is recorded on the model versions)")
        current = self.champion()
        if current is None:
            raise ValueError(f"model '{self.name}' has no champion to roll back")
        target = self.get(to_version) if to_version else self._previous_champion(current.version)
        if target.version == current.version:
            raise ValueError(f"version {target.version} already is the champion")
        stamp = now_iso()
        self.client.set_registered_model_alias(self.name, CHAMPION, target.version)
        self.client.set_model_version_tag(self.name, current.version, f"{TAG_PREFIX}rolled_back_at", stamp)
        self.client.set_model_version_tag(self.name, current.version, f"{TAG_PREFIX}rollback_reason", reason)
        self.client.set_model_version_tag(self.name, target.version, f"{TAG_PREFIX}promoted_at", stamp)
        self.client.set_model_version_tag(
            self.name, target.version, f"{TAG_PREFIX}promotion_reason", f"rollback from v{current.version}: {reason}"
        )
        return current.version, target.version

    def _previous_champion(self, current: str) -> RegisteredVersion:
        """The most recently demoted version other than `current`."""
        demoted = [
            self.get(str(found.version))
            for found in self.client.search_model_versions(f"name='{self.name}'")
            if str(found.version) != current and f"{TAG_PREFIX}demoted_at" in found.tags
        ]
        if not demoted:
            raise ValueError(f"model '{self.name}' has no earlier champion to roll back to")
        return max(demoted, key=lambda version: version.tags[f"{TAG_PREFIX}demoted_at"])
