"""Where lmforge keeps things: one home directory by default, each part switchable by environment alone.

| variable | default | production example |
|---|---|---|
| LMFORGE_HOME | ./.lmforge | /srv/lmforge |
| LMFORGE_STORE_ROOT | $LMFORGE_HOME | s3://bucket/lmforge |
| MLFLOW_TRACKING_URI | sqlite:///$LMFORGE_HOME/mlflow/mlflow.db | https://mlflow.internal |
| LMFORGE_MLFLOW_UI_URL | http://127.0.0.1:5000 (what `make ui` serves) | https://mlflow.internal |
| LMFORGE_DAGSTER_POSTGRES_URL | unset: Dagster on SQLite under $LMFORGE_HOME/dagster | postgresql://user:pw@host/db |
| LMFORGE_EXPERIMENT | lmforge | lmforge-prod |
| LMFORGE_MODEL_NAME | lmforge (registered model of the serving artifacts) | assistant-prod |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    store_root: str
    tracking_uri: str
    mlflow_artifact_root: str
    mlflow_ui_url: str
    lake_url: str  # where `lmforge ui` serves the lake read-only over http (file:// links do nothing in a browser)
    dagster_ui_url: str  # where the Dagster UI answers: MLflow runs link back to their Dagster run and asset
    experiment: str
    model_name: str
    dagster_home: Path
    dagster_postgres_url: str | None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("LMFORGE_HOME", ".lmforge")).expanduser().resolve()
        return cls(
            home=home,
            store_root=env.get("LMFORGE_STORE_ROOT") or str(home),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            mlflow_artifact_root=env.get("LMFORGE_MLFLOW_ARTIFACT_ROOT") or (home / "mlflow" / "artifacts").as_uri(),
            mlflow_ui_url=env.get("LMFORGE_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/"),
            lake_url=env.get("LMFORGE_LAKE_URL", "http://127.0.0.1:5001").rstrip("/"),
            dagster_ui_url=env.get("LMFORGE_DAGSTER_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
            experiment=env.get("LMFORGE_EXPERIMENT", "lmforge"),
            model_name=env.get("LMFORGE_MODEL_NAME", "lmforge"),
            dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster").resolve(),
            dagster_postgres_url=env.get("LMFORGE_DAGSTER_POSTGRES_URL") or None,
        )


# Run monitoring (the daemon's): a run whose worker died is marked failed, and the pool slots of every ended run are
# freed, so that a killed training step never blocks the next nightly run. Training starts slowly on a busy node
# (imports, data loading) and a cancelled one may be writing a checkpoint: the start and cancel timeouts allow it.
# Runs that `lmforge` executes in-process are recovered by cli/recovery.py before the next one starts.
RUN_MONITORING = (
    "run_monitoring:\n"
    "  enabled: true\n"
    "  start_timeout_seconds: 600\n"
    "  cancel_timeout_seconds: 600\n"
    "  poll_interval_seconds: 60\n"
    "  free_slots_after_run_end_seconds: 60\n"
)


def dagster_yaml(settings: Settings) -> str:
    """dagster.yaml for the instance: SQLite under DAGSTER_HOME, or Postgres when a URL is configured."""
    # No telemetry, and no "join the community" dialog over the UI of a tool the team runs every day.
    # Pools: only the training assets (base_model, sft_model, dpo_model) name one ("gpu"), so a default limit of 1
    # means one training step at a time on the node(s), whatever else runs beside it.
    common = "telemetry:\n  enabled: false\nnux:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
    common += RUN_MONITORING
    if settings.dagster_postgres_url:
        return common + ("storage:\n  postgres:\n    postgres_url:\n      env: LMFORGE_DAGSTER_POSTGRES_URL\n")
    return common + f"storage:\n  sqlite:\n    base_dir: {settings.dagster_home / 'storage'}\n"


def prepare_home(settings: Settings) -> list[Path]:
    """Create the home layout and DAGSTER_HOME/dagster.yaml (idempotent). Returns the paths it wrote."""
    written = []
    for directory in (settings.home / "lake", settings.home / "mlflow" / "artifacts", settings.dagster_home):
        directory.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    content = dagster_yaml(settings)
    if not config.exists() or config.read_text() != content:
        config.write_text(content)
        written.append(config)
    return written
