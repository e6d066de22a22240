"""Shared by the crawl tests: a real HTTP server on 127.0.0.1 whose routes each test sets, including broken
behaviours (resets, drips), and small helpers."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq

from data_code.crawl import FETCH_SCHEMA, CrawlConfig, crawl

Route = Callable[[BaseHTTPRequestHandler], None]


class FaultServer:
    """Threaded HTTP/1.0 server; `routes` maps a path (with query) to a function that writes the response."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, float]] = []  # (path, time.monotonic()) of every request, in arrival order
        self.request_headers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # broken connections are the point here
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(
        self, path: str, body: str | bytes, *, status: int = 200, content_type="text/html; charset=utf-8", headers=()
    ):
        """Serve a fixed response at `path`."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda handler: send(handler, status, data, [("Content-Type", content_type), *headers])

    def record(self, path: str, headers) -> None:
        with self._lock:
            self.hits.append((path, time.monotonic()))
            self.request_headers[path] = dict(headers.items())

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.hits]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(server: FaultServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            server.record(self.path, self.headers)
            route = server.routes.get(self.path)
            if route is None:
                send(self, 404, b"not found", [("Content-Type", "text/plain")])
            else:
                route(self)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers=()) -> None:
    """Write a complete response with Content-Length."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Abort the TCP connection with a RST (SO_LINGER 0) instead of a clean close."""
    handler.wfile.flush()
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast_config(*seeds: str, **overrides) -> CrawlConfig:
    """A CrawlConfig with test-sized timeouts and waits, allowed to reach 127.0.0.1."""
    settings = dict(
        seeds=seeds,
        allow_private_hosts=("127.0.0.1",),
        requests_per_second_per_host=500.0,
        connect_timeout_s=1.0,
        read_timeout_s=0.4,
        total_timeout_s=2.0,
        backoff_base_s=0.02,
        max_retry_after_s=2.0,
        max_retries=2,
    )
    settings.update(overrides)
    return CrawlConfig(**settings)


def run_crawl(config: CrawlConfig, out_dir: Path):
    """Crawl and return (summary, {url: row dict}) after checking the log's schema."""
    summary = crawl(config, out_dir)
    table = pq.read_table(out_dir / summary.fetch_log)
    assert table.schema.equals(FETCH_SCHEMA), table.schema
    rows = table.to_pylist()
    assert len({row["url"] for row in rows}) == len(rows), "one row per URL"
    return summary, {row["url"]: row for row in rows}


def links_page(*hrefs: str, extra: str = "") -> str:
    """An HTML page linking to `hrefs`."""
    anchors = "".join(f'<a href="{href}">link</a>' for href in hrefs)
    return f"<html><head><title>t</title></head><body><p>Hello</p>{anchors}{extra}</body></html>"
