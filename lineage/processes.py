"""Which process is which: a pid with its start time, so that a pid the system reused is not taken for the one
that started a run (cli/recovery.py) or launched a training process (resources/pretrain_process.py).

On Linux the start time is the kernel's own: clock ticks since boot (/proc/<pid>/stat, field 22), which no clock
change moves. A wall-clock start time (psutil's create_time, boot time + ticks) moves whenever the boot time is
read anew after the clock was stepped (NTP, a virtual machine resumed or migrated): two processes then disagree
about one process's start, and a training run took its living launcher for dead and ended itself. Elsewhere the
wall-clock value is the fallback, compared to the second.
"""

from __future__ import annotations

import os

import psutil

TICKS_PREFIX = "ticks:"  # a Linux start time; a bare number is a wall-clock one (recorded before, or not Linux)
WALL_CLOCK_TOLERANCE_S = 1.0


def process_started(pid: int | None = None) -> str:
    """The start time of process `pid` (default: this one), as a string to record beside the pid.

    psutil.NoSuchProcess when there is no such process."""
    pid = pid or os.getpid()
    ticks = _start_ticks(pid)
    if ticks is not None:
        return f"{TICKS_PREFIX}{ticks}"
    return f"{psutil.Process(pid).create_time():.2f}"


def process_alive(pid: int, started: str) -> bool:
    """Whether process `pid` still runs and is the one that started at `started` (not a later one with its pid)."""
    try:
        if started.startswith(TICKS_PREFIX):
            ticks = _start_ticks(pid)
            if ticks is None:
                raise psutil.NoSuchProcess(pid)
            return started == f"{TICKS_PREFIX}{ticks}"
        return abs(psutil.Process(pid).create_time() - float(started)) < WALL_CLOCK_TOLERANCE_S
    except (psutil.Error, ValueError):  # no such process (or not ours to see), or an unreadable record: gone
        return False


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); None without /proc.

    psutil.NoSuchProcess when /proc exists but holds no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise psutil.NoSuchProcess(pid) from None
        return None
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
    return int(stat.rsplit(b")", 1)[1].split()[19])
