"""Unattended operation: the nightly retrain, the WARC inbox, failure alerts and freshness expectations.

| what | default | set by |
|---|---|---|
| nightly_retrain schedule | 02:00 every day, UTC | LMFORGE_NIGHTLY_CRON, LMFORGE_TIMEZONE |
| nightly crawl seeds | none: the tick is skipped, saying why | LMFORGE_CRAWL_SEEDS or LMFORGE_NIGHTLY_CONFIG (YAML) |
| warc_inbox sensor | $LMFORGE_HOME/inbox/*.warc[.gz] | LMFORGE_WARC_INBOX |
| failure alerts | Dagster log (always) + POST to a webhook | LMFORGE_ALERT_WEBHOOK |

The schedule and sensors run in the Dagster daemon (`dagster dev` starts one; production: `dagster-daemon run`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import yaml
from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    schedule,
    sensor,
)

from lineage.settings import Settings

NIGHTLY_CRON = os.environ.get("LMFORGE_NIGHTLY_CRON", "0 2 * * *")
TIMEZONE = os.environ.get("LMFORGE_TIMEZONE", "UTC")
WARC_SUFFIXES = (".warc", ".warc.gz")


def nightly_run_config(environ: dict[str, str] | None = None) -> dict | None:
    """The nightly run config: LMFORGE_NIGHTLY_CONFIG (YAML) or seeds from LMFORGE_CRAWL_SEEDS; None if neither."""
    env = os.environ if environ is None else environ
    if env.get("LMFORGE_NIGHTLY_CONFIG"):
        path = Path(env["LMFORGE_NIGHTLY_CONFIG"])
        if not path.is_file():
            raise FileNotFoundError(f"LMFORGE_NIGHTLY_CONFIG={path}: no such file")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a run config must be a mapping (ops: ...), got {type(loaded).__name__}")
        return loaded
    seeds = [seed.strip() for seed in env.get("LMFORGE_CRAWL_SEEDS", "").split(",") if seed.strip()]
    if not seeds:
        return None
    return {"ops": {"raw_crawl": {"config": {"seeds": seeds}}}}


def build_nightly_schedule(job):
    @schedule(
        name="nightly_retrain",
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=TIMEZONE,
        job=job,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Crawl the day's partition, rebuild what changed, retrain, evaluate, gate and promote.",
    )
    def nightly_retrain(context: ScheduleEvaluationContext):
        run_config = nightly_run_config()
        if run_config is None:
            return SkipReason("no crawl seeds configured: set LMFORGE_CRAWL_SEEDS or LMFORGE_NIGHTLY_CONFIG")
        partition = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return RunRequest(
            run_key=f"nightly-{partition}",
            partition_key=partition,
            run_config=run_config,
            tags={"lmforge/trigger": "nightly_retrain"},
        )

    return nightly_retrain


def build_warc_inbox_sensor(job):
    @sensor(
        name="warc_inbox",
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Ingest WARC files dropped into the inbox folder into that day's partition.",
    )
    def warc_inbox(context: SensorEvaluationContext):
        inbox = inbox_dir()
        if not inbox.is_dir():
            return SkipReason(f"inbox {inbox} does not exist (create it and drop .warc.gz files there)")
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        new = [
            path for path in sorted(inbox.iterdir()) if path.name.endswith(WARC_SUFFIXES) and _key(path) not in seen
        ]
        if not new:
            return SkipReason(f"no new WARC files in {inbox}")
        context.update_cursor(json.dumps(sorted(seen | {_key(path) for path in new})))
        partition = datetime.now().strftime("%Y-%m-%d")
        return RunRequest(
            run_key="inbox-" + "-".join(_key(path) for path in new)[:200],
            partition_key=partition,
            run_config={"ops": {"raw_crawl": {"config": {"seeds": [], "warc_sources": [str(p) for p in new]}}}},
            tags={"lmforge/trigger": "warc_inbox"},
        )

    return warc_inbox


def inbox_dir() -> Path:
    return Path(os.environ.get("LMFORGE_WARC_INBOX") or Settings.from_env().home / "inbox")


def _key(path: Path) -> str:
    """A file's identity for the cursor: name, size and modification time (a re-dropped file counts again)."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"


def alert_message(job_name: str, run_id: str, error: str | None, step_keys: list[str]) -> str:
    failed = ", ".join(step_keys) or "the run itself"
    return f"lmforge: run {run_id} of job '{job_name}' failed at {failed}: {error or 'no error message'}"


@run_failure_sensor(
    name="run_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description="Log every failed run; POST it to LMFORGE_ALERT_WEBHOOK when set.",
)
def run_failure_alert(context: RunFailureSensorContext):
    steps = [event.step_key for event in context.get_step_failure_events() if event.step_key]
    message = alert_message(
        context.dagster_run.job_name, context.dagster_run.run_id, context.failure_event.message, steps
    )
    context.log.error(message)
    send_webhook(message, context.dagster_run.job_name, context.dagster_run.run_id, steps)


def send_webhook(message: str, job_name: str, run_id: str, steps: list[str], url: str | None = None) -> bool:
    """POST the alert as JSON ({"text": ...} plus fields) to the webhook; returns whether one was sent."""
    url = url or os.environ.get("LMFORGE_ALERT_WEBHOOK")
    if not url:
        return False
    import httpx

    payload = {"text": message, "job": job_name, "run_id": run_id, "failed_steps": steps}
    response = httpx.post(url, json=payload, timeout=10)
    response.raise_for_status()
    return True


def build_optout_sensor(job):
    """Re-run the compliance checks whenever the opt-out list changes (the cursor is the list's digest)."""

    @sensor(
        name="optout_watch",
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="When an owner's opt-out is added, check the served model at once (optout_compliance).",
    )
    def optout_watch(context: SensorEvaluationContext):
        from lineage.optout import optout_digest

        digest = optout_digest()
        if digest == context.cursor:
            return SkipReason("opt-out list unchanged")
        context.update_cursor(digest)
        return RunRequest(run_key=f"optout-{digest[:24]}", tags={"lmforge/trigger": "optout_watch"})

    return optout_watch
