"""The training launcher through real Dagster Pipes: locally, and under Slurm's srun (a stand-in srun here: the
one thing that cannot exist on this machine is the cluster)."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

from resources.launcher import TrainingLauncherResource
from tests.pretrain.conftest import write_config

FAKE_SRUN = """#!/bin/bash
# Records how it was called, drops its own --options, and runs the command on "the node" (this machine).
echo "$@" > "$FAKE_SRUN_LOG"
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


def run_training(launcher: TrainingLauncherResource, config_path, result_path):
    @asset
    def launched(context: AssetExecutionContext, training_launcher: TrainingLauncherResource) -> MaterializeResult:
        training_launcher.launch(context, config_path, result_path)
        return MaterializeResult()  # what base_model returns too: Pipes wants the asset to report its result

    with DagsterInstance.ephemeral() as instance:
        result = materialize([launched], resources={"training_launcher": launcher}, instance=instance)
        assert result.success
        return [entry.message for entry in instance.all_logs(result.run_id) if entry.message]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["local", "slurm"])
def test_launcher_runs_training_through_pipes(mode, tmp_path, make_config, monkeypatch):
    config = make_config(mode, max_steps=4, log_every=2, eval_every=0, checkpoint_every=0)
    config_path = write_config(config, tmp_path / "run.json")
    result_path = tmp_path / "result.json"
    launcher = TrainingLauncherResource(mode=mode)
    if mode == "slurm":
        srun = tmp_path / "srun"
        srun.write_text(FAKE_SRUN)
        srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("FAKE_SRUN_LOG", str(tmp_path / "srun.log"))
        launcher = TrainingLauncherResource(
            mode="slurm",
            srun=str(srun),
            slurm_args=["--partition=gpu", "--gpus-per-node=1"],
            shared_dir=str(tmp_path / "shared"),
        )
    messages = run_training(launcher, config_path, result_path)
    result = json.loads(result_path.read_text())
    assert result["steps"] == 4
    # accelerate launch alone would give the lone process one thread (OMP_NUM_THREADS=1): locally it gets them all.
    default = int(os.environ.get("OMP_NUM_THREADS", 1))  # what accelerate gives a process it is told nothing about
    assert result["cpu_threads"] == (len(os.sched_getaffinity(0)) if mode == "local" else default)
    assert any('"loss"' in message for message in messages)  # metrics arrived through Pipes while training
    if mode == "slurm":
        called = (tmp_path / "srun.log").read_text()
        assert called.startswith("--partition=gpu --gpus-per-node=1 ") and "resources.pretrain_process" in called
        assert os.listdir(tmp_path / "shared") == []  # the message file was read and cleaned up


def test_cpu_threads_are_shared_out_among_local_processes():
    cores = len(os.sched_getaffinity(0))
    alone = TrainingLauncherResource()  # one local process: started directly, its threads in the environment
    assert alone.command(Path("c"), Path("r"))[:3] == [sys.executable, "-m", "resources.pretrain_process"]
    assert alone.client().env["OMP_NUM_THREADS"] == str(cores)
    flagged = TrainingLauncherResource(launch_args=["--mixed_precision", "no"]).command(Path("c"), Path("r"))
    assert flagged[1] == "launch" and "--mixed_precision" in flagged  # launch flags: accelerate launch it is
    command = TrainingLauncherResource(num_processes=2).command(Path("run.json"), Path("result.json"))
    assert command[command.index("--num_cpu_threads_per_process") + 1] == str(max(1, cores // 2))
    pinned = TrainingLauncherResource(mode="slurm", cpu_threads_per_process=16).command(Path("c"), Path("r"))
    assert pinned[pinned.index("--num_cpu_threads_per_process") + 1] == "16"
    assert "--num_cpu_threads_per_process" not in TrainingLauncherResource(mode="slurm").command(Path("c"), Path("r"))
    with pytest.raises(ValueError, match="cpu_threads_per_process: must be >= 0"):
        TrainingLauncherResource(cpu_threads_per_process=-1).command(Path("c"), Path("r"))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode: must be one of"):
        TrainingLauncherResource(mode="ray").client()


def test_a_plan_trains_its_runs_in_one_launch_each_continuing_the_one_it_names(tmp_path, make_config):
    """Two runs in one process: the second starts from the first's newest checkpoint, named by its run directory."""
    first = make_config("first", max_steps=4, log_every=2, eval_every=0, checkpoint_every=0)
    second = make_config("second", max_steps=3, log_every=1, eval_every=0, checkpoint_every=0,
                         init_from=first.output_dir)  # fmt: skip
    config_path = tmp_path / "plan.json"
    config_path.write_text(json.dumps({"plan": [first.to_dict(), second.to_dict()]}))
    messages = run_training(TrainingLauncherResource(), config_path, tmp_path / "result.json")
    result = json.loads((tmp_path / "result.json").read_text())
    assert [stats["steps"] for stats in result["plan"]] == [4, 3]
    assert result["plan"][1]["warm_start"]["from"] == str(Path(first.output_dir) / "checkpoints" / "step_000004")
    assert result["plan"][1]["warm_start"]["parent_step"] == 4
    assert sum(message.startswith("launching (local)") for message in messages) == 1
    assert any(message.endswith("(run 2 of 2)") for message in messages)
    run_training(TrainingLauncherResource(), config_path, tmp_path / "again.json")  # a retried step relaunches it
    again = json.loads((tmp_path / "again.json").read_text())
    assert [stats["resumed_from_step"] for stats in again["plan"]] == [4, 3]  # each run ends where it had ended
    assert [s["final_loss"] for s in again["plan"]] == [s["final_loss"] for s in result["plan"]]  # and says so


def test_bad_plans_are_refused_naming_the_run(tmp_path, make_config):
    from resources.pretrain_process import main

    path = tmp_path / "plan.json"
    for plan, expected in (([], "'plan' must be a non-empty list"), ([{"preset": "tiny", "colour": 1}], "run 1 has")):
        path.write_text(json.dumps({"plan": plan}))
        with pytest.raises(ValueError, match=expected):
            main(["--config", str(path)])
    orphan = make_config("orphan", max_steps=2, init_from=str(tmp_path / "parent"))
    (tmp_path / "parent" / "checkpoints").mkdir(parents=True)  # a parent run that left no complete checkpoint
    path.write_text(json.dumps({"plan": [orphan.to_dict()]}))
    with pytest.raises(ValueError, match=r"parent run .*parent has no complete checkpoint to continue from"):
        main(["--config", str(path)])
    mixed = [make_config("a").to_dict(), make_config("b", mixed_precision="bf16").to_dict()]
    path.write_text(json.dumps({"plan": mixed}))
    with pytest.raises(ValueError, match="share one process and one mixed_precision"):
        main(["--config", str(path)])
    with pytest.raises(FileNotFoundError, match="pretraining config .*missing.json not found"):
        main(["--config", str(tmp_path / "missing.json")])
