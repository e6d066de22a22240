"""Checkpoints and automatic resume: a SIGKILLed run resumes to bit-identical weights; a corrupt newest
checkpoint falls back to the previous one; 2-process data parallel follows the 1-process loss curve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from model_code.pretrain import train
from tests.pretrain.conftest import read_metrics, write_config

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def run_module(config_path: Path) -> subprocess.Popen:
    """`python -m model_code.pretrain --config ...`; its log goes to a file beside the config (a pipe could fill)."""
    command = [sys.executable, "-m", "model_code.pretrain", "--config", str(config_path)]
    log = open(config_path.with_suffix(".log"), "ab")  # noqa: SIM115 - the child process owns it
    return subprocess.Popen(command, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert a.keys() == b.keys()
    different = [name for name in a if not (a[name] == b[name]).all()]
    assert not different, f"tensors differ: {different}"


@pytest.mark.slow
def test_sigkilled_run_resumes_to_identical_weights(make_config, tmp_path):
    settings = dict(max_steps=240, checkpoint_every=40, keep_checkpoints=2, eval_every=80)
    whole = make_config("whole", **settings)
    assert run_module(write_config(whole, tmp_path / "whole.json")).wait(timeout=300) == 0
    killed = make_config("killed", **settings)
    config_path = write_config(killed, tmp_path / "killed.json")
    process = run_module(config_path)
    first_checkpoint = Path(killed.output_dir) / "checkpoints" / "step_000040" / "meta.json"
    deadline = time.monotonic() + 240
    while not first_checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (Path(killed.output_dir) / "model").exists()
    resumed = run_module(config_path)
    assert resumed.wait(timeout=300) == 0, config_path.with_suffix(".log").read_text()[-3000:]
    assert_same_weights(Path(whole.output_dir) / "model", Path(killed.output_dir) / "model")
    steps = [r["step"] for r in read_metrics(killed.output_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == 240  # records after the checkpoint were not duplicated
    kept = sorted(p.name for p in (Path(killed.output_dir) / "checkpoints").iterdir())
    assert kept == ["step_000200", "step_000240"]


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(make_config, caplog):
    first = train(make_config("run", max_steps=40, checkpoint_every=20))
    checkpoints = Path(first["model_dir"]).parent / "checkpoints"
    newest = checkpoints / "step_000040" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk
    resumed = train(make_config("run", max_steps=40, checkpoint_every=20))
    assert resumed["resumed_from_step"] == 20
    assert [s["checkpoint"] for s in resumed["skipped_checkpoints"]] == [str(checkpoints / "step_000040")]
    assert "step_000040 is unusable" in caplog.text
    reference = train(make_config("reference", max_steps=40, checkpoint_every=20))
    assert_same_weights(Path(reference["model_dir"]), Path(resumed["model_dir"]))


@pytest.mark.slow
def test_two_process_data_parallel_follows_the_one_process_curve(make_config, tmp_path):
    """Same global batch (16 rows): 1 process x 2 accumulated micro-batches vs 2 processes x 1. The rows are the
    same; only the float summation order of the gradient all-reduce differs, so losses agree to ~1e-6."""
    settings = dict(max_steps=20, log_every=1, tokens_per_step=16 * 64, checkpoint_every=0, eval_every=10)
    single = make_config("single", **settings)
    parallel = make_config("parallel", **settings)
    assert run_module(write_config(single, tmp_path / "single.json")).wait(timeout=300) == 0
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "model_code.pretrain",
        "--config",
        str(write_config(parallel, tmp_path / "parallel.json")),
    ]
    result = subprocess.run(launcher, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"processes": 2' in result.stderr
    one, two = read_metrics(single.output_dir), read_metrics(parallel.output_dir)
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 21))
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-4)
    np.testing.assert_allclose(
        [r["val_loss"] for r in two if "val_loss" in r], [r["val_loss"] for r in one if "val_loss" in r], rtol=1e-4
    )
