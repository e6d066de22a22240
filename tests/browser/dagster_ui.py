"""Helpers for driving the Dagster web UI in Debian's Chromium: launch, screenshots, run status over GraphQL.

Playwright cannot download its own browser here, so it drives /usr/bin/chromium (scripts/install_browser.sh).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests may run as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",  # no update checks or field trials: there is no internet here
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on PythonError { message } }
}"""
RUN_ERRORS_QUERY = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on MessageEvent { message }
      ... on ExecutionStepFailureEvent { error { message } } } }
  }
}"""


def launch_chromium(playwright):
    """Debian's Chromium, headless, through Playwright. Returns a playwright Browser."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def dismiss_community_dialog(page) -> None:
    """Click "Skip" on the "Join the Dagster community" dialog whenever it covers the page.

    lmforge's dagster.yaml turns the dialog off (nux: enabled: false); the handler keeps the test independent
    of that setting. Playwright runs it before any action the dialog would block.
    """
    skip = page.get_by_role("button", name=re.compile(r"^Skip$"))
    page.add_locator_handler(skip, lambda button: button.click())


class Screenshots:
    """Numbered full-page screenshots in one folder: 01-catalog.png, 02-asset.png, ..."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.taken: list[Path] = []

    def take(self, page, name: str) -> Path:
        """Screenshot `page` as NN-name.png; returns the path."""
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def graphql(dagster_url: str, query: str, variables: dict) -> dict:
    """POST one GraphQL query to the Dagster webserver; returns its "data" (RuntimeError on GraphQL errors)."""
    request = urllib.request.Request(
        f"{dagster_url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors from {dagster_url}: {body['errors']}")
    return body["data"]


def wait_for_run(dagster_url: str, run_id: str, timeout_s: float) -> str:
    """Poll the run's status until it finishes; returns SUCCESS, FAILURE or CANCELED (TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout_s
    status = "unknown"
    while time.monotonic() < deadline:
        run = graphql(dagster_url, RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", f"run {run_id}: {run}"
        status = run["status"]
        if status in FINISHED_RUN_STATUSES:
            return status
        time.sleep(1.0)
    raise TimeoutError(f"run {run_id} still {status} after {timeout_s:.0f} s")


def run_error_messages(dagster_url: str, run_id: str) -> list[str]:
    """Messages of the run's failure events, for an assertion message."""
    events = graphql(dagster_url, RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"].get("events", [])
    failures = [event for event in events if "Failure" in event["__typename"]]
    return [(event.get("error") or {}).get("message") or event.get("message", "") for event in failures]
