"""Runs whose process died (SIGKILL, out of memory, a crash) never block the next run.

A run that `lmforge demo` or `lmforge run` executes carries tags naming the process that runs it (host, pid and the
process's start time, so that a reused pid is not mistaken for it). Before each new run, `recover_dead_runs` finds
the runs of this host that are still STARTED but whose process is gone, marks them FAILED with a message saying
so, frees their concurrency-pool slots (the `gpu` pool has one: a dead training run would otherwise hold it
forever) and ends their MLflow runs as FAILED. Runs launched by the daemon or the web UI are run monitoring's
business (dagster.yaml `run_monitoring`, lineage/settings.py), which does the same for run workers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from lineage.processes import process_alive, process_started

HOST_TAG, PID_TAG, START_TAG = "lmforge/host", "lmforge/pid", "lmforge/process_started"
LIVE_STATUSES = ("STARTING", "STARTED", "CANCELING")


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes in-process."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), START_TAG: process_started()}


def dead_runs(instance) -> list:
    """Runs of this host in a live status whose process is gone."""
    from dagster import DagsterRunStatus, RunsFilter

    statuses = [DagsterRunStatus[name] for name in LIVE_STATUSES]
    host = socket.gethostname()
    found = []
    for run in instance.get_runs(filters=RunsFilter(statuses=statuses, tags={HOST_TAG: host})):
        pid, started = run.tags.get(PID_TAG), run.tags.get(START_TAG)
        if pid and started and not process_alive(int(pid), started):
            found.append(run)
    return found


def recover_dead_runs(instance, tracker=None, out: Callable[[str], None] = print) -> list[str]:
    """Mark every dead run FAILED, free its pool slots and end its MLflow runs; the run ids recovered."""
    recovered = []
    for run in dead_runs(instance):
        message = (
            f"the process that ran it (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) is gone: killed or crashed. "
            "lmforge marked the run failed and freed its pool slots; a new run resumes from the checkpoints."
        )
        instance.report_run_failed(run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ended = tracker.fail_runs_of(run.run_id, message) if tracker is not None else []
        out(f"recovered run {run.run_id} ({run.job_name}): {message} MLflow runs ended as FAILED: {len(ended)}")
        recovered.append(run.run_id)
    return recovered
