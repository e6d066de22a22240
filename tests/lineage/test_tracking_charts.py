"""MLflow charts that tell the truth: real times, summaries at the last step and never twice, the training view."""

from __future__ import annotations

import time

import pytest

from lineage.manifest import Manifest
from lineage.tracking import EXPERIMENT_KIND, MODEL_TRAINING, Tracker


@pytest.fixture()
def tracker(tmp_path):
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "lmforge", str(tmp_path / "artifacts"), "http://ui")


def manifest(stats: dict) -> Manifest:
    return Manifest(asset="base_model", version="v1", config={"preset": "tiny"}, code_version="base_model-3",
                    upstream=[], files=[], stats=stats)  # fmt: skip


def test_a_history_and_its_summary_chart_as_trained(tracker):
    started = time.time() * 1000
    history = [{"step": 10, "val_loss": 6.8, "loss": 7.0}, {"step": 20, "val_loss": 6.2, "loss": 6.1}]
    with tracker.run(asset="base_model", version="v1", tags={}) as run_id:
        tracker.record(run_id, manifest({"steps": 20, "val_loss": 6.2, "final_loss": 6.1}), [], {})
        tracker.log_history(run_id, history)
    points = tracker.client.get_metric_history(run_id, "val_loss")
    assert sorted((p.step, p.value) for p in points) == [(10, 6.8), (20, 6.2)]  # no fake step-0 point, none twice
    assert all(p.timestamp >= started - 1000 for p in points)  # dated now, not 1970
    [final] = tracker.client.get_metric_history(run_id, "final_loss")
    assert final.step == 20 and final.timestamp >= started - 1000


def test_stats_without_steps_are_one_point_at_step_zero(tracker):
    with tracker.run(asset="documents", version="v1", tags={}) as run_id:
        tracker.record(run_id, manifest({"documents": 12}), [], {})
    [point] = tracker.client.get_metric_history(run_id, "documents")
    assert point.step == 0 and point.value == 12 and point.timestamp > 0


def test_the_experiment_opens_in_the_model_training_view(tracker):
    experiment = tracker.client.get_experiment(tracker.experiment_id())
    assert experiment.tags[EXPERIMENT_KIND] == MODEL_TRAINING


def test_an_experiment_made_before_gets_the_view_too(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    old = Tracker(uri, "lmforge", None, "http://ui")
    experiment_id = old.client.create_experiment("lmforge")
    assert EXPERIMENT_KIND not in old.client.get_experiment(experiment_id).tags
    assert Tracker(uri, "lmforge", None, "http://ui").experiment_id() == experiment_id
    assert old.client.get_experiment(experiment_id).tags[EXPERIMENT_KIND] == MODEL_TRAINING
