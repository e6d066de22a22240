"""The artifact store as a Dagster resource: a local directory by default, s3:// or gs:// by configuration."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lineage.settings import Settings
from lineage.store import ArtifactStore


class ArtifactStoreResource(ConfigurableResource):
    """Where artifacts live: `<root>/lake/<asset>/<version>/`."""

    root: str | None = Field(
        default=None, description="Local path or fsspec URL; default $LMFORGE_STORE_ROOT or $LMFORGE_HOME."
    )

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root or Settings.from_env().store_root)
