"""A real website to crawl offline, served on 127.0.0.1: pages no one in this project wrote.

Preferred: the Python manual (Debian's python3.11-doc, ~530 linked pages of edited prose, which `make setup`
installs when it can). Fallback, available wherever Python is: Python's documentation server `python -m pydoc`,
run with `-S` so it documents the standard library only (quick, and importing no third-party code).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_READY = re.compile(r"Server ready at (http://\S+?)/?\s*$")
PYTHON_MANUAL = Path("/usr/share/doc/python3.11/html")
# A fixed port keeps the demo's URLs, and so its artifact versions, the same from run to run (reuse, not recrawl).
DEMO_PORT = int(os.environ.get("LMFORGE_DEMO_PORT", "8642"))


@contextmanager
def demo_site() -> Iterator[tuple[str, str]]:
    """Yield (base URL, description) of the best real site available: the Python manual, else pydoc."""
    if (PYTHON_MANUAL / "index.html").exists():
        with static_site(PYTHON_MANUAL, port=DEMO_PORT) as url:
            yield url + "index.html", "the Python 3.11 manual"
    else:
        with pydoc_site() as url:
            yield url, "Python's documentation server (pydoc)"


def site_pages(limit: int | None = None) -> Iterator[tuple[str, str]]:
    """(URL path, HTML) of the demo site's pages without serving them: the Python manual's files, in path order,
    else the standard library's modules as pydoc renders them (for benchmarks and tests that need real pages)."""
    if (PYTHON_MANUAL / "index.html").exists():
        paths = sorted(PYTHON_MANUAL.rglob("*.html"))[:limit]
        for path in paths:
            yield str(path.relative_to(PYTHON_MANUAL)), path.read_text(encoding="utf-8", errors="replace")
        return
    import pkgutil
    import pydoc

    skip = {
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "__hello__",
        "__phello__",
    }  # side effects
    names = sorted(m.name for m in pkgutil.iter_modules() if m.name in sys.stdlib_module_names and m.name not in skip)
    count = 0
    for name in names:
        if limit is not None and count >= limit:
            return
        try:
            module = __import__(name)
        except Exception:  # noqa: BLE001 - a module that cannot be imported here has no page
            continue
        yield f"{name}.html", pydoc.html.page(pydoc.describe(module), pydoc.html.document(module, name))
        count += 1


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass


@contextmanager
def static_site(root: Path, port: int = 0) -> Iterator[str]:
    """Serve the directory `root` over HTTP on 127.0.0.1 at `port` (a free one if 0 or taken); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:  # the port is taken (another demo or UI is running): any free port will do
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


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
