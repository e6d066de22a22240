"""A process is its pid and its start time: a step of the wall clock must not make a living process look gone."""

import os
import subprocess
import sys

import psutil

from lineage.processes import process_alive, process_started


def test_a_living_process_is_alive_and_a_reused_or_ended_pid_is_not():
    mine = process_started()
    assert process_alive(os.getpid(), mine)
    assert not process_alive(1, mine)  # another process under the same record: a reused pid
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    record = process_started(child.pid)
    assert process_alive(child.pid, record)
    child.kill()
    child.wait()
    assert not process_alive(child.pid, record)
    assert not process_alive(os.getpid(), "not a start time")


def test_a_wall_clock_step_does_not_make_a_living_process_look_gone(monkeypatch):
    # The wall clock jumps (NTP, a resumed virtual machine): psutil's create_time moves with the boot time it reads.
    mine = process_started()
    stepped = psutil.Process.create_time
    monkeypatch.setattr(psutil.Process, "create_time", lambda self: stepped(self) + 7.0)
    assert process_alive(os.getpid(), mine)


def test_a_wall_clock_record_made_before_still_counts_to_the_second():
    legacy = f"{psutil.Process().create_time():.2f}"
    assert process_alive(os.getpid(), legacy)
    assert not process_alive(os.getpid(), f"{float(legacy) - 5:.2f}")
