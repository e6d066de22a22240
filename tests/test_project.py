"""The project as a newcomer meets it: the CLI, the Definitions, the home layout and its switches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lineage.settings import Settings, dagster_yaml, prepare_home
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_lmforge_help_lists_commands():
    result = subprocess.run([BIN / "lmforge", "--help"], capture_output=True, text=True, check=True)
    for command in ("init", "demo", "ui", "artifacts", "show"):
        assert command in result.stdout


def test_init_prepares_embedded_defaults(lmforge_home):
    result = subprocess.run([BIN / "lmforge", "init"], capture_output=True, text=True, check=True, env=os.environ)
    assert str(lmforge_home) in result.stdout
    config = yaml.safe_load((lmforge_home / "dagster" / "dagster.yaml").read_text())
    assert config["storage"]["sqlite"]["base_dir"] == str(lmforge_home / "dagster" / "storage")
    assert (lmforge_home / "lake").is_dir()


def test_each_part_is_switchable_by_environment(tmp_path):
    settings = Settings.from_env(
        {
            "LMFORGE_HOME": str(tmp_path),
            "LMFORGE_STORE_ROOT": "s3://bucket/lmforge",
            "MLFLOW_TRACKING_URI": "https://mlflow.internal",
            "LMFORGE_DAGSTER_POSTGRES_URL": "postgresql://dagster:pw@db/dagster",
        }
    )
    assert settings.store_root == "s3://bucket/lmforge"
    assert settings.tracking_uri == "https://mlflow.internal"
    storage = yaml.safe_load(dagster_yaml(settings))["storage"]
    assert storage == {"postgres": {"postgres_url": {"env": "LMFORGE_DAGSTER_POSTGRES_URL"}}}
    default = Settings.from_env({"LMFORGE_HOME": str(tmp_path)})
    assert default.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert default.store_root == str(tmp_path)


def test_resources_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LMFORGE_STORE_ROOT", "s3://bucket/lmforge")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'x.db'}")
    store = ArtifactStoreResource().store()
    assert store.root.protocol == "s3" and not store.is_local
    assert store.uri("documents", "abc") == "s3://bucket/lmforge/lake/documents/abc"
    assert MlflowTrackingResource().tracker().tracking_uri == f"sqlite:///{tmp_path / 'x.db'}"


def test_prepare_home_is_idempotent(tmp_path):
    settings = Settings.from_env({"LMFORGE_HOME": str(tmp_path)})
    assert prepare_home(settings) == [settings.dagster_home / "dagster.yaml"]
    assert prepare_home(settings) == []


@pytest.mark.slow
def test_dagster_definitions_validate(lmforge_home):
    env = {**os.environ, "DAGSTER_HOME": str(lmforge_home / "dagster")}
    prepare_home(Settings.from_env())
    result = subprocess.run(
        [BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_ui_default_seeds_come_from_the_environment():
    env = {**os.environ, "LMFORGE_CRAWL_SEEDS": "http://127.0.0.1:8000/,http://127.0.0.1:8001/"}
    code = "from assets.crawl import RawCrawlConfig; print(RawCrawlConfig().seeds)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['http://127.0.0.1:8000/', 'http://127.0.0.1:8001/']"
