"""Run a job of the Definitions in this process, on the Dagster instance of $DAGSTER_HOME, with a quiet console.

    lmforge run full_lifecycle --config my.yaml --partition 2026-12-01

The console gets one line per asset as it completes (what it is, its version, its key numbers, its time) and one
per failure; every event of the run, training log lines included, goes to $LMFORGE_HOME/logs/<job>-<run id>.log
and to the Dagster UI, where the run shows like any other.

The run is created with the code location of workspace.yaml as its origin, exactly as the web UI creates one, and
then executed here (in this process, its steps in process): so it is listed on its job's page and on the timeline,
and "Re-execute" in the UI launches it again through the instance's run launcher.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from cli.recovery import process_tags, recover_dead_runs
from lineage.identity import VERSION_KEY
from lineage.settings import Settings, prepare_home
from lineage.tracking import Tracker

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"
DEFINITIONS_MODULE = "pipelines.definitions"

# Numbers worth a glance on the console, per asset, in this order (the UI has them all).
KEY_NUMBERS = (
    "pages_fetched",
    "pages_failed",
    "documents",
    "rejected",
    "documents_kept",
    "documents_new",
    "documents_unchanged",
    "documents_superseding",
    "duplicates_of_history",
    "nights_reused",
    "tokens_added",
    "days",
    "accuracy",
    "vocab_size",
    "tokens_train",
    "tokens_validation",
    "final_loss",
    "val_loss",
    "tokens_per_s",
    "rows",
    "train_loss_last",
    "reward_accuracy",
    "validation_preference_accuracy",
    "Q8_0_ppl_delta_pct",
    "perplexity",
    "promoted",
    "verified",
)
POLL_S = 0.5


# Progress bars and advisory chatter off (this process and the training processes it starts inherit these): the
# console only ever shows the lines per asset, and the log file stays readable.
QUIET_LIBRARIES = {
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def prepare_environment(settings: Settings) -> None:
    """The home layout, DAGSTER_HOME pointing at its instance, quiet libraries (before the definitions load)."""
    prepare_home(settings)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)


def load_run_config(path: str | None) -> dict[str, Any]:
    """A Dagster run config from a YAML file ({} without one); ValueError naming the file when it is not one."""
    if path is None:
        return {}
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"run config {path} does not exist")
    try:
        config = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"run config {path} is not valid YAML: {error}") from error
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"run config {path} must be a mapping (ops: ...), got {type(config).__name__}")
    return config


def execute_job(job_name: str, run_config: dict[str, Any], partition: str | None, *, out: Callable | None = None):
    """Execute `job_name` for `partition` (today, UTC, when the job is partitioned and none is given); prints one
    line per completed asset (to `out`, default the console). Everything else this process and the training
    processes write — library warnings, progress bars — goes to the log file. Returns (JobExecutionResult, path of
    the full log)."""
    from dagster import DagsterInstance
    from dagster._core.execution.api import execute_run

    from pipelines.definitions import defs

    known = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    if job_name not in known:
        raise ValueError(f"no job named {job_name!r}; the jobs are: {', '.join(known)}")
    job = defs.resolve_job_def(job_name)
    if job.partitions_def is not None:
        partition = partition or datetime.now(UTC).strftime("%Y-%m-%d")
        keys = job.partitions_def.get_partition_keys()
        if partition not in keys:
            raise ValueError(
                f"{partition} is not a crawl day of {job_name}: days run from {keys[0]} to {keys[-1]} (today, UTC), "
                "written YYYY-MM-DD"
            )
    elif partition is not None:
        raise ValueError(f"job {job_name} is not partitioned: drop --partition")
    settings = Settings.from_env()
    config = {**run_config, "loggers": run_config.get("loggers") or QUIET_CONSOLE}
    config.setdefault("execution", IN_PROCESS)  # steps in this process: one model in memory, one log, one console
    run_id = str(uuid.uuid4())
    log_path = settings.home / "logs" / f"{job_name}-{run_id}.log"
    with DagsterInstance.get() as instance, console_and_log(log_path) as console:
        out = out or console
        recover_dead_runs(instance, Tracker.from_settings(settings), out=out)  # a killed run never blocks this one
        reconstructable = reconstructable_job(job_name)
        run = create_run(instance, reconstructable, config, partition, run_id)
        with Progress(instance, run_id, log_path, out):
            result = execute_run(reconstructable, run, instance, raise_on_error=False)
    return result, log_path


IN_PROCESS = {"config": {"in_process": {}}}


def reconstructable_job(job_name: str):
    """The job as Dagster reloads it in another process (a run worker, a re-execution)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs", working_directory=str(REPO))
    return repository.get_reconstructable_job(job_name)


