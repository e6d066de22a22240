"""Ingest of existing WARC files: good files, Common Crawl record order, truncation, missing files."""

from __future__ import annotations

import gzip
import io

import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from data_code.crawl import FETCH_SCHEMA, CrawlConfig, crawl_and_ingest, ingest_warcs
from data_code.warc import iter_warc_records
from tests.crawl.helpers import links_page


def _common_crawl_style_warc(path, pages: list[tuple[str, bytes]], date: str | None = None) -> list[int]:
    """Write request-then-response pairs (as Common Crawl does), bodies gzip-encoded, captured at `date` (now when
    None); return response offsets."""
    dated = {"WARC-Date": date} if date else {}
    offsets = []
    with open(path, "wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for url, html in pages:
            request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True)
            record = writer.create_warc_record(url, "request", http_headers=request, warc_headers_dict=dated)
            writer.write_record(record)
            body = gzip.compress(html)
            headers = [("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
            http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
            offsets.append(stream.tell())
            writer.write_record(
                writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=dated
                )
            )
    return offsets


PAGES = [(f"https://example.com/{n}", f"<html><p>page {n}</p></html>".encode()) for n in range(3)]


def test_ingest_good_warc(tmp_path):
    source = tmp_path / "in.warc.gz"
    _common_crawl_style_warc(source, PAGES)
    out = tmp_path / "out"
    out.mkdir()
    summary = ingest_warcs([str(source)], out)
    assert (summary.pages_fetched, summary.pages_failed, summary.errors) == (3, 0, [])
    assert summary.domains == {"example.com": 3}
    table = pq.read_table(out / summary.fetch_log)
    assert table.schema.equals(FETCH_SCHEMA)
    rows = table.to_pylist()
    assert [row["url"] for row in rows] == [url for url, _ in PAGES]
    assert {(row["outcome"], row["robots_decision"], row["http_status"]) for row in rows} == {("ok", "unknown", 200)}
    records = list(iter_warc_records(str(out / rows[0]["warc_file"])))
    responses = {r.offset: r for r in records if r.record_type == "response"}
    for row, (url, html) in zip(rows, PAGES, strict=True):
        response = responses[row["warc_offset"]]
        assert (response.target_uri, response.payload) == (url, html)
        assert response.header("Content-Encoding") is None  # body is stored decoded, so the header must go
    requests = [r for r in records if r.record_type == "request"]
    assert len(requests) == 3 and requests[0].header("Host") == "example.com"
    metadata = [r.payload.decode() for r in records if r.record_type == "metadata"]
    assert all("robots: unknown" in text and "fetch-outcome: ok" in text for text in metadata)


def test_ingest_keeps_the_source_capture_time(tmp_path):
    """A Common Crawl record captured in 2019 is still dated 2019 in our WARC (and so in the documents)."""
    source = tmp_path / "in.warc.gz"
    _common_crawl_style_warc(source, PAGES[:1], date="2019-05-01T12:30:00Z")
    out = tmp_path / "out"
    out.mkdir()
    summary = ingest_warcs([str(source)], out)
    row = pq.read_table(out / summary.fetch_log).to_pylist()[0]
    assert row["fetched_at"].isoformat() == "2019-05-01T12:30:00+00:00"
    dates = {record.record_type: record.date for record in iter_warc_records(str(out / row["warc_file"]))}
    assert dates["response"] == dates["request"] == dates["metadata"] == "2019-05-01T12:30:00Z"


def test_ingest_own_crawl_output_round_trips(tmp_path):
    source = tmp_path / "in.warc.gz"
    _common_crawl_style_warc(source, PAGES)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    ingest_warcs([str(source)], first)
    summary = ingest_warcs([str(first / "warc" / "ingest-00000.warc.gz")], second, warc_prefix="again")
    assert summary.pages_fetched == 3 and summary.warc_files == ["warc/again-00000.warc.gz"]
    requests = [r for r in iter_warc_records(str(second / summary.warc_files[0]), record_types=("request",))]
    assert [r.header("Host") for r in requests] == ["example.com"] * 3  # request paired after its response


def test_ingest_truncated_warc_keeps_valid_records(tmp_path):
    source = tmp_path / "cut.warc.gz"
    offsets = _common_crawl_style_warc(source, PAGES)
    data = source.read_bytes()
    source.write_bytes(data[: offsets[2] + 60])  # cut inside the third response
    out = tmp_path / "out"
    out.mkdir()
    summary = ingest_warcs([str(source)], out)
    assert summary.pages_fetched == 2 and summary.failures_by_reason == {"corrupt_warc": 1}
    assert len(summary.errors) == 1 and "cut.warc.gz" in summary.errors[0] and "offset" in summary.errors[0]
    rows = pq.read_table(out / summary.fetch_log).to_pylist()
    assert [row["outcome"] for row in rows] == ["ok", "ok", "corrupt_warc"]
    assert rows[2]["detail"] == summary.errors[0] and rows[2]["url"] == str(source)
    assert f"offset {offsets[2]}" in summary.errors[0]


def test_ingest_missing_file_fails_before_any_work(tmp_path):
    good = tmp_path / "good.warc.gz"
    _common_crawl_style_warc(good, PAGES)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FileNotFoundError, match="missing.warc.gz"):
        ingest_warcs([str(good), str(tmp_path / "missing.warc.gz")], out)
    assert list(out.iterdir()) == []


def test_crawl_and_ingest_share_one_fetch_log(server, tmp_path):
    source = tmp_path / "cc.warc.gz"
    _common_crawl_style_warc(source, PAGES)
    server.page("/", links_page())
    out = tmp_path / "out"
    out.mkdir()
    config = CrawlConfig(seeds=(server.url("/"),), warc_sources=(str(source),), allow_private_hosts=("127.0.0.1",))
    summary = crawl_and_ingest(config, out)
    assert summary.warc_files == ["warc/crawl-00000.warc.gz", "warc/ingest-00000.warc.gz"]
    assert summary.pages_fetched == 4 and summary.as_stats()["domains"] == {"example.com": 3, "127.0.0.1": 1}
    decisions = [row["robots_decision"] for row in pq.read_table(out / summary.fetch_log).to_pylist()]
    assert decisions == ["allowed", "unknown", "unknown", "unknown"]


def test_ingest_only_config_and_missing_source(tmp_path):
    source = tmp_path / "cc.warc.gz"
    _common_crawl_style_warc(source, PAGES)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert crawl_and_ingest(CrawlConfig(warc_sources=(str(source),)), tmp_path / "a").pages_fetched == 3
    with pytest.raises(FileNotFoundError, match="gone.warc.gz"):
        crawl_and_ingest(CrawlConfig(warc_sources=(str(tmp_path / "gone.warc.gz"),)), tmp_path / "b")
    assert list((tmp_path / "b").iterdir()) == []
