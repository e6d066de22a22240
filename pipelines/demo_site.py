"""A real website to crawl offline: Python's own documentation server (`python -m pydoc`) on 127.0.0.1.

It serves the standard library's documentation as linked HTML pages that no one in this project wrote.
Run with `-S` so it documents the standard library only (quick, and importing no third-party code).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

_READY = re.compile(r"Server ready at (http://\S+?)/?\s*$")


@contextmanager
def pydoc_site(port: int = 0, timeout_s: float = 30.0) -> Iterator[str]:
    """Start `python -S -m pydoc -n 127.0.0.1 -p PORT`; yield its base URL ('http://127.0.0.1:N/')."""
    command = [sys.executable, "-S", "-m", "pydoc", "-n", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = _wait_ready(process, timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_ready(process: subprocess.Popen, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"pydoc server exited early with status {process.poll()}")
        match = _READY.search(line.strip())
        if match:
            url = match.group(1).replace("localhost", "127.0.0.1").rstrip("/") + "/"
            urllib.request.urlopen(url, timeout=timeout_s).read(1)  # answers before we hand it out
            return url
    raise TimeoutError(f"pydoc server did not start within {timeout_s:.0f} s")
