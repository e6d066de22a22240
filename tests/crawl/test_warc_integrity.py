"""WARC integrity on ingest: digests are verified, damage is reported at the start of the damaged record with a
short escaped detail, and a source without any valid WARC record is an error, never an empty success."""

from __future__ import annotations

import gzip

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from data_code.crawl import ingest_warcs
from data_code.warc import CorruptWarcError, NotWarcError, iter_warc_records
from tests.crawl.helpers import fast_config, links_page, run_crawl

TEXT = "<p>" + " ".join(f"word{n}" for n in range(800)) + "</p>"  # ~2 KB gzip members for the responses


@pytest.fixture
def crawled_warc(server, tmp_path):
    """A real WARC file the crawler wrote: three pages, one gzip member per record."""
    server.page("/", links_page("/a", "/b", extra=TEXT))
    server.page("/a", links_page(extra=TEXT))
    server.page("/b", links_page(extra=TEXT))
    out = tmp_path / "crawl"
    out.mkdir()
    summary, _ = run_crawl(fast_config(server.url("/")), out)
    assert summary.pages_fetched == 3
    return out / summary.warc_files[0]


def _records(path) -> list[tuple[int, str, str | None]]:
    """(offset, type, target URI) of every record of an intact WARC, as warcio itself reads them."""
    with open(path, "rb") as stream:
        iterator = ArchiveIterator(stream)
        found = []
        for record in iterator:
            found.append((iterator.offset, record.rec_type, record.rec_headers.get_header("WARC-Target-URI")))
            iterator.read_to_end()
    return found


def _ingest(path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    summary = ingest_warcs([str(path)], out)
    return summary, pq.read_table(out / summary.fetch_log).to_pylist()


def test_a_flipped_byte_in_an_uncompressed_warc_rejects_only_that_record(crawled_warc, tmp_path):
    plain = tmp_path / "plain.warc"
    plain.write_bytes(gzip.decompress(crawled_warc.read_bytes()))  # every member, concatenated: a plain WARC
    responses = [(offset, url) for offset, kind, url in _records(plain) if kind == "response"]
    (first, _), (victim, victim_url), (_, last_url) = responses
    data = bytearray(plain.read_bytes())
    body = data.index(b"<p>Hello</p>", victim)  # inside the victim's HTTP body, not its headers
    data[body + 3] ^= 0x20  # 'H' -> 'h': same length, so only the digests can tell
    plain.write_bytes(bytes(data))

    summary, rows = _ingest(plain, tmp_path)
    assert summary.pages_fetched == 2 and summary.failures_by_reason == {"corrupt_warc": 1}
    [corrupt] = [row for row in rows if row["outcome"] == "corrupt_warc"]
    assert corrupt["url"] == str(plain)
    assert corrupt["detail"].startswith(f"{plain}: corrupt or truncated WARC record at byte offset {victim}: ")
    assert "WARC-Block-Digest" in corrupt["detail"] and summary.errors == [corrupt["detail"]]
    assert victim_url not in {row["url"] for row in rows if row["outcome"] == "ok"}
    assert last_url in {row["url"] for row in rows if row["outcome"] == "ok"}  # the records after it are kept

    with pytest.raises(CorruptWarcError) as error:  # without a handler, the reader stops there
        list(iter_warc_records(str(plain)))
    assert error.value.offset == victim and first < victim


def test_garbage_inside_a_gzip_member_names_the_damaged_records_offset(crawled_warc, tmp_path):
    records = _records(crawled_warc)
    responses = [index for index, (_, kind, _) in enumerate(records) if kind == "response"]
    victim, next_record = records[responses[1]][0], records[responses[1] + 1][0]
    data = crawled_warc.read_bytes()
    garbage = b"GARBAGE \x1b[31m\x00 " * 30  # text warcio would otherwise quote, ~500 bytes of it
    middle = (victim + next_record - len(garbage)) // 2
    assert victim < middle and middle + len(garbage) < next_record  # inside the victim's gzip member
    damaged = tmp_path / "damaged.warc.gz"
    damaged.write_bytes(data[:middle] + garbage + data[middle + len(garbage) :])

    summary, rows = _ingest(damaged, tmp_path)
    assert [row["outcome"] for row in rows] == ["ok", "corrupt_warc"]  # the page before the damage is kept
    detail = rows[1]["detail"]
    assert detail.startswith(f"{damaged}: corrupt or truncated WARC record at byte offset {victim}: ")
    assert detail.isprintable() and "GARBAGE" not in detail and len(detail) < 300


def test_garbage_between_records_of_a_plain_warc_is_quoted_short_and_escaped(crawled_warc, tmp_path):
    plain = tmp_path / "plain.warc"
    data = gzip.decompress(crawled_warc.read_bytes())
    third = [offset for offset, kind, _ in _records_of_bytes(data, tmp_path) if kind == "response"][2]
    plain.write_bytes(data[:third] + b"\x1b[2J<script>" + b"A" * 500 + b"\r\n" + data[third:])

    summary, rows = _ingest(plain, tmp_path)
    assert summary.pages_fetched == 2 and rows[-1]["outcome"] == "corrupt_warc"
    detail = rows[-1]["detail"]
    assert f"byte offset {third}: " in detail
    assert detail.isprintable() and "\\x1b" in detail  # the escape sequence is shown escaped, not sent
    assert "A" * 61 not in detail and len(detail) < 300


def _records_of_bytes(data: bytes, tmp_path):
    path = tmp_path / "intact.warc"
    path.write_bytes(data)
    return _records(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("page.warc.gz", b"<!doctype html><html><body>" + b"Welcome! " * 300 + b"</body></html>\n"),
        ("empty.warc.gz", b""),
        ("empty.warc", b""),
        ("arc.warc.gz", b"filedesc://crawl.arc 0.0.0.0 20240101000000 text/plain 10\n1 0 test\n\n"),
        ("gzipped-page.warc.gz", gzip.compress(b"<html><body>hello</body></html>\n")),
        ("blank-lines.warc", b"\r\n\r\n\r\n"),
    ],
)
def test_a_source_without_any_valid_warc_record_is_an_error_naming_the_file(name, content, tmp_path):
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NotWarcError) as error:
        ingest_warcs([str(source)], out)
    message = str(error.value)
    assert message.startswith(f"{source}: not a WARC file (no valid WARC record)")
    assert isinstance(error.value, ValueError) and message.isprintable()
    assert "Welcome! " * 8 not in message and len(message) < 400


def test_a_warc_the_crawler_wrote_reads_back_whole_with_digests_checked(crawled_warc, tmp_path):
    damaged: list[CorruptWarcError] = []
    records = list(iter_warc_records(str(crawled_warc), on_damaged_record=damaged.append))
    assert damaged == [] and [r.offset for r in records] == [offset for offset, _, _ in _records(crawled_warc)]
    assert all(
        r.payload_digest and r.payload_digest.startswith("sha1:") for r in records if r.record_type == "response"
    )
