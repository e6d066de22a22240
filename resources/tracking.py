"""MLflow tracking as a Dagster resource: one run per materialization (see lineage/tracking.py).

dagster-mlflow's resource opens one run per Dagster *run*; lmforge needs one per *materialization* and explicit
client calls that work from any process, so this small resource wraps MlflowClient instead.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lineage.settings import Settings
from lineage.tracking import Tracker


class MlflowTrackingResource(ConfigurableResource):
    """MLflow tracking server or local SQLite store, plus the UI address used for links in Dagster."""

    tracking_uri: str | None = Field(default=None, description="Default $MLFLOW_TRACKING_URI or SQLite in home.")
    experiment: str | None = Field(default=None, description="Default $LMFORGE_EXPERIMENT or 'lmforge'.")
    artifact_root: str | None = Field(default=None, description="Artifact location for a new experiment.")
    ui_url: str | None = Field(default=None, description="Base URL of the MLflow UI, for run links.")

    def tracker(self) -> Tracker:
        settings = Settings.from_env()
        return Tracker(
            tracking_uri=self.tracking_uri or settings.tracking_uri,
            experiment=self.experiment or settings.experiment,
            artifact_root=self.artifact_root or settings.mlflow_artifact_root,
            ui_url=self.ui_url or settings.mlflow_ui_url,
        )
