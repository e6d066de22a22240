"""Each server misbehaviour ends as one fetch-log row with the exact reason, and the crawl goes on."""

from __future__ import annotations

import gzip
import time

from tests.crawl.helpers import fast_config, free_port, links_page, reset_connection, run_crawl, send


def _with_good_page(server, bad_path: str):
    """A seed page linking to `bad_path` and to /good; returns the seed URL."""
    server.page("/", links_page(bad_path, "/good"))
    server.page("/good", links_page())
    return server.url("/")


def _assert_outcome(rows, server, bad_path: str, reason: str):
    bad = rows[server.url(bad_path)]
    assert bad["outcome"] == reason, bad
    assert bad["warc_file"] is None and bad["detail"]
    assert rows[server.url("/good")]["outcome"] == "ok"
    return bad


def test_connection_refused_is_connect_error(server, tmp_path):
    refused = f"http://127.0.0.1:{free_port()}/"
    server.page("/", links_page())
    summary, rows = run_crawl(fast_config(refused, server.url("/")), tmp_path)
    assert rows[server.url("/")]["outcome"] == "ok"
    assert rows[refused]["outcome"] == "connect_error"
    assert rows[refused]["http_status"] is None
    assert summary.failures_by_reason == {"connect_error": 1}


def test_connection_reset_mid_body(server, tmp_path):
    def half_then_reset(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"<html>" + b"x" * 2000)
        reset_connection(handler)

    server.routes["/reset"] = half_then_reset
    _, rows = run_crawl(fast_config(_with_good_page(server, "/reset")), tmp_path)
    _assert_outcome(rows, server, "/reset", "connection_reset")


def test_stall_past_read_timeout(server, tmp_path):
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(b"<html>")
        handler.wfile.flush()
        time.sleep(1.5)  # read_timeout_s is 0.4

    server.routes["/stall"] = stall
    _, rows = run_crawl(fast_config(_with_good_page(server, "/stall")), tmp_path)
    assert "read_timeout_s=0.4" in _assert_outcome(rows, server, "/stall", "timeout")["detail"]


def test_slow_drip_is_cut_by_total_timeout(server, tmp_path):
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        for _ in range(40):  # one byte every 0.1 s: never silent long enough for the read timeout
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    server.routes["/drip"] = drip
    started = time.monotonic()
    _, rows = run_crawl(fast_config(_with_good_page(server, "/drip"), total_timeout_s=0.8), tmp_path)
    bad = _assert_outcome(rows, server, "/drip", "timeout")
    assert "0.8" in bad["detail"]
    assert time.monotonic() - started < 3


def _flaky(statuses: list[int], headers=()):
    """A route answering each status in turn, then 200 forever."""
    remaining = list(statuses)

    def route(handler):
        status = remaining.pop(0) if remaining else 200
        send(handler, status, links_page().encode(), [("Content-Type", "text/html"), *headers])

    return route


def test_server_errors_are_retried_then_ok(server, tmp_path):
    server.routes["/flaky"] = _flaky([500, 503])
    _, rows = run_crawl(fast_config(_with_good_page(server, "/flaky"), max_retries=3), tmp_path)
    assert rows[server.url("/flaky")]["outcome"] == "ok"
    assert rows[server.url("/flaky")]["attempts"] == 3
    assert server.paths().count("/flaky") == 3


def test_server_error_after_retries(server, tmp_path):
    server.page("/down", "oops", status=503, content_type="text/plain")
    _, rows = run_crawl(fast_config(_with_good_page(server, "/down"), max_retries=2), tmp_path)
    bad = _assert_outcome(rows, server, "/down", "server_error")
    assert bad["attempts"] == 3 and bad["http_status"] == 503


def test_429_waits_for_retry_after_then_ok(server, tmp_path):
    server.routes["/busy"] = _flaky([429], headers=[("Retry-After", "1")])
    server.page("/", links_page("/busy"))
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/busy")]["outcome"] == "ok"
    assert rows[server.url("/busy")]["attempts"] == 2
    times = [at for path, at in server.hits if path == "/busy"]
    assert times[1] - times[0] >= 0.95


def test_429_forever_is_rate_limited(server, tmp_path):
    server.page("/busy", "slow down", status=429, content_type="text/plain", headers=[("Retry-After", "0")])
    # Timeouts that a busy 2-core machine cannot trip: this test is about 429, and a 0.4 s read timeout made it
    # report `timeout` under full-suite load.
    patient = {"read_timeout_s": 5.0, "total_timeout_s": 10.0}
    _, rows = run_crawl(fast_config(_with_good_page(server, "/busy"), max_retries=1, **patient), tmp_path)
    assert _assert_outcome(rows, server, "/busy", "rate_limited")["http_status"] == 429


def test_redirect_loop(server, tmp_path):
    server.page("/r1", "", status=302, headers=[("Location", "/r2")])
    server.page("/r2", "", status=302, headers=[("Location", "/r1")])
    _, rows = run_crawl(fast_config(_with_good_page(server, "/r1")), tmp_path)
    bad = _assert_outcome(rows, server, "/r1", "redirect_loop")
    assert bad["redirects"] == [server.url("/r2")]


def test_too_many_redirects(server, tmp_path):
    for hop in range(6):
        server.page(f"/hop{hop}", "", status=301, headers=[("Location", f"/hop{hop + 1}")])
    _, rows = run_crawl(fast_config(_with_good_page(server, "/hop0"), max_redirects=3), tmp_path)
    bad = _assert_outcome(rows, server, "/hop0", "too_many_redirects")
    assert len(bad["redirects"]) == 3


