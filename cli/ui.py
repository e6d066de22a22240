"""The web UIs: Dagster (assets, lineage, runs) and MLflow (runs, datasets, models), both on 127.0.0.1.

    make ui              # or: lmforge ui [--dagster-port 3000] [--mlflow-port 5000]

Also serves the demo website, so "Materialize" on raw_crawl works with the default configuration, and the lake
read-only over http (LMFORGE_LAKE_URL, default http://127.0.0.1:5001), so that every artifact link and the audit
report open with one click from either UI. Stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from cli.demo_site import demo_site
from lineage.settings import Settings, prepare_home

REPO = Path(__file__).resolve().parent.parent


class _ReadOnly(SimpleHTTPRequestHandler):
    """Files and directory listings under one directory; GET and HEAD only (anything else: 501)."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # quiet: the UIs' consoles are the operator's


@contextmanager
def lake_server(directory: Path, port: int) -> Iterator[str]:
    """Serve `directory` read-only on 127.0.0.1:`port` (0: a free port) in a thread; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_ReadOnly, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _runs_view(settings: Settings, port: int) -> str:
    """'  (runs: <the experiment's runs page, model-training view>)' once the experiment exists, else ''."""
    from mlflow.tracking import MlflowClient

    from lineage.tracking import experiment_page

    found = MlflowClient(settings.tracking_uri).get_experiment_by_name(settings.experiment)
    return f"  (runs: {experiment_page(f'http://127.0.0.1:{port}', found.experiment_id)})" if found else ""


def run_ui(dagster_port: int = 3000, mlflow_port: int = 5000) -> int:
    settings = Settings.from_env()
    prepare_home(settings)
    # SIGTERM (e.g. from `timeout` or a supervisor) must stop the children too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Started in the background (`lmforge ui &` from a script), this process ignores SIGINT, and so would the
    # children: dagster dev maps SIGTERM to its SIGINT handler, and would then ignore the SIGTERM that stops it.
    # A handler of our own is not inherited across exec: the children start with the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bin_dir = Path(sys.executable).parent
    lake_port = urlparse(settings.lake_url).port or 5001
    local = "://" not in settings.store_root or settings.store_root.startswith("file://")
    lake = Path(settings.store_root.removeprefix("file://")) / "lake"
    # A remote store (s3://, gs://) is browsed with its own tools: no lake server then.
    with demo_site() as (site, _description), lake_server(lake, lake_port) if local else nullcontext() as lake_url:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(settings.dagster_home),
            "LMFORGE_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow_port}",
            "LMFORGE_LAKE_URL": lake_url or settings.lake_url,
            "LMFORGE_DAGSTER_UI_URL": f"http://127.0.0.1:{dagster_port}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # MLflow 3's job workers: lmforge submits no jobs
            "LMFORGE_CRAWL_SEEDS": os.environ.get("LMFORGE_CRAWL_SEEDS", site),
            "LMFORGE_ALLOW_PRIVATE_HOSTS": os.environ.get("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1"),
        }
        dagster = [str(bin_dir / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1"]
        dagster += ["-p", str(dagster_port)]
        mlflow = [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", settings.tracking_uri]
        mlflow += ["--default-artifact-root", settings.mlflow_artifact_root, "--host", "127.0.0.1"]
        mlflow += ["--port", str(mlflow_port)]
        runs_view = _runs_view(settings, mlflow_port)  # before the MLflow server: one process sets up its store
        processes = [
            subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True) for command in (dagster, mlflow)
        ]
        print(f"Dagster UI  http://127.0.0.1:{dagster_port}")
        print(f"MLflow UI   http://127.0.0.1:{mlflow_port}{runs_view}")
        print(f"demo site   {site}  (default seed of raw_crawl)")
        if lake_url:
            print(f"artifacts   {lake_url}  (the lake, read-only: every artifact link of both UIs)")
        print("Ctrl-C stops them all.")
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(1)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    return 0
