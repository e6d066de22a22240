"""The two web UIs a browser test talks to: `dagster dev` and the MLflow UI, on 127.0.0.1, in a temp home.

    with lineage_uis(tmp_path / "uis") as uis:
        page.goto(uis.dagster_url)

Each server runs in its own process group (dagster dev starts a webserver and a code-server child; MLflow starts
uvicorn workers) so that the whole group is signalled on exit, even when the body raises. Logs go to files in
the given directory and their tails are put in the error when a server does not come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from lineage.settings import Settings, prepare_home
from tests.spark_cluster import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120.0  # dagster dev answers after ~16 s on an idle 2-core machine; other tests may be running
STOP_TIMEOUT_S = 20.0  # dagster dev takes several seconds to stop on SIGTERM


@dataclass(frozen=True)
class LineageUis:
    dagster_url: str  # http://127.0.0.1:<port> of dagster dev
    mlflow_url: str  # http://127.0.0.1:<port> of the MLflow UI; the assets' MLflow links point here
    settings: Settings  # the temp home both servers use
    log_dir: Path  # dagster.log and mlflow.log


def ui_environment(home: Path, mlflow_url: str) -> dict[str, str]:
    """os.environ with LMFORGE_HOME, DAGSTER_HOME and MLflow (SQLite store, UI links) all under `home`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LMFORGE_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        LMFORGE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        LMFORGE_MLFLOW_ARTIFACT_ROOT=(home / "mlflow" / "artifacts").as_uri(),
        LMFORGE_MLFLOW_UI_URL=mlflow_url,
        # MLflow 3's server otherwise starts a job runner with seven huey consumer processes, unused here.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        HF_HUB_OFFLINE="1",
    )
    return env


@contextlib.contextmanager
def lineage_uis(work_dir: Path) -> Iterator[LineageUis]:
    """Start dagster dev and the MLflow UI on a fresh home in `work_dir`; yield once both answer HTTP."""
    dagster_url, mlflow_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = ui_environment(work_dir / "home", mlflow_url)
    settings = Settings.from_env(env)
    prepare_home(settings)  # what `lmforge init` does: home layout and DAGSTER_HOME/dagster.yaml
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    mlflow_command = [str(BIN / "mlflow"), "server", "--backend-store-uri", settings.tracking_uri]
    mlflow_command += ["--default-artifact-root", settings.mlflow_artifact_root, "--workers", "1"]
    mlflow_command += ["--host", "127.0.0.1", "--port", mlflow_url.rsplit(":", 1)[1]]
    dagster_command = [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml")]
    dagster_command += ["-h", "127.0.0.1", "-p", dagster_url.rsplit(":", 1)[1]]
    with contextlib.ExitStack() as stack:
        # MLflow first: it creates the SQLite schema at startup, before a materialization writes to the store.
        mlflow = stack.enter_context(_process_group(mlflow_command, env, log_dir / "mlflow.log"))
        dagster = stack.enter_context(_process_group(dagster_command, env, log_dir / "dagster.log"))
        wait_for_http(f"{mlflow_url}/health", mlflow, log_dir / "mlflow.log")
        wait_for_http(f"{dagster_url}/server_info", dagster, log_dir / "dagster.log")
        yield LineageUis(dagster_url, mlflow_url, settings, log_dir)


@contextlib.contextmanager
def _process_group(
    command: list[str], env: dict[str, str], log_path: Path, *, in_background: bool = False
) -> Iterator[subprocess.Popen]:
    """Run `command` in a new session (its own process group); SIGTERM, then SIGKILL, the group on exit.

    in_background: started as `command &` from a script starts it, with SIGINT ignored. Either way every process it
    started must be gone once it has stopped (AssertionError naming them, after killing them): a server that
    leaves children in sessions of their own leaks them into every later test.
    """
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if in_background else None
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=ignore_sigint)  # fmt: skip
        descendants = []
        try:
            yield process
        finally:
            with contextlib.suppress(psutil.Error):
                descendants = psutil.Process(process.pid).children(recursive=True)
            stop_group(process)
            _, alive = psutil.wait_procs(descendants, timeout=STOP_TIMEOUT_S)
            left = []
            for survivor in alive:
                with contextlib.suppress(psutil.Error):
                    left.append(" ".join(survivor.cmdline()[:3]))
                    survivor.kill()
    assert not left, f"{' '.join(command[:2])} left these running after it stopped: {left}"


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, wait, SIGKILL it if it lingers; also reaps the leader."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children that outlive the leader (a code server, a run worker) still share its group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_http(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200; RuntimeError with the log tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s:\n{log_tail(log_path)}")


def log_tail(path: Path, chars: int = 4000) -> str:
    """The last `chars` characters of a log file, or a note that it is missing."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"(no log at {path})"