def test_redirect_is_followed(server, tmp_path):
    server.page("/old", "", status=301, headers=[("Location", "/new")])
    server.page("/new", links_page())
    _, rows = run_crawl(fast_config(server.url("/old")), tmp_path)
    row = rows[server.url("/old")]
    assert (row["outcome"], row["final_url"], row["redirects"]) == ("ok", server.url("/new"), [server.url("/new")])


def test_redirect_to_metadata_or_private_address_is_blocked(server, tmp_path):
    server.page("/meta", "", status=302, headers=[("Location", "http://169.254.169.254/latest/meta-data/")])
    server.page("/private", "", status=302, headers=[("Location", "http://10.0.0.1/")])
    server.page("/", links_page("/meta", "/private", "/good"))
    server.page("/good", links_page())
    started = time.monotonic()
    _, rows = run_crawl(fast_config(server.url("/"), connect_timeout_s=5.0), tmp_path)
    for path in ("/meta", "/private"):
        row = rows[server.url(path)]
        assert row["outcome"] == "blocked_address", row
        assert row["ip"] == "127.0.0.1"  # the only address ever connected to
    assert rows[server.url("/good")]["outcome"] == "ok"
    assert time.monotonic() - started < 2  # blocked before connecting, not after a connect timeout


def test_oversize_body_declared_and_streamed(server, tmp_path):
    server.page("/big", "x" * 5000)

    def undeclared(handler):  # HTTP/1.0 without Content-Length: the size is only known while streaming
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(b"<p>" * 3000)

    server.routes["/stream"] = undeclared
    server.page("/", links_page("/big", "/stream", "/good"))
    server.page("/good", links_page())
    _, rows = run_crawl(fast_config(server.url("/"), max_response_bytes=4000), tmp_path)
    assert rows[server.url("/big")]["outcome"] == "too_large"
    assert rows[server.url("/stream")]["outcome"] == "too_large"
    assert rows[server.url("/good")]["outcome"] == "ok"


def test_gzip_bomb(server, tmp_path):
    bomb = gzip.compress(b" " * 20_000_000)
    server.page("/bomb", bomb, headers=[("Content-Encoding", "gzip")])
    _, rows = run_crawl(fast_config(_with_good_page(server, "/bomb"), max_response_bytes=1_000_000), tmp_path)
    assert len(bomb) < 1_000_000
    _assert_outcome(rows, server, "/bomb", "decompression_bomb")


def test_gzip_page_is_decoded(server, tmp_path):
    html = links_page("/good").encode()
    server.page("/", gzip.compress(html), headers=[("Content-Encoding", "gzip")])
    server.page("/good", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    row = rows[server.url("/")]
    assert row["outcome"] == "ok" and row["bytes_decoded"] == len(html) and row["bytes_raw"] < len(html) + 30
    assert rows[server.url("/good")]["outcome"] == "ok"  # links were read from the decoded body
    assert server.request_headers["/"]["Accept-Encoding"].startswith("gzip, deflate")


def test_wrong_content_type(server, tmp_path):
    server.page("/image", b"\x89PNG\r\n\x1a\n...", content_type="image/png")
    _, rows = run_crawl(fast_config(_with_good_page(server, "/image")), tmp_path)
    assert "image/png" in _assert_outcome(rows, server, "/image", "unsupported_content_type")["detail"]


def test_binary_served_as_html(server, tmp_path):
    server.page("/fake", b"\x00\x01\x02\x03binary\x00\xff" * 100, content_type="text/html")
    server.page("/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", content_type="text/html")
    server.page("/", links_page("/fake", "/pdf", "/good"))
    server.page("/good", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/fake")]["outcome"] == "binary_content"
    assert rows[server.url("/pdf")]["outcome"] == "binary_content"


def test_invalid_charset_falls_back_to_utf8(server, tmp_path):
    body = links_page("/caf\u00e9").encode("utf-8")
    server.page("/", body, content_type="text/html; charset=foo-bar")
    server.page("/caf%C3%A9", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/")]["outcome"] == "ok"
    assert rows[server.url("/caf%C3%A9")]["outcome"] == "ok"  # the link was decoded as UTF-8


def test_redirect_off_domain(server, other_server, tmp_path):
    other_server.page("/", links_page())
    server.page("/away", "", status=302, headers=[("Location", f"http://localhost:{other_server.port}/")])
    _, rows = run_crawl(fast_config(_with_good_page(server, "/away")), tmp_path)
    _assert_outcome(rows, server, "/away", "off_domain")
    assert other_server.paths() == []


def test_invalid_redirect_location_and_invalid_links(server, tmp_path):
    server.page("/bad", "", status=302, headers=[("Location", "http://[::1/broken")])
    server.page("/", links_page("/bad", "http://example.com:99999/", "/good"))
    server.page("/good", links_page())
    summary, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/bad")]["outcome"] == "invalid_url"
    assert rows["http://example.com:99999/"]["outcome"] == "invalid_url"
    assert summary.failures_by_reason == {"invalid_url": 2}


def test_http_404_is_http_error(server, tmp_path):
    _, rows = run_crawl(fast_config(_with_good_page(server, "/nowhere")), tmp_path)
    bad = _assert_outcome(rows, server, "/nowhere", "http_error")
    assert bad["http_status"] == 404 and "404" in bad["detail"] and bad["attempts"] == 1
