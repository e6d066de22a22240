"""Seconds to train draft_model's four runs as one launched plan against one launch per run (CPU, tiny preset).

    python -m bench.launches --quick --json /tmp/launches_bench.json

draft_model trains two students, each on the corpus and then continued on the conversations. Each way here starts
the real training process (`python -m resources.pretrain_process`, as the launcher starts one local process) on
real token shards: four times with one run each (the baseline: what draft_model did before plans), then once with
the four runs as a plan, then that plan again after it finished (what a retried step costs: every run resumes at
its last checkpoint). The difference is the interpreter start and the torch and transformers imports of each
launch; the training itself is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pretrain import build_inputs
from model_code.config import PretrainConfig
from resources.pretrain_process import PLAN_KEY


def draft_like_runs(tokenizer_dir: Path, shards_dir: Path, out_dir: Path, steps: int) -> list[PretrainConfig]:
    """Two students, each trained `steps` and continued for steps // 2 from its own newest checkpoint."""
    common = dict(shards_dir=str(shards_dir), tokenizer_dir=str(tokenizer_dir), preset="tiny", micro_batch_size=8,
                  warmup_steps=5, log_every=5, eval_every=0, checkpoint_every=0)  # fmt: skip
    runs = []
    for student in ("distilled", "undistilled"):
        first = PretrainConfig(**common, max_steps=steps, output_dir=str(out_dir / student))
        second = PretrainConfig(**common, max_steps=max(1, steps // 2), output_dir=f"{first.output_dir}-instruct",
                                init_from=first.output_dir)  # fmt: skip
        runs += [first, second]
    return runs


def launch(config_path: Path) -> dict:
    """Run the training process on `config_path` as the local launcher does; its result.json."""
    result = config_path.with_suffix(".result.json")
    env = {**os.environ, "OMP_NUM_THREADS": str(len(os.sched_getaffinity(0)))}
    command = [
        sys.executable,
        "-m",
        "resources.pretrain_process",
        "--config",
        str(config_path),
        "--result",
        str(result),
    ]
    subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads(result.read_text())


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, round(time.perf_counter() - started, 2)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (CI smoke)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    steps = 10 if args.quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokenizer_dir, shards_dir = build_inputs(root)

        def one_launch_per_run():
            for index, run in enumerate(draft_like_runs(tokenizer_dir, shards_dir, root / "separate", steps)):
                path = root / f"run-{index}.json"
                path.write_text(json.dumps(run.to_dict()))
                launch(path)

        plan_path = root / "plan.json"
        plan = [run.to_dict() for run in draft_like_runs(tokenizer_dir, shards_dir, root / "plan", steps)]
        plan_path.write_text(json.dumps({PLAN_KEY: plan}))
        warm = root / "warm-up.json"  # imports and page cache warm for both ways, not just the second
        warm.write_text(json.dumps(draft_like_runs(tokenizer_dir, shards_dir, root / "warm", 1)[0].to_dict()))
        launch(warm)
        _, separate_s = timed(one_launch_per_run)
        trained, plan_s = timed(launch, plan_path)
        again, rerun_s = timed(launch, plan_path)
    result = {
        "runs": len(plan),
        "steps": steps,
        "one_launch_per_run_s": separate_s,
        "plan_s": plan_s,
        "plan_relaunched_s": rerun_s,
        "speedup": round(separate_s / plan_s, 2),
        "relaunch_resumed_every_run": [s["resumed_from_step"] for s in again[PLAN_KEY]]
        == [s["steps"] for s in trained[PLAN_KEY]],
    }
    print(f"{'four draft_model runs':<34}{'seconds':>10}")
    print(f"{'one launch per run (baseline)':<34}{separate_s:>10.1f}")
    print(f"{'one launch, a plan of four':<34}{plan_s:>10.1f}")
    print(f"{'the plan relaunched, all resumed':<34}{rerun_s:>10.1f}")
    print(f"speedup: {result['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
