"""A real HTTP server on a loopback address that records every TCP connection it accepts (before any request is
read), so a test can prove that a refused URL was never connected to, not merely never requested."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.crawl.helpers import send


class RecordingServer:
    """Serves fixed files and redirects at paths; `connections` lists the client address of every connection."""

    def __init__(self, host: str = "127.0.0.1"):
        self.files: dict[str, tuple[int, bytes, list[tuple[str, str]]]] = {}  # path -> (status, body, headers)
        self.connections: list[tuple[str, int]] = []
        self.requests: list[str] = []
        self.httpd = _AcceptLoggingServer((host, 0), _make_handler(self), self.connections)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, *, status: int = 200, content_type="application/octet-stream"):
        self.files[path] = (status, body, [("Content-Type", content_type)])

    def redirect(self, path: str, location: str, *, status: int = 302):
        self.files[path] = (status, b"", [("Location", location)])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _AcceptLoggingServer(ThreadingHTTPServer):
    def __init__(self, address, handler, connections: list):
        super().__init__(address, handler)
        self._connections = connections

    def get_request(self):
        connection, client = super().get_request()
        self._connections.append(client)  # at accept: even a connection that never sends a request counts
        return connection, client


def _make_handler(server: RecordingServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            server.requests.append(self.path)
            status, body, headers = server.files.get(self.path, (404, b"not found", [("Content-Type", "text/plain")]))
            send(self, status, body, headers)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler
