"""WARC sources go through the crawler's guard: the address policy before every connection (redirects included),
an allow-list of fsspec schemes, and errors that quote someone else's bytes only as a short escaped excerpt."""

from __future__ import annotations

import fsspec
import pyarrow.parquet as pq
import pytest

from data_code.crawl import CrawlConfig, crawl_and_ingest, ingest_warcs
from data_code.crawl.config import SourcePolicy
from data_code.warc import NotWarcError
from tests.crawl.helpers import fast_config, links_page, run_crawl
from tests.crawl.recording import RecordingServer

ALLOW_LOOPBACK = ("127.0.0.1",)


@pytest.fixture
def recording():
    instance = RecordingServer()
    yield instance
    instance.close()


@pytest.fixture
def crawled_warc(server, tmp_path):
    """The bytes of a real WARC file the crawler wrote: three pages of a local site."""
    server.page("/", links_page("/a", "/b"))
    server.page("/a", links_page())
    server.page("/b", links_page())
    out = tmp_path / "crawl"
    out.mkdir()
    summary, _ = run_crawl(fast_config(server.url("/")), out)
    assert summary.pages_fetched == 3
    return (out / summary.warc_files[0]).read_bytes()


def _out(tmp_path, name="out"):
    directory = tmp_path / name
    directory.mkdir()
    return directory


def test_loopback_warc_source_is_refused_before_any_connection(recording, crawled_warc, tmp_path):
    url = recording.url("/x.warc.gz")
    recording.serve("/x.warc.gz", crawled_warc)
    out = _out(tmp_path)
    with pytest.raises(ValueError, match="refused before connecting") as through_config:
        crawl_and_ingest(CrawlConfig(warc_sources=(url,)), out)
    with pytest.raises(ValueError, match="refused before connecting") as through_ingest:
        ingest_warcs([url], out)
    for error in (through_config, through_ingest):
        message = str(error.value)
        assert message.startswith(f"warc_sources: {url} ") and "address policy" in message
        assert "allow_private_hosts" in message  # says how to allow it
    assert recording.connections == []
    assert list(out.iterdir()) == []


def test_allow_listed_warc_source_is_fetched_and_ingested(recording, crawled_warc, tmp_path):
    url = recording.url("/x.warc.gz")
    recording.serve("/x.warc.gz", crawled_warc)
    out = _out(tmp_path)
    summary = crawl_and_ingest(CrawlConfig(warc_sources=(url,), allow_private_hosts=ALLOW_LOOPBACK), out)
    assert (summary.pages_fetched, summary.pages_failed, summary.errors) == (3, 0, [])
    rows = pq.read_table(out / summary.fetch_log).to_pylist()
    assert all(row["detail"].startswith(f"ingested from {url} at offset ") for row in rows)
    assert recording.requests == ["/x.warc.gz"]
    policy = SourcePolicy(allow_private_hosts=ALLOW_LOOPBACK)
    assert ingest_warcs([url], _out(tmp_path, "again"), policy=policy).pages_fetched == 3


def test_redirect_to_an_address_not_allowed_is_refused_before_connecting(recording, crawled_warc, tmp_path):
    elsewhere = RecordingServer("127.0.0.2")  # loopback too, but not on the allow-list
    try:
        elsewhere.serve("/x.warc.gz", crawled_warc)
        recording.redirect("/x.warc.gz", elsewhere.url("/x.warc.gz"))
        out = _out(tmp_path)
        config = CrawlConfig(warc_sources=(recording.url("/x.warc.gz"),), allow_private_hosts=ALLOW_LOOPBACK)
        with pytest.raises(ValueError, match="refused before connecting") as error:
            crawl_and_ingest(config, out)
        message = str(error.value)
        assert f"redirected to {elsewhere.url('/x.warc.gz')}" in message and "127.0.0.2" in message
        assert recording.requests == ["/x.warc.gz"] and elsewhere.connections == []
    finally:
        elsewhere.close()


def test_missing_http_source_is_file_not_found(recording, tmp_path):
    url = recording.url("/gone.warc.gz")
    with pytest.raises(FileNotFoundError, match="gone.warc.gz: file not found"):
        crawl_and_ingest(CrawlConfig(warc_sources=(url,), allow_private_hosts=ALLOW_LOOPBACK), _out(tmp_path))


def test_html_served_as_a_warc_source_is_an_error_quoting_only_an_excerpt(recording, tmp_path):
    page = ("<!doctype html><html><body>" + "private text " * 200 + "</body></html>").encode()
    recording.serve("/x.warc.gz", page, content_type="text/html")
    url = recording.url("/x.warc.gz")
    with pytest.raises(NotWarcError) as error:
        crawl_and_ingest(CrawlConfig(warc_sources=(url,), allow_private_hosts=ALLOW_LOOPBACK), _out(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{url}: not a WARC file")
    assert message.count("private text") <= 4  # a 60-character excerpt, not the page
    assert len(message) < 400


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://files.example/x.warc.gz",
        "memory://bucket/x.warc.gz",
        "sftp://files.example/x.warc.gz",
        "simplecache::http://127.0.0.1:1/x.warc.gz",  # a chain that would reach http around the guard
    ],
)
def test_other_schemes_are_refused_naming_the_url_and_the_allowed_schemes(uri, tmp_path):
    out = _out(tmp_path)
    for run in (lambda: crawl_and_ingest(CrawlConfig(warc_sources=(uri,)), out), lambda: ingest_warcs([uri], out)):
        with pytest.raises(ValueError, match="allowed schemes are http, https, file, s3, gs") as error:
            run()
        assert str(error.value).startswith("warc_sources: ") and uri in str(error.value)
    assert list(out.iterdir()) == []


def test_the_scheme_allow_list_is_configurable(crawled_warc, tmp_path):
    with fsspec.open("memory://guarded-sources/x.warc.gz", "wb") as handle:
        handle.write(crawled_warc)
    config = CrawlConfig(warc_sources=("memory://guarded-sources/x.warc.gz",), source_schemes=["file", "memory"])
    assert config.source_policy().schemes == ("file", "memory")
    assert crawl_and_ingest(config, _out(tmp_path)).pages_fetched == 3
