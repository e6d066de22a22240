"""Which process is which: a pid with its start time, so that a pid the system reused is not taken for the one
that started a run (cli/recovery.py) or launched a training process (resources/pretrain_process.py)."""

from __future__ import annotations

import os

import psutil


def process_started(pid: int | None = None) -> str:
    """The start time of process `pid` (default: this one), as a string to record beside the pid."""
    return f"{psutil.Process(pid or os.getpid()).create_time():.2f}"


def process_alive(pid: int, started: str) -> bool:
    """Whether process `pid` still runs and is the one that started at `started` (not a later one with its pid)."""
    try:
        return process_started(pid) == started
    except psutil.Error:  # no such process (or not ours to see): gone
        return False
