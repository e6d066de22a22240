"""Live MLflow metrics from the training process (resources.pretrain_process): each record reaches the run while
training runs, a resumed run catches up with the records of its earlier attempts, nothing is logged twice, and an
MLflow failure does not stop training."""

import json

import pytest
from mlflow.tracking import MlflowClient

from model_code.pretrain import train
from resources.pretrain_process import LIVE_KEY, LIVE_RUN_FILE, main
from tests.pretrain.conftest import write_config

FAST = dict(log_every=1, eval_every=0, checkpoint_every=2)  # a record at every step, a checkpoint every 2


def new_run(tracking_uri: str, name: str) -> str:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(name)
    experiment = found.experiment_id if found else client.create_experiment(name)
    return client.create_run(experiment).info.run_id


def run_pipes(config, tmp_path, tracking_uri: str, run_id: str) -> dict:
    """resources.pretrain_process as the launcher runs it (in this process), asked to log live into `run_id`."""
    config_path = write_config(config, tmp_path / "run.json")
    (tmp_path / LIVE_RUN_FILE).write_text(json.dumps({"tracking_uri": tracking_uri, "run_id": run_id}))
    main(["--config", str(config_path), "--result", str(tmp_path / "result.json")])
    return json.loads((tmp_path / "result.json").read_text())


def steps_of(tracking_uri: str, run_id: str, key: str = "loss") -> list[int]:
    return [point.step for point in MlflowClient(tracking_uri).get_metric_history(run_id, key)]


@pytest.mark.slow
def test_resumed_run_holds_every_step_once(make_config, tmp_path, mlflow_uri):
    train(make_config("run", max_steps=4, **FAST))  # an earlier attempt: steps 1-4, checkpoint at 4
    run_id = new_run(mlflow_uri, "live-resume")
    result = run_pipes(make_config("run", max_steps=6, **FAST), tmp_path, mlflow_uri, run_id)
    assert result["resumed_from_step"] == 4
    assert result[LIVE_KEY] == {"run_id": run_id, "through_step": 6, "error": None}
    assert steps_of(mlflow_uri, run_id) == [1, 2, 3, 4, 5, 6]  # 1-4 caught up from metrics.jsonl, 5-6 live
    assert steps_of(mlflow_uri, run_id, "lr") == [1, 2, 3, 4, 5, 6]
    # Resumed at its last step (the checkpoint at max_steps): no record arrives live, finish() logs them all.
    again = new_run(mlflow_uri, "live-resume")
    result = run_pipes(make_config("run", max_steps=6, **FAST), tmp_path, mlflow_uri, again)
    assert result["resumed_from_step"] == 6 and result[LIVE_KEY]["through_step"] == 6
    assert steps_of(mlflow_uri, again) == [1, 2, 3, 4, 5, 6]
    assert steps_of(mlflow_uri, run_id) == [1, 2, 3, 4, 5, 6]  # the first run got nothing more


def test_mlflow_failure_pauses_live_metrics_not_training(make_config, tmp_path, mlflow_uri):
    result = run_pipes(make_config("run", max_steps=3, **FAST), tmp_path, mlflow_uri, "no-such-run")
    assert result["steps"] == 3  # training finished
    live = result[LIVE_KEY]
    assert live["through_step"] == 0 and "no-such-run" in live["error"]  # the asset logs every step at the end