def remote_origin(job_name: str):
    """The job's origin in workspace.yaml's code location: what the web UI files its runs under."""
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    [location] = location_origins_from_yaml_paths([str(WORKSPACE)])
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLE_REPOSITORY), job_name)


SINGLE_REPOSITORY = "__repository__"  # the repository name Dagster gives a module's Definitions


def create_run(instance, job, run_config: dict[str, Any], partition: str | None, run_id: str):
    """A NOT_STARTED run of `job` (a reconstructable_job) with workspace.yaml's code-location origin, tagged with
    this process (so that a dead one is recovered) and its partition. Raises DagsterInvalidConfigError for a run
    config that does not fit the job, before anything runs."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    tags = {**process_tags(), **({PARTITION_NAME_TAG: partition} if partition else {})}
    plan = create_execution_plan(job, run_config=run_config, instance_ref=instance.get_ref(), tags=tags)
    definition = job.get_definition()
    return instance.create_run_for_job(
        job_def=definition,
        execution_plan=plan,
        run_id=run_id,
        run_config=run_config,
        tags=tags,
        remote_job_origin=remote_origin(definition.name),
        job_code_origin=job.get_python_origin(),
    )


@contextmanager
def console_and_log(log_path: Path) -> Iterator[Callable[[str], None]]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, which child processes inherit) to the log
    file; yield a function that prints to the console they pointed at before."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    console = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
    try:
        for fd in (1, 2):
            os.dup2(log, fd)
        yield lambda line: print(line, file=console, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)
        os.close(log)
        console.close()


# The console logger only for errors: the progress lines say what happened, the log file and the UI say the rest.
QUIET_CONSOLE = {"console": {"config": {"log_level": "CRITICAL"}}}


class Progress:
    """Follows a run's event log while it executes: every event into the log file, a line per completed asset
    (and per failed step) on the console."""

    def __init__(self, instance, run_id: str, log_path: Path, out: Callable = print):
        self.instance, self.run_id, self.log_path, self.out = instance, run_id, log_path, out
        self.cursor, self.started = None, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> Progress:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._drain()  # whatever arrived after the last poll

    def _follow(self) -> None:
        while not self._stop.wait(POLL_S):
            self._drain()

    def _drain(self) -> None:
        # Only the events after the cursor: a training run logs thousands, and this runs twice a second.
        batch = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        self.cursor = batch.cursor if batch.records else self.cursor
        with open(self.log_path, "a", encoding="utf-8") as log:
            for entry in (record.event_log_entry for record in batch.records):
                log.write(log_line(entry) + "\n")
                line = self._console_line(entry)
                if line:
                    self.out(line)

    def _console_line(self, entry) -> str | None:
        event = entry.dagster_event
        if event is None:
            return None
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[event.step_key] = entry.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            took = entry.timestamp - self.started.get(event.step_key, entry.timestamp)
            return asset_line(event.event_specific_data.materialization, took)
        elif kind == "STEP_FAILURE":
            error = event.event_specific_data.error
            message = error.message.strip().splitlines()[-1] if error else "failed"
            return f"  {event.step_key:<22} FAILED  {message[:300]}"
        return None


def asset_line(materialization, took_s: float) -> str:
    """`  asset  version  key=value ...  (reused) 12.3 s`"""
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    numbers = "  ".join(f"{key}={_short(metadata[key])}" for key in KEY_NUMBERS if key in metadata)
    reused = "  (reused)" if metadata.get("reused") else ""
    name = materialization.asset_key.to_user_string()
    return f"  {name:<22} {metadata.get(VERSION_KEY, '-'):<12} {numbers}{reused}  {took_s:.1f} s"


def log_line(entry) -> str:
    stamp = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    step = entry.step_key or "-"
    kind = entry.dagster_event.event_type_value if entry.dagster_event else entry.level
    return f"{stamp} {step} {kind}: {entry.user_message or entry.message}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
