"""A run whose process is SIGKILLed while base_model trains never blocks the next run.

The run executes in a child process (as `lmforge run` and `lmforge demo` execute one) on a real Dagster instance
whose `gpu` pool has one slot. After the kill the run is still STARTED, holds that slot and its MLflow run is
RUNNING; recover_dead_runs marks it FAILED with a message, frees the slot and ends the MLflow run as FAILED, and
the next run completes, resuming from the dead run's last checkpoint.
"""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from dagster import DagsterInstance, DagsterRunStatus, materialize
from mlflow.tracking import MlflowClient

from assets.pretrain import base_model
from cli.recovery import process_tags, recover_dead_runs
from lineage.settings import Settings, prepare_home
from lineage.tracking import Tracker
from pipelines.definitions import resources
from tests.pretrain.test_base_model_live import materialize_data

# Long enough that the kill lands mid-training; the resumed run finishes the rest.
PRETRAIN = {"preset": "tiny", "max_steps": 400, "log_every": 10, "eval_every": 1000, "checkpoint_every": 5}
CHILD = """
import sys
from dagster import DagsterInstance, materialize
from assets.pretrain import base_model
from cli.recovery import process_tags
from pipelines.definitions import resources
config = {"ops": {"base_model": {"config": %r}}}
with DagsterInstance.get() as instance:
    materialize([base_model], instance=instance, resources=resources(), run_config=config, tags=process_tags())
"""


@pytest.fixture
def home(lmforge_home, corpus_path, monkeypatch):
    """A persistent instance (DAGSTER_HOME under the home, one `gpu` slot) holding corpus, tokenizer and shards."""
    settings = Settings.from_env()
    prepare_home(settings)
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    with DagsterInstance.get() as instance:
        assert materialize_data(instance, corpus_path)
    return settings


def wait_for_checkpoint(settings: Settings, child: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if list((settings.home / "work" / "base_model").glob("*/checkpoints/*")):
            return
        assert child.poll() is None, f"the training run ended before any checkpoint (status {child.returncode})"
        time.sleep(0.05)
    raise AssertionError("no checkpoint within the time limit")


@pytest.mark.slow
def test_a_killed_training_run_is_recovered_and_the_next_run_resumes(home):
    child = subprocess.Popen([sys.executable, "-c", CHILD % PRETRAIN], start_new_session=True, env=os.environ.copy())
    try:
        wait_for_checkpoint(home, child)
        trainers = psutil.Process(child.pid).children(recursive=True)  # accelerate and the training process
        assert trainers
    finally:
        os.kill(child.pid, signal.SIGKILL)  # the run process alone, as the OOM killer would
        child.wait(timeout=30)
    # Orphaned, the training processes end by themselves (they must not train on beside the retry).
    gone, alive = psutil.wait_procs(trainers, timeout=60)
    assert not alive, f"training processes still running after their launcher died: {alive}"

    tracker = Tracker.from_settings(home)
    with DagsterInstance.get() as instance:
        [dead] = instance.get_runs()[:1]
        assert dead.status == DagsterRunStatus.STARTED  # nothing else would ever end it
        assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots  # and it holds the only slot
        running = MlflowClient(home.tracking_uri).search_runs(
            [tracker.experiment_id()], filter_string=f"tags.`lmforge.dagster_run_id` = '{dead.run_id}'"
        )
        assert [run.info.status for run in running] == ["RUNNING"]

        assert recover_dead_runs(instance, tracker, out=lambda line: None) == [dead.run_id]

        failed = instance.get_run_by_id(dead.run_id)
        assert failed.status == DagsterRunStatus.FAILURE
        [failure] = [e for e in instance.all_logs(dead.run_id) if e.dagster_event and e.dagster_event.is_run_failure]
        assert "is gone: killed or crashed" in failure.message
        assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
        ended = MlflowClient(home.tracking_uri).get_run(running[0].info.run_id)
        assert ended.info.status == "FAILED" and "killed or crashed" in ended.data.tags["lmforge.failure"]
        assert "lmforge.complete" not in ended.data.tags
        assert recover_dead_runs(instance, tracker, out=lambda line: None) == []  # idempotent

        config = {"ops": {"base_model": {"config": PRETRAIN}}}
        result = materialize(
            [base_model], instance=instance, resources=resources(), run_config=config, tags=process_tags()
        )
    assert result.success
    stats = result.asset_materializations_for_node("base_model")[0].metadata
    assert stats["resumed_from_step"].value >= 5  # from the dead run's checkpoint, not from scratch
    assert stats["steps"].value == PRETRAIN["max_steps"]
