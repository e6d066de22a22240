"""The web UIs: Dagster (assets, lineage, runs) and MLflow (runs, datasets, models), both on 127.0.0.1.

    make ui              # or: lmforge ui [--dagster-port 3000] [--mlflow-port 5000]

Also serves the demo website, so "Materialize" on raw_crawl works with the default configuration.
Stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.demo_site import demo_site
from lineage.settings import Settings, prepare_home

REPO = Path(__file__).resolve().parent.parent


def run_ui(dagster_port: int = 3000, mlflow_port: int = 5000) -> int:
    settings = Settings.from_env()
    prepare_home(settings)
    # SIGTERM (e.g. from `timeout` or a supervisor) must stop the children too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bin_dir = Path(sys.executable).parent
    with demo_site() as (site, _description):
        env = {
            **os.environ,
            "DAGSTER_HOME": str(settings.dagster_home),
            "LMFORGE_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow_port}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # MLflow 3's job workers: lmforge submits no jobs
            "LMFORGE_CRAWL_SEEDS": os.environ.get("LMFORGE_CRAWL_SEEDS", site),
            "LMFORGE_ALLOW_PRIVATE_HOSTS": os.environ.get("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1"),
        }
        dagster = [str(bin_dir / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1"]
        dagster += ["-p", str(dagster_port)]
        mlflow = [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", settings.tracking_uri]
        mlflow += ["--default-artifact-root", settings.mlflow_artifact_root, "--host", "127.0.0.1"]
        mlflow += ["--port", str(mlflow_port)]
        processes = [
            subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True) for command in (dagster, mlflow)
        ]
        print(f"Dagster UI  http://127.0.0.1:{dagster_port}")
        print(f"MLflow UI   http://127.0.0.1:{mlflow_port}")
        print(f"demo site   {site}  (default seed of raw_crawl)")
        print("Ctrl-C stops all three.")
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
