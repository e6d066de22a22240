"""A real Spark standalone cluster (one master, one worker) on 127.0.0.1, for tests.

    with standalone_cluster(cores=1) as cluster:
        session = build_spark_session(cluster.master_url)

Both daemons are started with pyspark's own `bin/spark-class` (SPARK_HOME = the pyspark install dir), each in
its own process group, and both groups are killed on exit, even when the body raises. Only one SparkContext may
live in a Python process, so stop any local-mode session before connecting to the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StandaloneCluster:
    master_url: str  # spark://127.0.0.1:<port>
    master_webui: str  # http://127.0.0.1:<port>
    log_dir: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def alive_workers(webui: str) -> int:
    """Number of ALIVE workers the master reports (0 while its web UI is not up yet)."""
    try:
        with urllib.request.urlopen(f"{webui}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def _start(args: list[str], log_path: Path, env: dict) -> subprocess.Popen:
    log = log_path.open("wb")
    command = [str(spark_home() / "bin" / "spark-class"), *args]
    # start_new_session: the daemon and the JVM it execs share a process group that we can kill as a whole
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@contextlib.contextmanager
def standalone_cluster(log_dir: Path, *, cores: int = 1, memory: str = "1g", start_timeout_s: float = 60.0):
    """Start a master and one worker on 127.0.0.1, wait until the worker registers, yield a StandaloneCluster."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_WORKER_DIR": str(log_dir / "work"),
        "SPARK_LOCAL_DIRS": str(log_dir / "local"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    port, webui_port, worker_webui_port = free_port(), free_port(), free_port()
    master_url, webui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{webui_port}"
    processes: list[subprocess.Popen] = []
    try:
        master_args = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui_port)]
        processes.append(_start(["org.apache.spark.deploy.master.Master", *master_args], log_dir / "master.log", env))
        worker_args = ["--host", "127.0.0.1", "--cores", str(cores), "--memory", memory]
        worker_args += ["--webui-port", str(worker_webui_port)]
        worker_class = "org.apache.spark.deploy.worker.Worker"
        processes.append(_start([worker_class, master_url, *worker_args], log_dir / "worker.log", env))
        deadline = time.monotonic() + start_timeout_s
        while alive_workers(webui) < 1:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited early:\n{_tail(log_dir / 'master.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no worker registered with {master_url} in {start_timeout_s:.0f} s\n"
                    f"master log:\n{_tail(log_dir / 'master.log')}\nworker log:\n{_tail(log_dir / 'worker.log')}"
                )
            time.sleep(0.5)
        yield StandaloneCluster(master_url=master_url, master_webui=webui, log_dir=log_dir)
    finally:
        for process in reversed(processes):  # worker first, then master
            _stop(process)
