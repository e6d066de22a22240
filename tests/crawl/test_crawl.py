"""Crawl behaviour on a real local site: robots.txt, politeness, scope, limits and the WARC it writes."""

from __future__ import annotations

import gzip
import random
import time
from datetime import UTC, datetime, timedelta

from warcio.archiveiterator import ArchiveIterator

from data_code.warc import iter_warc_records
from tests.crawl.helpers import fast_config, links_page, run_crawl, send


def test_robots_disallow(server, tmp_path):
    server.page("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    server.page("/", links_page("/private/page", "/public"))
    server.page("/public", links_page())
    server.page("/private/page", links_page())
    summary, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    blocked = rows[server.url("/private/page")]
    assert (blocked["outcome"], blocked["robots_decision"]) == ("disallowed_by_robots", "disallowed")
    assert rows[server.url("/public")]["robots_decision"] == "allowed"
    assert "/private/page" not in server.paths()
    assert server.paths().count("/robots.txt") == 1  # cached per origin
    assert summary.pages_fetched == 2


def test_robots_group_for_our_agent_wins_over_star(server, tmp_path):
    server.page("/robots.txt", "User-agent: *\nDisallow: /\n\nUser-agent: lmforge\nAllow: /\nDisallow: /mine\n")
    server.page("/", links_page("/mine"))
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/")]["outcome"] == "ok"
    assert rows[server.url("/mine")]["outcome"] == "disallowed_by_robots"


def test_robots_5xx_disallows_everything(server, tmp_path):
    server.page("/robots.txt", "down", status=503, content_type="text/plain")
    server.page("/", links_page())
    summary, rows = run_crawl(fast_config(server.url("/"), max_retries=1), tmp_path)
    row = rows[server.url("/")]
    assert (row["outcome"], row["robots_decision"]) == ("robots_unavailable", "unavailable")
    assert "/" not in server.paths()
    assert summary.failures_by_reason == {"robots_unavailable": 1}


def test_robots_4xx_allows_everything(server, tmp_path):
    server.page("/robots.txt", "gone", status=410, content_type="text/plain")
    server.page("/", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/")]["outcome"] == "ok"


def test_crawl_delay_is_respected(server, tmp_path):
    server.page("/robots.txt", "User-agent: *\nCrawl-delay: 0.4\n", content_type="text/plain")
    server.page("/", links_page("/a", "/b"))
    server.page("/a", links_page())
    server.page("/b", links_page())
    run_crawl(fast_config(server.url("/"), concurrency=4, per_host_concurrency=4), tmp_path)
    times = [at for path, at in server.hits if path != "/robots.txt"]
    assert len(times) == 3
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.3, gaps  # requests start 0.4 s apart; arrival times jitter a little


def test_malformed_html_still_yields_links(server, tmp_path):
    broken = '<html><body><div><p>unclosed <a href="/one">one<table><tr><td><a href=/two>two</td></div></html'
    server.page("/", broken + "<<<>>><a href='/three'>three")
    for path in ("/one", "/two", "/three"):
        server.page(path, links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert all(rows[server.url(path)]["outcome"] == "ok" for path in ("/one", "/two", "/three"))


def test_max_pages_is_respected(server, tmp_path):
    server.page("/", links_page(*(f"/p{n}" for n in range(20))))
    for n in range(20):
        server.page(f"/p{n}", links_page())
    summary, rows = run_crawl(fast_config(server.url("/"), max_pages=5, concurrency=4), tmp_path)
    assert summary.pages_fetched == 5
    assert len([path for path in server.paths() if path != "/robots.txt"]) == 5


def test_max_depth_is_respected(server, tmp_path):
    for depth in range(5):
        server.page(f"/d{depth}", links_page(f"/d{depth + 1}"))
    _, rows = run_crawl(fast_config(server.url("/d0"), max_depth=2), tmp_path)
    assert {row["url"]: row["depth"] for row in rows.values()} == {server.url(f"/d{n}"): n for n in range(3)}
    assert "/d3" not in server.paths()


def test_off_domain_links_are_skipped(server, other_server, tmp_path):
    other_server.page("/", links_page())
    off_domain = f"http://localhost:{other_server.port}/"
    server.page("/", links_page(off_domain, "https://example.invalid/x", "/same"))
    server.page("/same", links_page())
    summary, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert set(rows) == {server.url("/"), server.url("/same")}
    assert other_server.paths() == []
    assert summary.domains == {"127.0.0.1": 2}


def test_duplicate_and_unnormalized_links_are_fetched_once(server, tmp_path):
    server.page("/", links_page("/a", "/a#top", "/./a", "/b/../a", f"HTTP://127.0.0.1:{server.port}/a", "/a?"))
    server.page("/a", links_page("/"))
    run_crawl(fast_config(server.url("/")), tmp_path)
    assert server.paths().count("/a") == 1 and server.paths().count("/") == 1


def test_nofollow_meta_stops_link_following(server, tmp_path):
    server.page("/", links_page("/a", extra='<meta name="robots" content="nofollow, noai">'))
    server.page("/a", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/")]["robots_meta"] == "noai,nofollow"
    assert "/a" not in server.paths()


def test_warc_round_trip_at_recorded_offsets(server, tmp_path):
    licence = "https://creativecommons.org/licenses/by/4.0/"
    html = links_page("/plain", extra=f'<a rel="license" href="{licence}">cc</a>').encode()
    server.page("/", gzip.compress(html), headers=[("Content-Encoding", "gzip"), ("X-Robots-Tag", "noai")])
    server.page("/plain", "just text", content_type="text/plain")
    summary, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    row = rows[server.url("/")]
    assert (row["license"], row["robots_meta"]) == (licence, "noai")
    warc = str(tmp_path / row["warc_file"])
    with open(warc, "rb") as stream:  # plain warcio reads it too
        types = [record.rec_type for record in ArchiveIterator(stream)]
    assert types == ["warcinfo"] + ["response", "request", "metadata"] * 2
    records = {(r.record_type, r.target_uri): r for r in iter_warc_records(warc)}
    for url in (server.url("/"), server.url("/plain")):
        assert records[("response", url)].offset == rows[url]["warc_offset"]
        with open(warc, "rb") as stream:  # a reader that seeks straight to the logged offset finds the response
            stream.seek(rows[url]["warc_offset"])
            record = next(iter(ArchiveIterator(stream)))
            assert (record.rec_type, record.rec_headers.get_header("WARC-Target-URI")) == ("response", url)
    assert records[("response", server.url("/"))].payload == html  # stored as sent, decoded on read
    metadata = records[("metadata", server.url("/"))].payload.decode()
    for line in ("robots: allowed", "robots-meta: noai", f"license: {licence}", "depth: 0", "fetch-outcome: ok"):
        assert line in metadata.splitlines()
    request = records[("request", server.url("/"))]
    assert request.header("User-Agent") == fast_config(server.url("/")).user_agent
    assert summary.warc_files == [row["warc_file"]]


def test_warc_files_rotate(server, tmp_path):
    server.page("/", links_page(*(f"/p{n}" for n in range(4))))
    for n in range(4):
        server.page(f"/p{n}", links_page() + random.Random(n).randbytes(1500).hex())  # incompressible
    summary, rows = run_crawl(fast_config(server.url("/"), warc_max_bytes=2000, concurrency=1), tmp_path)
    assert len(summary.warc_files) >= 3
    assert sorted({row["warc_file"] for row in rows.values()}) == summary.warc_files
    for row in rows.values():
        offsets = [r.offset for r in iter_warc_records(str(tmp_path / row["warc_file"]), record_types=("response",))]
        assert row["warc_offset"] in offsets


def test_summary_counts(server, tmp_path):
    server.page("/", links_page("/missing", "/ok"))
    server.page("/ok", links_page())
    summary, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert (summary.pages_fetched, summary.pages_failed) == (2, 1)
    assert summary.failures_by_reason == {"http_error": 1}
    assert "404" in rows[server.url("/missing")]["detail"]
    assert summary.bytes_raw == sum(row["bytes_raw"] for row in rows.values() if row["outcome"] == "ok")


def test_hostname_is_pinned_to_the_checked_address(server, tmp_path):
    server.page("/", links_page())
    seed = f"http://localhost:{server.port}/"
    _, rows = run_crawl(fast_config(seed, allow_private_hosts=("localhost",)), tmp_path)
    assert (rows[seed]["outcome"], rows[seed]["ip"]) == ("ok", "127.0.0.1")
    assert server.request_headers["/"]["Host"] == f"localhost:{server.port}"  # connected by IP, named by Host


def test_hostname_resolving_to_loopback_is_blocked(server, tmp_path):
    seed = f"http://localhost:{server.port}/"
    _, rows = run_crawl(fast_config(seed, allow_private_hosts=()), tmp_path)
    assert rows[seed]["outcome"] == "blocked_address"
    assert server.paths() == []  # not even robots.txt was requested


def test_links_with_rel_noopener_are_followed_and_request_line_is_stored(server, tmp_path):
    server.page("/", '<a rel="noopener noreferrer" href="/next?x=1">n</a><link rel="stylesheet" href="/s.css">')
    server.page("/next?x=1", links_page())
    _, rows = run_crawl(fast_config(server.url("/")), tmp_path)
    assert rows[server.url("/next?x=1")]["outcome"] == "ok"
    assert "/s.css" not in server.paths()
    with open(tmp_path / rows[server.url("/")]["warc_file"], "rb") as stream:
        request_lines = [
            f"{r.http_headers.protocol} {r.http_headers.statusline}"
            for r in ArchiveIterator(stream)
            if r.rec_type == "request"
        ]
    assert request_lines == ["GET / HTTP/1.1", "GET /next?x=1 HTTP/1.1"]


def test_pages_fetched_do_not_depend_on_which_fetch_ends_first(server, tmp_path):
    """The first-linked page answers last; max_pages still takes its children first (link order, not timing)."""

    def slow(handler):
        time.sleep(1.0)
        send(handler, 200, links_page("/a1", "/a2", "/a3").encode(), [("Content-Type", "text/html")])

    server.page("/", links_page("/a", "/b"))
    server.routes["/a"] = slow
    server.page("/b", links_page("/b1", "/b2", "/b3", "/a1"))
    for path in ("/a1", "/a2", "/a3", "/b1", "/b2", "/b3"):
        server.page(path, links_page())
    config = fast_config(server.url("/"), max_pages=6, concurrency=8, read_timeout_s=5.0, total_timeout_s=10.0)
    _, rows = run_crawl(config, tmp_path)
    fetched = {url.removeprefix(server.url("")) for url, row in rows.items() if row["outcome"] == "ok"}
    assert fetched == {"/", "/a", "/b", "/a1", "/a2", "/a3"}
    assert "/b1" not in server.paths()


def test_warc_date_is_when_the_request_was_sent(server, tmp_path):
    """WARC-Date (WARC/1.1, microseconds) is the capture start: the fetch log's time, before a slow answer ends."""
    arrived = []

    def slow(handler):
        arrived.append(datetime.now(UTC))
        time.sleep(1.0)
        send(handler, 200, links_page().encode(), [("Content-Type", "text/html")])

    server.routes["/"] = slow
    _, rows = run_crawl(fast_config(server.url("/"), read_timeout_s=5.0, total_timeout_s=10.0), tmp_path)
    row = rows[server.url("/")]
    response = next(iter_warc_records(str(tmp_path / row["warc_file"]), record_types=("response",)))
    assert datetime.fromisoformat(response.date) == row["fetched_at"]  # to the microsecond
    assert row["fetched_at"] <= arrived[0] < row["fetched_at"] + timedelta(seconds=0.9)  # sent, not answered
    with open(tmp_path / row["warc_file"], "rb") as stream:
        assert {record.rec_headers.protocol for record in ArchiveIterator(stream)} == {"WARC/1.1"}
