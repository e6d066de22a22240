"""extract_to_parquet on tiny real WARC files: document fields, provenance, rejections, determinism."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from data_code.document import DOCUMENT_SCHEMA, REJECTION_SCHEMA, make_doc_id
from data_code.extract import ExtractConfig, extract_to_parquet
from data_code.warc import iter_warc_records
from tests.extract.warcs import (
    ARTICLE,
    FOOTER,
    NAV_LINKS,
    Exchange,
    foreign_response_record,
    realistic_page,
    sha1_digest,
    write_crawl_warc,
)

CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def run(tmp_path, uris, **config):
    config.setdefault("workers", 1)
    stats = extract_to_parquet(
        [str(uri) for uri in uris],
        str(tmp_path / "out" / "documents.parquet"),
        str(tmp_path / "out" / "rejections.parquet"),
        ExtractConfig(**config),
    )
    documents = pq.read_table(tmp_path / "out" / "documents.parquet")
    rejections = pq.read_table(tmp_path / "out" / "rejections.parquet")
    return stats, documents, rejections


def test_crawl_record_becomes_document_with_exact_provenance(tmp_path):
    page = realistic_page(
        lang="en-GB",
        head_extra='<meta name="robots" content="noai, noimageai"><link rel="license" href="/licence.html">',
        footer_extra=f'<a href="{CC_BY}">CC BY</a>',
    )
    warc = tmp_path / "crawl.warc.gz"
    exchange = Exchange(
        "https://News.Example.org:8443/otters?id=1", page.encode(), headers=[("X-Robots-Tag", "noindex")]
    )
    [(offset, record_id)] = write_crawl_warc(warc, [exchange])
    record = next(iter_warc_records(str(warc), record_types=("response",)))

    stats, documents, rejections = run(tmp_path, [warc])

    [doc] = documents.to_pylist()
    assert (
        doc["doc_id"]
        == make_doc_id(exchange.url, record.payload_digest)
        == make_doc_id(exchange.url, sha1_digest(page.encode()))
    )
    assert doc["url"] == exchange.url
    assert doc["domain"] == "news.example.org"
    assert doc["fetch_time"] == datetime.fromisoformat(record.date).astimezone(UTC)
    assert (doc["warc_file"], doc["warc_offset"], doc["warc_record_id"]) == (str(warc), offset, record_id)
    assert (doc["http_status"], doc["content_type"]) == (200, "text/html")
    assert doc["license"] == "https://News.Example.org:8443/licence.html"  # rel=license wins over the CC link
    assert doc["robots_meta"] == "noai,noimageai,noindex"
    assert (doc["robots"], doc["source"]) == ("allowed", "crawl")
    assert doc["title"] == "Otters return to the valley"
    assert doc["language"] == "en"
    assert ARTICLE in doc["text"]
    assert (doc["language_score"], doc["quality_score"]) == (None, None)
    assert rejections.num_rows == 0
    assert (stats.records_read, stats.documents, stats.rejected) == (1, 1, 0)
    assert (stats.languages, stats.domains, stats.extractor) == ({"en": 1}, {"news.example.org": 1}, "resiliparse")
    assert stats.chars == len(doc["text"])
    assert documents.schema.equals(DOCUMENT_SCHEMA) and rejections.schema.equals(REJECTION_SCHEMA)


def test_doc_id_is_stable_across_runs(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    write_crawl_warc(warc, [Exchange("https://example.org/a", realistic_page().encode())])
    first = run(tmp_path, [warc])[1].column("doc_id").to_pylist()
    write_crawl_warc(warc, [Exchange("https://example.org/a", realistic_page().encode())])  # new ids and dates
    assert run(tmp_path, [warc])[1].column("doc_id").to_pylist() == first


def test_licence_from_creative_commons_link_crawl_metadata_and_link_header(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    cc_page = realistic_page(footer_extra=f'<a href="{CC_BY}#deed">Some rights reserved</a>').encode()
    write_crawl_warc(
        warc,
        [
            Exchange("https://example.org/cc", cc_page),
            Exchange("https://example.org/meta", cc_page, metadata={"robots": "allowed", "license": "CC0-1.0"}),
            Exchange("https://example.org/none", realistic_page().encode()),
            Exchange(
                "https://example.org/dir/header",
                realistic_page().encode(),
                headers=[("Link", '</dir/next>; rel="next", <../terms.html>; rel="license"')],
            ),
        ],
    )
    documents = run(tmp_path, [warc])[1]
    licences = documents.column("license").to_pylist()
    assert licences == [CC_BY, "CC0-1.0", None, "https://example.org/terms.html"]


def test_foreign_warc_without_metadata_or_digest(tmp_path):
    body = realistic_page(lang="").encode()
    head = "HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\nContent-Language: de-AT, en"
    first = foreign_response_record("http://example.de/seite", "2024-03-01T12:30:45Z", head, body)
    second = foreign_response_record("http://example.de/zwei", "2024-03-01T12:31:00Z", head, body)
    warc = tmp_path / "foreign.warc"
    warc.write_bytes(first + second)

    documents = run(tmp_path, [warc])[1].to_pylist()

    assert [doc["warc_offset"] for doc in documents] == [0, len(first)]
    doc = documents[0]
    assert doc["doc_id"] == make_doc_id("http://example.de/seite", sha1_digest(body))
    assert doc["fetch_time"] == datetime(2024, 3, 1, 12, 30, 45, tzinfo=UTC)
    assert (doc["robots"], doc["source"], doc["robots_meta"], doc["license"]) == ("unknown", "warc", "", None)
    assert doc["language"] == "de"


def test_each_rejection_reason(tmp_path, monkeypatch):
    page = realistic_page().encode()
    short = b"<html><head><title>Hi</title></head><body><p>Just a line.</p></body></html>"
    garbled = b"<html><body><p>" + bytes(range(0x80, 0x100)) * 8 + b"</p></body></html>"
    exchanges = [
        Exchange("https://example.org/ok", page),
        Exchange("https://example.org/doc.pdf", b"%PDF-1.7 ...", content_type="application/pdf"),
        Exchange("https://example.org/gone", page, status="404 Not Found"),
        Exchange("https://example.org/image", b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="text/html"),
        Exchange("https://example.org/garbled", garbled),
        Exchange("https://example.org/short", short),
        Exchange("https://example.org/empty", b"<html><head><title>Nothing</title></head><body></body></html>"),
    ]
    warc = tmp_path / "crawl.warc.gz"
    write_crawl_warc(warc, exchanges)

    stats, documents, rejections = run(tmp_path, [warc])

    assert documents.column("url").to_pylist() == ["https://example.org/ok"]
    rows = rejections.to_pylist()
    assert [(row["url"], row["reason"]) for row in rows] == [
        ("https://example.org/doc.pdf", "not_html"),
        ("https://example.org/gone", "non_200"),
        ("https://example.org/image", "binary_content"),
        ("https://example.org/garbled", "undecodable"),
        ("https://example.org/short", "too_short"),
        ("https://example.org/empty", "empty_text"),
    ]
    assert {row["stage"] for row in rows} == {"extract"} and {row["doc_id"] for row in rows} == {None}
    assert rows[1]["detail"] == "HTTP status 404"
    assert rows[4]["detail"] == "12 chars < min_text_chars=200" and rows[4]["score"] == 12.0
    assert stats.rejections_by_reason == {
        "binary_content": 1,
        "empty_text": 1,
        "non_200": 1,
        "not_html": 1,
        "too_short": 1,
        "undecodable": 1,
    }
    assert (stats.records_read, stats.documents, stats.rejected) == (7, 1, 6)


def test_engine_exception_is_an_extraction_failed_rejection(tmp_path, monkeypatch):
    def broken_engine(*args):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr("data_code.extract.record.main_text", broken_engine)
    warc = tmp_path / "crawl.warc.gz"
    write_crawl_warc(warc, [Exchange("https://example.org/x", realistic_page().encode())])
    [row] = run(tmp_path, [warc])[2].to_pylist()
    assert (row["reason"], row["detail"]) == ("extraction_failed", "resiliparse: RuntimeError: parser exploded")


@pytest.mark.parametrize("cut", [20, 200], ids=["inside-gzip-header", "inside-record"])
def test_truncated_warc_keeps_earlier_documents_and_names_file_and_offset(tmp_path, cut):
    urls = [f"https://example.org/{name}" for name in ("one", "two", "three")]
    warc = tmp_path / "cut.warc.gz"
    offsets = write_crawl_warc(warc, [Exchange(url, realistic_page().encode()) for url in urls])
    third = offsets[2][0]
    warc.write_bytes(warc.read_bytes()[: third + cut])
    intact = tmp_path / "intact.warc.gz"
    write_crawl_warc(intact, [Exchange("https://example.org/after", realistic_page().encode())])

    stats, documents, rejections = run(tmp_path, [warc, intact])

    assert documents.column("url").to_pylist() == urls[:2] + ["https://example.org/after"]
    [row] = rejections.to_pylist()
    assert row["reason"] == "corrupt_warc"
    assert row["detail"].startswith(f"{warc}: corrupt or truncated WARC record at byte offset {third}: ")
    assert (stats.records_read, stats.rejections_by_reason) == (3, {"corrupt_warc": 1})


def test_workers_do_not_change_the_output(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    exchanges = [
        Exchange(f"https://site{i % 3}.example/{i}", realistic_page(title=f"Page {i}").encode()) for i in range(9)
    ]
    exchanges[4] = Exchange("https://site1.example/404", b"", status="404 Not Found")
    write_crawl_warc(warc, exchanges)
    _, one_docs, one_rejections = run(tmp_path / "one", [warc], workers=1, batch_records=2)
    _, two_docs, two_rejections = run(tmp_path / "two", [warc], workers=2, batch_records=2)
    assert one_docs.num_rows == 8 and one_docs.equals(two_docs)
    assert one_rejections.num_rows == 1 and one_rejections.equals(two_rejections)


def test_zero_records_give_empty_but_valid_parquet_files(tmp_path):
    warc = tmp_path / "empty.warc.gz"
    write_crawl_warc(warc, [])  # warcinfo only
    for uris in ([warc], []):
        stats, documents, rejections = run(tmp_path, uris)
        assert (documents.num_rows, rejections.num_rows, stats.records_read) == (0, 0, 0)
        assert documents.schema.equals(DOCUMENT_SCHEMA) and rejections.schema.equals(REJECTION_SCHEMA)


def test_missing_warc_raises_before_writing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.warc.gz"):
        run(tmp_path, [tmp_path / "nope.warc.gz"])
    assert not os.path.exists(tmp_path / "out" / "documents.parquet")


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_both_extractors_keep_the_article_and_drop_navigation(tmp_path, extractor):
    warc = tmp_path / "crawl.warc.gz"
    write_crawl_warc(warc, [Exchange("https://example.org/otters", realistic_page().encode())])
    [doc] = run(tmp_path, [warc], extractor=extractor)[1].to_pylist()
    assert ARTICLE in " ".join(doc["text"].split())
    for boilerplate in (*NAV_LINKS, FOOTER, "Related stories", "Beavers build a dam"):
        assert boilerplate not in doc["text"], (extractor, boilerplate)


def test_plain_text_response_is_a_document(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    body = (ARTICLE + "\n\n\n\n" + ARTICLE).encode()
    headers = [("Content-Language", "en-US"), ("X-Robots-Tag", "googlebot: noai")]
    write_crawl_warc(warc, [Exchange("https://example.org/notes.txt", body, "text/plain", headers=headers)])
    [doc] = run(tmp_path, [warc])[1].to_pylist()
    assert (doc["title"], doc["text"], doc["language"]) == (None, ARTICLE + "\n\n" + ARTICLE, "en")
    assert (doc["content_type"], doc["robots_meta"]) == ("text/plain", "noai")
