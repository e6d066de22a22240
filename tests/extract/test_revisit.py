"""WARC revisit records (a page unchanged since an earlier capture) are counted by profile, never extracted."""

from __future__ import annotations

import gzip as gzip_module
import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from assets.common import Produced
from assets.documents import documents_metadata
from data_code.extract import ExtractConfig, ExtractStats, extract_to_parquet
from data_code.extract.record import extract_record
from data_code.warc import iter_warc_records
from tests.extract.warcs import realistic_page, sha1_digest

PAGE_A, PAGE_B, PAGE_C = "https://news.example.org/a", "https://news.example.org/b", "https://news.example.org/c"
BODY_A = realistic_page(title="Otters return to the valley").encode()
BODY_C = realistic_page(title="Herons nest on the island again").encode()
PROFILE = "http://netpreserve.org/warc/1.1/revisit/"
FIRST_CAPTURE = "2024-05-01T02:00:00Z"


def _http(status_line: str, headers=()) -> StatusAndHeaders:
    return StatusAndHeaders(status_line, list(headers), protocol="HTTP/1.1")


def _response(writer: WARCWriter, url: str, body: bytes):
    http = _http("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)


def _not_modified_revisit(writer: WARCWriter, url: str, original_digest: str):
    """A 304 answer to a conditional GET, as a server-not-modified revisit (warcio writes identical-payload-digest)."""
    http = _http("304 Not Modified", [("ETag", '"b-1"'), ("Date", "Thu, 02 May 2024 02:00:00 GMT")])
    record = writer.create_revisit_record(url, original_digest, url, FIRST_CAPTURE, http_headers=http)
    record.rec_headers.replace_header("WARC-Profile", PROFILE + "server-not-modified")
    return record


def write_night(path: Path, *, gzip: bool) -> None:
    """response A, revisit A (identical payload, HTTP headers and no body), 304 revisit B, response C."""
    with open(path, "wb") as stream:
        writer = WARCWriter(stream, gzip=gzip, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        writer.write_record(_response(writer, PAGE_A, BODY_A))
        http_a = _http("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(BODY_A)))])
        writer.write_record(
            writer.create_revisit_record(PAGE_A, sha1_digest(BODY_A), PAGE_A, FIRST_CAPTURE, http_headers=http_a)
        )
        writer.write_record(_not_modified_revisit(writer, PAGE_B, sha1_digest(b"page B as first captured")))
        writer.write_record(_response(writer, PAGE_C, BODY_C))


def run(tmp_path: Path, uris: list[Path], **config) -> tuple[ExtractStats, list[dict], list[dict]]:
    config.setdefault("workers", 1)
    out = tmp_path / "out"
    stats = extract_to_parquet(
        [str(uri) for uri in uris],
        str(out / "documents.parquet"),
        str(out / "rejections.parquet"),
        ExtractConfig(**config),
    )
    documents = pq.read_table(out / "documents.parquet").to_pylist()
    rejections = pq.read_table(out / "rejections.parquet").to_pylist()
    return stats, documents, rejections


@pytest.mark.parametrize("gzip", [True, False], ids=["warc.gz", "warc"])
def test_revisits_are_counted_by_profile_and_make_no_row(tmp_path, gzip):
    warc = tmp_path / ("night.warc.gz" if gzip else "night.warc")
    write_night(warc, gzip=gzip)
    with open(warc, "rb") as stream:  # the file says what the test claims it says
        profiles = [
            record.rec_headers.get_header("WARC-Profile")
            for record in ArchiveIterator(stream)
            if record.rec_type == "revisit"
        ]
    assert profiles == [PROFILE + "identical-payload-digest", PROFILE + "server-not-modified"]

    stats, documents, rejections = run(tmp_path, [warc])

    assert [doc["url"] for doc in documents] == [PAGE_A, PAGE_C]
    assert rejections == []  # a revisit is no loss: no rejection row, for it or anything else
    assert stats.revisits == 2
    assert stats.revisits_by_profile == {"identical-payload-digest": 1, "server-not-modified": 1}
    assert (stats.records_read, stats.documents, stats.rejected, stats.rejections_by_reason) == (2, 2, 0, {})
    assert {"revisits": 2, "revisits_by_profile": stats.revisits_by_profile}.items() <= stats.as_stats().items()


def test_same_counts_with_worker_processes(tmp_path):
    warcs = [tmp_path / "one.warc.gz", tmp_path / "two.warc"]
    write_night(warcs[0], gzip=True)
    write_night(warcs[1], gzip=False)

    stats, documents, rejections = run(tmp_path, warcs, workers=2, batch_records=1)

    assert [doc["url"] for doc in documents] == [PAGE_A, PAGE_C, PAGE_A, PAGE_C]
    assert rejections == []
    assert stats.revisits == 4
    assert stats.revisits_by_profile == {"identical-payload-digest": 2, "server-not-modified": 2}


def test_digest_check_does_not_flag_a_revisit_whose_payload_digest_is_the_originals(tmp_path):
    # A revisit's WARC-Payload-Digest is the original capture's: checked against the revisit's own (empty) body it
    # would fail. iter_warc_records raises on a damaged record when no handler is given, so reading every record
    # of every type, with and without a handler, proves no revisit is taken for damaged.
    warc = tmp_path / "night.warc.gz"
    write_night(warc, gzip=True)
    damaged = []

    records = list(iter_warc_records(str(warc)))
    handled = list(iter_warc_records(str(warc), on_damaged_record=damaged.append))

    revisits = [record for record in records if record.record_type == "revisit"]
    assert damaged == []
    assert [record.offset for record in handled] == [record.offset for record in records]
    assert [(record.target_uri, record.http_status, record.payload) for record in revisits] == [
        (PAGE_A, 200, b""),
        (PAGE_B, 304, b""),
    ]
    assert revisits[0].payload_digest == sha1_digest(BODY_A) != sha1_digest(b"")


def _revisit_with_copied_body(url: str, body: bytes) -> bytes:
    """An uncompressed revisit record that carries the whole HTTP response, as some tools write it (warcio's
    writer keeps only a revisit's HTTP headers, so this one is written by hand)."""
    http = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    block = http + body
    header = (
        "WARC/1.1\r\nWARC-Type: revisit\r\nWARC-Record-ID: <urn:uuid:5b1c6c6e-2f53-4d0e-9a51-0d7a3b1f9e01>\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-05-02T02:00:00Z\r\n"
        f"WARC-Profile: {PROFILE}identical-payload-digest\r\nWARC-Refers-To-Target-URI: {url}\r\n"
        f"WARC-Refers-To-Date: {FIRST_CAPTURE}\r\nWARC-Payload-Digest: {sha1_digest(body)}\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n"
    )
    return header.encode() + block + b"\r\n\r\n"


@pytest.mark.parametrize("gzip", [True, False], ids=["warc.gz", "warc"])
def test_revisit_that_copies_headers_and_body_is_still_no_document(tmp_path, gzip):
    # Some tools copy the whole HTTP response into the revisit: it must still count as unchanged, not as a page.
    warc = tmp_path / ("copied.warc.gz" if gzip else "copied.warc")
    with open(warc, "wb") as stream:
        writer = WARCWriter(stream, gzip=gzip, warc_version="1.1")
        writer.write_record(_response(writer, PAGE_C, BODY_C))
        copied = _revisit_with_copied_body(PAGE_A, BODY_A)
        stream.write(gzip_module.compress(copied) if gzip else copied)  # .warc.gz: one gzip member per record
    [revisit] = [record for record in iter_warc_records(str(warc)) if record.record_type == "revisit"]
    assert (revisit.payload, revisit.http_status) == (BODY_A, 200)  # a page extract_record would otherwise keep

    assert extract_record(revisit, {}, ExtractConfig(workers=1)) == (
        "revisit",
        {"url": PAGE_A, "profile": "identical-payload-digest"},
    )
    stats, documents, rejections = run(tmp_path, [warc])
    assert [doc["url"] for doc in documents] == [PAGE_C]
    assert rejections == []
    assert stats.revisits == 1
    assert stats.revisits_by_profile == {"identical-payload-digest": 1, "server-not-modified": 0}


def test_a_night_without_revisits_reports_zero_for_both_profiles(tmp_path):
    warc = tmp_path / "fresh.warc.gz"
    with open(warc, "wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        writer.write_record(_response(writer, PAGE_C, BODY_C))

    stats, documents, _ = run(tmp_path, [warc])

    assert len(documents) == 1
    assert stats.revisits == 0
    assert stats.revisits_by_profile == {"identical-payload-digest": 0, "server-not-modified": 0}


def _produced(stats: dict) -> Produced:
    return Produced(manifest=SimpleNamespace(stats=stats), reused=False, run_url=None, path=None)


def test_documents_metadata_shows_unchanged_revisits(tmp_path):
    warc = tmp_path / "night.warc.gz"
    write_night(warc, gzip=True)
    stats, _, _ = run(tmp_path, [warc])

    metadata = documents_metadata(_produced(stats.as_stats()))

    assert metadata["unchanged_revisits"] == 2
    assert (metadata["documents"], metadata["rejected"]) == (2, 0)


def test_documents_metadata_of_an_artifact_made_before_revisits_were_counted():
    old = ExtractStats(extractor="resiliparse").as_stats()
    del old["revisits"], old["revisits_by_profile"]

    assert "unchanged_revisits" not in documents_metadata(_produced(old))


def test_fetch_time_is_unaffected(tmp_path):
    # The documents around revisits keep their own record's provenance (the revisit shifts nothing).
    warc = tmp_path / "night.warc.gz"
    write_night(warc, gzip=True)
    responses = [record for record in iter_warc_records(str(warc), record_types=("response",))]

    _, documents, _ = run(tmp_path, [warc])

    assert [(doc["warc_offset"], doc["fetch_time"]) for doc in documents] == [
        (record.offset, datetime.fromisoformat(record.date).astimezone(UTC)) for record in responses
    ]
