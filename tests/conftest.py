"""Shared fixtures: an isolated LMFORGE_HOME per test and one MLflow SQLite store per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """A real MLflow tracking store on SQLite, shared by the session (creating its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def lmforge_home(tmp_path, monkeypatch, mlflow_uri):
    """LMFORGE_HOME in tmp_path, MLflow on the session store, a fresh experiment per test."""
    home = tmp_path / "home"
    monkeypatch.setenv("LMFORGE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("LMFORGE_EXPERIMENT", f"test-{tmp_path.name}")
    monkeypatch.setenv("LMFORGE_MLFLOW_ARTIFACT_ROOT", (tmp_path / "mlartifacts").as_uri())
    monkeypatch.delenv("LMFORGE_STORE_ROOT", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return home


@pytest.fixture(scope="session")
def quality_model(tmp_path_factory) -> tuple[str, dict]:
    """(model directory, training stats) of a quality classifier trained once per session on the offline demo
    defaults (default_training_examples, ~3 s)."""
    from data_code.filters.quality_classifier import (
        QualityClassifierConfig,
        default_training_examples,
        train_quality_classifier,
    )

    out_dir = tmp_path_factory.mktemp("quality")
    positives, negatives = default_training_examples(seed=0)
    stats = train_quality_classifier(positives, negatives, out_dir, QualityClassifierConfig())
    return str(out_dir), stats
