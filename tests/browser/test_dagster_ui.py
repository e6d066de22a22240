"""A real browser against the real web UIs: materialize quality_classifier in Dagster, follow its MLflow link.

    .venv/bin/pytest -q -m browser tests/browser          # LMFORGE_TEST_ARTIFACTS=dir keeps the screenshots

What a user does: open the Dagster UI, look at the asset graph, open the asset, press Materialize, wait for the
run, read the materialization's metadata, and click the MLflow run link, which must open that run in the MLflow
UI. Everything runs on 127.0.0.1 in a temp home; both servers are stopped even when a step fails.
"""

from __future__ import annotations

import contextlib
import re
import shutil

import pytest
from mlflow.tracking import MlflowClient

from lineage.tracking import run_id_from_page
from tests.browser.dagster_ui import Screenshots, dismiss_community_dialog, run_error_messages, wait_for_run
from tests.browser.servers import LineageUis, lineage_uis, log_tail

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
expect = sync_api.expect

ASSET = "quality_classifier"  # small, fast and unpartitioned: trains a fastText model on built-in examples
UI_TIMEOUT_MS = 60_000  # one UI step (page load, GraphQL refresh) on a busy 2-core machine
RUN_TIMEOUT_S = 300.0  # the run starts a run worker and a step process, each loading every asset module


def test_materialize_from_the_ui_and_follow_the_mlflow_link(chromium, artifacts_dir, tmp_path):
    expect.set_options(timeout=UI_TIMEOUT_MS)
    shots = Screenshots(artifacts_dir)
    with lineage_uis(tmp_path / "uis") as uis:
        context = chromium.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        try:
            dismiss_community_dialog(page)
            open_asset_page(page, uis, shots)
            run_id = materialize(page, uis, shots)
            mlflow_link = latest_materialization_mlflow_link(page, uis, run_id, shots)
            mlflow_run_id = follow_mlflow_link(page, mlflow_link, shots)
            assert_mlflow_run_recorded(uis, mlflow_run_id, run_id)
        except BaseException:
            for open_page in context.pages:
                with contextlib.suppress(sync_api.Error):  # best effort: the original error is what matters
                    shots.take(open_page, "failure")
            raise
        finally:
            context.close()
            for log in uis.log_dir.iterdir():
                shutil.copy(log, artifacts_dir / log.name)


def open_asset_page(page, uis: LineageUis, shots: Screenshots) -> None:
    """Home → Lineage (the global asset graph) → Catalog → the asset's page → its neighbourhood in the graph."""
    page.goto(uis.dagster_url)
    page.get_by_role("link", name="Lineage").click()
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    expect(page.get_by_text("data", exact=True).first).to_be_visible()  # the asset group quality_classifier is in
    shots.take(page, "asset-graph")
    page.get_by_role("link", name="Catalog").click()
    page.get_by_role("link", name=ASSET).first.click()
    expect(page).to_have_url(re.compile(f"/assets/{ASSET}$"))
    page.get_by_role("link", name="View in graph").click()
    # The graph page with the asset selected: its side panel and a "Materialize selected" button.
    expect(page.get_by_role("button", name=re.compile(r"Materialize selected$"))).to_be_visible()
    expect(page.get_by_text("View in Asset Catalog")).to_be_visible()
    expect(page.get_by_text("filtered_documents", exact=True).first).to_be_visible()  # its downstream asset
    shots.take(page, "asset-lineage")
    page.go_back()
    expect(page.get_by_text("Never materialized")).to_be_visible()
    shots.take(page, "asset")


def materialize(page, uis: LineageUis, shots: Screenshots) -> str:
    """Press Materialize, open the launched run from the toast, wait until it succeeds; returns the run id."""
    page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    view_run = page.get_by_role("link", name="View", exact=True)  # in the "launched run" toast
    run_id = view_run.get_attribute("href").rsplit("/", 1)[-1]
    view_run.click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}"))
    status = wait_for_run(uis.dagster_url, run_id, RUN_TIMEOUT_S)
    assert status == "SUCCESS", (
        f"run {run_id} ended {status}: {run_error_messages(uis.dagster_url, run_id)}\n"
        f"{log_tail(uis.log_dir / 'dagster.log')}"
    )
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    shots.take(page, "run")
    return run_id


def latest_materialization_mlflow_link(page, uis: LineageUis, run_id: str, shots: Screenshots):
    """The asset's Events tab, latest materialization: its metadata row `mlflow_run`. Returns the link Locator."""
    page.goto(f"{uis.dagster_url}/assets/{ASSET}")
    page.get_by_role("tab", name="Events").click()
    expect(page.get_by_text("Materialized in run")).to_be_visible()
    expect(page.get_by_role("link", name=run_id[:8], exact=True)).to_be_visible()
    link = page.get_by_role("row").filter(has=page.get_by_text("mlflow_run", exact=True)).get_by_role("link").first
    expect(link).to_have_attribute(
        "href", re.compile(rf"^{re.escape(uis.mlflow_url)}/#/experiments/\w+/runs/\w+\?workflowType=machine_learning$")
    )
    shots.take(page, "materialization-metadata")
    return link


def follow_mlflow_link(page, link, shots: Screenshots) -> str:
    """Click the MLflow link (it opens a new tab) and wait for that run's page; returns the MLflow run id."""
    mlflow_run_id = run_id_from_page(link.get_attribute("href"))
    with page.expect_popup() as popup:
        link.click()
    mlflow_page = popup.value
    expect(mlflow_page).to_have_url(re.compile(f"/runs/{mlflow_run_id}"))
    expect(mlflow_page.get_by_text(mlflow_run_id).first).to_be_visible()
    expect(mlflow_page.get_by_text(ASSET).first).to_be_visible()  # the run name
    shots.take(mlflow_page, "mlflow-run")
    return mlflow_run_id


def assert_mlflow_run_recorded(uis: LineageUis, mlflow_run_id: str, dagster_run_id: str) -> None:
    """The linked MLflow run is the one this Dagster run recorded (same store the MLflow UI serves)."""
    run = MlflowClient(tracking_uri=uis.settings.tracking_uri).get_run(mlflow_run_id)
    assert run.data.tags["lmforge.asset"] == ASSET
    assert run.data.tags["lmforge.dagster_run_id"] == dagster_run_id
    assert run.info.status == "FINISHED"
