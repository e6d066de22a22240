"""A real browser walks what `lmforge run full_lifecycle` (what `make demo` runs) leaves in both web UIs.

    .venv/bin/pytest -q -m browser tests/browser/test_lifecycle_walk.py   # LMFORGE_TEST_ARTIFACTS=dir keeps shots

`lmforge ui` is started as the user starts it (Dagster UI, MLflow UI, the read-only lake server); the lifecycle
runs on a small local prose site through `lmforge run`, on the tiny preset. Then, as a new user would:
- the job page lists the run (it has the workspace's code-location origin, unlike an execute_in_process run);
- the funnel table of filtered_documents is in stage order;
- the artifact link opens the artifact over http, and the audit report opens with one click from the Dagster asset
  and from the registered model version in MLflow;
- an MLflow metric holds exactly the points logged: a summary number one point at its real time, a loss history
  one point per logged step;
- "Re-execute all" on the run succeeds, and reuses every artifact.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cli.demo_site import static_site
from lineage.tracking import experiment_page, run_page
from tests.browser.dagster_ui import Screenshots, dismiss_community_dialog, graphql, run_error_messages, wait_for_run
from tests.browser.servers import BIN, REPO, _process_group, log_tail, ui_environment, wait_for_http
from tests.spark_cluster import free_port
from tests.stages.prose_site import PAGES, article, page, write_prose_site
from tests.stages.test_lifecycle import EXTRA_PAGES, TRAINED, nightly_config

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
expect = sync_api.expect

DAY = "2026-11-27"
SITE_PORT = 18654
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 600.0  # the re-execution: a run worker loads every module, then finds every artifact reused
RUNS_QUERY = """
query JobRuns($job: String!) {
  runsOrError(filter: {pipelineName: $job}) { ... on Runs { results { runId status parentRunId } } }
}"""


@dataclass(frozen=True)
class Ui:
    dagster: str
    mlflow: str
    lake: str
    env: dict[str, str]
    log_dir: Path


@contextlib.contextmanager
def lmforge_ui(work_dir: Path) -> Iterator[Ui]:
    """`lmforge ui` on free ports in a fresh home; yields once the Dagster UI, the MLflow UI and the lake answer."""
    dagster_port, mlflow_port, lake_port = free_port(), free_port(), free_port()
    dagster, mlflow, lake = (f"http://127.0.0.1:{port}" for port in (dagster_port, mlflow_port, lake_port))
    env = ui_environment(work_dir / "home", mlflow)
    env.update(LMFORGE_LAKE_URL=lake, LMFORGE_DAGSTER_UI_URL=dagster, LMFORGE_ALLOW_PRIVATE_HOSTS="127.0.0.1")
    env["LMFORGE_DEMO_PORT"] = str(free_port())  # the demo site `lmforge ui` also serves: not 8642, maybe in use
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "lmforge"), "ui", "--dagster-port", str(dagster_port), "--mlflow-port", str(mlflow_port)]
    with _process_group(command, env, log_dir / "ui.log", in_background=True) as process:
        wait_for_http(f"{mlflow}/health", process, log_dir / "ui.log")
        wait_for_http(f"{dagster}/server_info", process, log_dir / "ui.log")
        wait_for_http(f"{lake}/", process, log_dir / "ui.log")
        yield Ui(dagster, mlflow, lake, env, log_dir)


@pytest.fixture
def site(tmp_path):
    write_prose_site(tmp_path / "site")
    for i in range(EXTRA_PAGES):  # more distinct prose, so both splits always hold documents
        (tmp_path / "site" / f"extra{i}.html").write_text(page(f"Extra {i}", article(PAGES + 2 + i)))
    with static_site(tmp_path / "site", port=SITE_PORT) as url:  # fixed: same doc ids, so both splits hold pages
        yield url


def test_walk_the_lifecycle_in_both_uis(chromium, artifacts_dir, tmp_path, site):
    expect.set_options(timeout=UI_TIMEOUT_MS)
    shots = Screenshots(artifacts_dir)
    with lmforge_ui(tmp_path / "ui") as ui:
        run_id = run_lifecycle(ui, site, tmp_path)
        context = chromium.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page_ = context.new_page()
        try:
            dismiss_community_dialog(page_)
            job_page_lists_the_run(page_, ui, run_id, shots)
            funnel_in_stage_order(page_, ui, shots)
            artifact_and_audit_report_open_by_click(page_, ui, shots)
            metrics_hold_the_points_logged(page_, ui, shots)
            reexecute_all(page_, ui, run_id, shots)
        except BaseException:
            for open_page in context.pages:
                with contextlib.suppress(sync_api.Error):
                    shots.take(open_page, "failure")
            raise
        finally:
            context.close()
            for log in ui.log_dir.iterdir():
                shutil.copy(log, artifacts_dir / log.name)


def run_lifecycle(ui: Ui, site: str, tmp_path: Path) -> str:
    """`lmforge run full_lifecycle` on the tiny preset, as its own process; returns the Dagster run id."""
    config = tmp_path / "lifecycle.yaml"
    config.write_text(yaml.safe_dump(nightly_config(site, TRAINED, draft=False)))
    command = [str(BIN / "lmforge"), "run", "full_lifecycle", "--config", str(config), "--partition", DAY]
    done = subprocess.run(command, cwd=REPO, env=ui.env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    [run_id] = re.findall(r"full_lifecycle succeeded \(run ([0-9a-f-]+)\)", done.stdout)
    return run_id


def job_page_lists_the_run(page, ui: Ui, run_id: str, shots: Screenshots) -> None:
    page.goto(f"{ui.dagster}/locations/definitions.py/jobs/full_lifecycle/runs")
    expect(page.get_by_role("link", name=re.compile(run_id[:8])).first).to_be_visible()
    shots.take(page, "job-runs")
    page.goto(f"{ui.dagster}/overview/activity/timeline")
    expect(page.get_by_text("full_lifecycle").first).to_be_visible()  # the timeline row of the job
    shots.take(page, "timeline")


def funnel_in_stage_order(page, ui: Ui, shots: Screenshots) -> None:
    """documents, deduplicated, then each filter in the order the stage ran them (not alphabetical)."""
    manifest = lake_json(ui, "filtered_documents", "manifest.json")
    order = ["documents", "deduplicated", *manifest["stats"]["filter_order"]]
    assert order[2:] != sorted(order[2:])  # or the check below would prove nothing
    page.goto(f"{ui.dagster}/assets/filtered_documents?partition={DAY}")
    row = page.get_by_role("row").filter(has=page.get_by_text("funnel", exact=True))
    funnel = row.get_by_role("table").first  # the Markdown table in the row's value: stage, documents, ...
    expect(funnel).to_be_visible()
    funnel.scroll_into_view_if_needed()
    stages = [cell.strip() for cell in funnel.locator("tbody tr td:first-child").all_inner_texts()]
    assert stages == order
    shots.take(page, "funnel")


def artifact_and_audit_report_open_by_click(page, ui: Ui, shots: Screenshots) -> None:
    page.goto(f"{ui.dagster}/assets/audit_report")
    report_link = page.get_by_role("link", name=re.compile(r"report\.html$")).first
    expect(report_link).to_have_attribute("href", re.compile(rf"^{re.escape(ui.lake)}/audit_report/\w+/report\.html$"))
    href = report_link.get_attribute("href")
    with page.expect_popup() as popup:
        report_link.click()
    report = popup.value
    expect(report.get_by_role("heading").first).to_be_visible()
    expect(report.get_by_role("link").first).to_be_visible()  # its table of contents
    height = report.evaluate("document.documentElement.scrollHeight")
    assert height < 12_000, f"the audit report is {height} px tall: an outline should fit a few screens"
    shots.take(report, "audit-report-from-dagster")
    report.close()

    page.goto(f"{ui.mlflow}/#/models/lmforge/versions/1")
    link = page.get_by_role("link", name="audit report")
    expect(link).to_have_attribute("href", href)
    shots.take(page, "model-version")
    with page.expect_popup() as popup:
        link.click()
    expect(popup.value.get_by_role("heading").first).to_be_visible()
    shots.take(popup.value, "audit-report-from-mlflow")
    popup.value.close()


def metrics_hold_the_points_logged(page, ui: Ui, shots: Screenshots) -> None:
    """base_model trained 40 steps: its train loss history, and the final loss once, at the last step."""
    run = mlflow_api(ui, "runs/search", {"filter": "tags.`lmforge.asset` = 'base_model'"}, post=True)["runs"][0]
    run_id = run["info"]["run_id"]
    history = mlflow_api(ui, "metrics/get-history", {"run_id": run_id, "metric_key": "final_loss"})["metrics"]
    assert [point["step"] for point in history] == [40]
    assert history[0]["timestamp"] / 1000 > time.time() - 3600  # its real time, not 1970
    steps = [
        p["step"] for p in mlflow_api(ui, "metrics/get-history", {"run_id": run_id, "metric_key": "loss"})["metrics"]
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # each step once, in order
    experiment = run["info"]["experiment_id"]
    # The runs page every lmforge link opens: the training runs, not GenAI's empty traces dashboard.
    page.goto(experiment_page(ui.mlflow, experiment))
    expect(page.get_by_role("link", name="base_model").first).to_be_visible()
    shots.take(page, "mlflow-experiment")
    page.goto(run_page(ui.mlflow, experiment, run_id).replace(run_id, f"{run_id}/model-metrics"))
    page.get_by_placeholder("Search metric charts").fill("final_loss")
    expect(page.get_by_text("final_loss", exact=True).first).to_be_visible()
    shots.take(page, "mlflow-metric-chart")


def reexecute_all(page, ui: Ui, run_id: str, shots: Screenshots) -> None:
    """Re-execute all, from the run's page: a run worker launched by the UI runs it, and finds everything built."""
    lake = Path(ui.env["LMFORGE_HOME"]) / "lake"
    versions_before = sorted(str(path.relative_to(lake)) for path in lake.glob("*/*"))
    page.goto(f"{ui.dagster}/runs/{run_id}")
    page.get_by_role("button", name=re.compile("Re-execute")).first.click()
    choice = page.get_by_role("menuitem", name=re.compile("^(All steps|Re-execute all)"))
    if choice.count():
        choice.first.click()
    expect(page).not_to_have_url(re.compile(f"/runs/{run_id}$"))
    new_run = page.url.rsplit("/", 1)[-1].split("?")[0]
    status = wait_for_run(ui.dagster, new_run, RUN_TIMEOUT_S)
    assert status == "SUCCESS", f"{run_error_messages(ui.dagster, new_run)}\n{log_tail(ui.log_dir / 'ui.log')}"
    runs = graphql(ui.dagster, RUNS_QUERY, {"job": "full_lifecycle"})["runsOrError"]["results"]
    assert {"runId": new_run, "status": "SUCCESS", "parentRunId": run_id} in runs
    assert sorted(str(path.relative_to(lake)) for path in lake.glob("*/*")) == versions_before  # all reused
    shots.take(page, "reexecuted")


def lake_json(ui: Ui, asset: str, relative: str) -> dict:
    """A JSON file of the asset's only version, read from the lake server."""
    with urllib.request.urlopen(f"{ui.lake}/{asset}/", timeout=30) as response:
        [version] = set(re.findall(r'href="(\w+)/"', response.read().decode()))
    with urllib.request.urlopen(f"{ui.lake}/{asset}/{version}/{relative}", timeout=30) as response:
        return json.load(response)


def mlflow_api(ui: Ui, path: str, params: dict, post: bool = False) -> dict:
    url = f"{ui.mlflow}/api/2.0/mlflow/{path}"
    if post:
        search = {"experiment_ids": [experiment_ids(ui)], "filter": params["filter"], "max_results": 5}
        request = urllib.request.Request(url, json.dumps(search).encode(), {"Content-Type": "application/json"})
    else:
        request = urllib.request.Request(f"{url}?{urllib.parse.urlencode(params)}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def experiment_ids(ui: Ui) -> str:
    found = mlflow_api(ui, "experiments/get-by-name", {"experiment_name": "lmforge"})
    return found["experiment"]["experiment_id"]
