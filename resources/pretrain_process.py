"""model_code.pretrain under Dagster Pipes: what the training launcher runs, on this machine or on GPU nodes.

    accelerate launch -m resources.pretrain_process --config run.json [--result result.json]

This is the process that TrainingLauncherResource (resources/launcher.py) starts; the hand-off file names are
defined here, once. run.json holds one run's PretrainConfig fields, or a plan, {"plan": [fields, ...]}: runs trained
one after another in this one process (a drafter and its twin, each in two phases), which saves a process start,
the imports and the Pipes session per run; a run whose init_from is an earlier run's output_dir continues from its
newest checkpoint. The result of a plan is {"plan": [each run's stats, in order]}.

The main process streams every metrics record to Dagster as a Pipes log line while it trains (other ranks train
silently) and writes the run's stats to --result. When a `mlflow_run.json` ({"tracking_uri", "run_id"}, written
by the base_model asset) lies beside --config, the main process also logs each record into that MLflow run as it
arrives, and reports under the result's "live_metrics" key up to which step the run holds them all. Outside a
Pipes launch it behaves like model_code.pretrain (plus the live MLflow metrics, when asked for).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from data_code.files import read_jsonl
from model_code.config import PretrainConfig
from model_code.outputs import METRICS_FILE

# The launch hand-off, all in the work directory that every launcher shares (local disk, Slurm share, k8s PVC):
RUN_CONFIG_FILE = "run.json"  # PretrainConfig fields, written by the launcher, read by this process
RESULT_FILE = "result.json"  # the run's stats, written by this process's main rank
PLAN_KEY = "plan"  # run.json {"plan": [PretrainConfig fields, ...]}; result.json {"plan": [stats, ...]}
LIVE_RUN_FILE = "mlflow_run.json"  # beside run.json: the MLflow run that receives the metrics while training
LIVE_KEY = "live_metrics"  # result key: {"run_id", "through_step", "error"}
MAX_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch
WATCH_PID, WATCH_STARTED = "LMFORGE_WATCH_PID", "LMFORGE_WATCH_STARTED"  # the launching process, on this machine
WATCH_EVERY_S = 2.0

log = logging.getLogger(__name__)


class LiveMetrics:
    """Logs metrics records into one MLflow run as they arrive, in step order, never a step twice.

    A resumed run first catches up with the records its earlier attempts wrote (metrics.jsonl up to the
    checkpoint), which went to another attempt's MLflow run. If MLflow fails, live logging pauses (training goes
    on) and `finish` tries once more to log everything missing; `through_step` says how far the run is complete.
    """

    def __init__(self, tracking_uri: str, run_id: str, metrics_path: Path, warn: Callable[[str], None]):
        from mlflow.tracking import MlflowClient

        self.client, self.run_id, self.metrics_path, self.warn = MlflowClient(tracking_uri), run_id, metrics_path, warn
        self.through_step = 0  # every record up to this step is in the run (steps count from 1)
        self.error: str | None = None
        self._caught_up = False

    @classmethod
    def from_file(cls, path: Path, metrics_path: Path, warn: Callable[[str], None]) -> LiveMetrics | None:
        """The live logger `path` asks for, or None when there is no such file."""
        if not path.is_file():
            return None
        spec = json.loads(path.read_text(encoding="utf-8"))
        missing = sorted({"tracking_uri", "run_id"} - set(spec))
        if missing:
            raise ValueError(f"{path} lacks {missing}")
        return cls(spec["tracking_uri"], spec["run_id"], metrics_path, warn)

    def log(self, record: dict) -> None:
        """on_metrics callback: log `record` (after the records of earlier attempts, the first time)."""
        if not self._caught_up:
            self._caught_up = True
            self._log([r for r in read_jsonl(self.metrics_path, missing_ok=True) if r["step"] < record["step"]])
        self._log([record])

    def finish(self) -> dict:
        """Log whatever is still missing (after an MLflow outage, or a run resumed at its last step); the summary."""
        self.error = None
        self._log(read_jsonl(self.metrics_path, missing_ok=True))
        return {"run_id": self.run_id, "through_step": self.through_step, "error": self.error}

    def _log(self, records: list[dict]) -> None:
        records = [record for record in records if record["step"] > self.through_step]
        if self.error is not None or not records:
            return
        from mlflow.exceptions import MlflowException

        metrics = _mlflow_metrics(records)
        try:
            for start in range(0, len(metrics), MAX_BATCH):
                self.client.log_batch(self.run_id, metrics=metrics[start : start + MAX_BATCH])
        except (MlflowException, OSError) as error:  # a tracking outage must not stop a training run
            self.error = f"{type(error).__name__}: {error}"
            self.warn(f"live MLflow metrics paused after step {self.through_step}: {self.error}")
            return
        self.through_step = int(records[-1]["step"])


def _mlflow_metrics(records: list[dict]) -> list:
    """MLflow Metrics of records: their numeric fields at their step, named as Tracker.log_history names them."""
    from mlflow.entities import Metric

    from lineage.tracking import flatten_metrics

    now = int(time.time() * 1000)  # ms since the epoch, as MLflow stores it
    return [
        Metric(key, value, now, int(record["step"]))
        for record in records
        for key, value in flatten_metrics({k: v for k, v in record.items() if k != "step"}).items()
    ]


def watch_env() -> dict[str, str]:
    """Environment that makes a locally launched training process end when this (the launching) process dies."""
    from lineage.processes import process_started

    return {WATCH_PID: str(os.getpid()), WATCH_STARTED: process_started()}


def watch_launcher() -> None:
    """End this process when the process that launched it is gone (killed with SIGKILL, out of memory): an orphan
    would go on training into the same work directory as the retry, and hold the CPUs or GPUs it needs."""
    pid, started = os.environ.get(WATCH_PID), os.environ.get(WATCH_STARTED)
    if not pid or not started:
        return
    import threading

    from lineage.processes import process_alive

    def watch() -> None:
        while process_alive(int(pid), started):
            time.sleep(WATCH_EVERY_S)
        log.error(f"the launching process {pid} is gone: ending training (a retry resumes from the checkpoints)")
        os._exit(137)  # at once: no cleanup that could write into the work directory the retry will use

    threading.Thread(target=watch, name="watch-launcher", daemon=True).start()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _callbacks(*callbacks: Callable[[dict], None] | None) -> Callable[[dict], None]:
    chosen = [callback for callback in callbacks if callback is not None]

    def on_metrics(record: dict) -> None:
        for callback in chosen:
            callback(record)

    return on_metrics


def read_plan(path: str | Path) -> tuple[list[PretrainConfig], bool]:
    """(the runs of a run.json, whether it is a plan): one PretrainConfig's fields, or {"plan": [fields, ...]}."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretraining config {path} not found")
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    if PLAN_KEY not in spec:
        return [PretrainConfig.from_dict(spec, source=str(path))], False
    runs = spec[PLAN_KEY]
    if not isinstance(runs, list) or not runs or not all(isinstance(fields, dict) for fields in runs):
        raise ValueError(f"{path}: {PLAN_KEY!r} must be a non-empty list of runs (PretrainConfig fields)")
    configs = [PretrainConfig.from_dict(fields, source=f"{path} run {n + 1}") for n, fields in enumerate(runs)]
    precisions = {config.mixed_precision for config in configs}
    if len(precisions) > 1:  # accelerate keeps one AcceleratorState per process: the second would be refused
        raise ValueError(
            f"{path}: the runs of a plan share one process and one mixed_precision, got {sorted(precisions)}"
        )
    return configs, True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file of PretrainConfig fields, or of a plan of runs")
    parser.add_argument("--result", help="where the main process writes the run's stats (JSON)")
    args = parser.parse_args(argv)
    watch_launcher()
    from model_code.pretrain import train

    configs, is_plan = read_plan(args.config)
    main_process = _is_main_process()
    with contextlib.ExitStack() as stack:
        pipes = None
        if main_process and os.environ.get("DAGSTER_PIPES_CONTEXT"):
            from dagster_pipes import open_dagster_pipes

            pipes = stack.enter_context(open_dagster_pipes())
        warn = pipes.log.warning if pipes else log.warning
        stream = (lambda record: pipes.log.info(json.dumps(record, default=str))) if pipes else None
        trained = []
        for index, config in enumerate(configs):
            if pipes:
                of = f" (run {index + 1} of {len(configs)})" if is_plan else ""
                pipes.log.info(
                    f"pretraining {config.preset} for {config.max_steps} steps into {config.output_dir}{of}"
                )
            live = None
            if main_process and not is_plan:  # a plan's runs are not one MLflow run's history
                live_run, metrics = Path(args.config).with_name(LIVE_RUN_FILE), Path(config.output_dir) / METRICS_FILE
                live = LiveMetrics.from_file(live_run, metrics, warn)
            stats = train(config, on_metrics=_callbacks(stream, live.log if live else None))
            if live is not None:
                stats[LIVE_KEY] = live.finish()
            trained.append(stats)
        result = {PLAN_KEY: trained} if is_plan else trained[0]
        if pipes:
            pipes.log.info(f"done: {json.dumps(result, default=str)}")
    if args.result and main_process:
        Path(args.result).write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
