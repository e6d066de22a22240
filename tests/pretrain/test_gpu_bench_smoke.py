"""bench.gpu_pretrain's CPU smoke path: the GPU benchmark script runs end to end and writes its JSON report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "preset",
    "params",
    "micro_batch",
    "seq_len",
    "tokens_per_s",
    "mfu",
    "peak_mem_gb",
    "loss_first",
    "loss_last",
    "compile_s",
}


def test_cpu_smoke_writes_the_report(tmp_path):
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        "-m",
        "bench.gpu_pretrain",
        "--json",
        str(out),
        "--presets",
        "tiny",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--seq-len",
        "64",
        "--micro-batch",
        "2",
        "--no-compile",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tiny" in done.stdout and "goal MFU" in done.stdout

    result = json.loads(out.read_text(encoding="utf-8"))
    assert {"device", "torch", "presets", "goal_mfu", "met"} <= set(result)
    assert result["goal_mfu"] == 0.40 and result["met"] is False and result["skipped"] == []  # no MFU on a CPU
    [record] = result["presets"]
    assert FIELDS <= set(record), sorted(FIELDS - set(record))
    assert record["preset"] == "tiny" and record["micro_batch"] == 2 and record["seq_len"] == 64
    assert record["params"] > 0 and record["tokens_per_s"] > 0 and record["timed_steps"] == 2
    assert record["mfu"] is None and record["peak_mem_gb"] is None and record["compiled"] is False
    assert math.isfinite(record["loss_first"]) and math.isfinite(record["loss_last"])
    assert record["loss_ok"] and record["loss_last"] < record["loss_first"]  # a fixed batch, memorized
    assert abs(record["loss_first"] - math.log(32_768)) < 0.5  # a fresh model starts near uniform over the vocab
