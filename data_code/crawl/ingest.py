"""Ingest WARC files someone else crawled (e.g. Common Crawl segments) into the same layout as a crawl.

from data_code.crawl import ingest_warcs
summary = ingest_warcs(["s3://commoncrawl/crawl-data/.../file.warc.gz"], out_dir)

Sources are read like every file someone names (remote.py): allowed schemes only, http(s) through the crawler's
address guard. Every record is checked (digests, gzip members, completeness) on the way in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from data_code.crawl.config import SourcePolicy
from data_code.crawl.records import CrawlSummary, FetchRow, WarcSink, summarize, write_fetch_log
from data_code.crawl.remote import check_source, local_copy, source_exists
from data_code.warc import CorruptWarcError, WarcRecord, iter_warc_records

FIELD = "warc_sources"  # what errors call a source (CrawlConfig's field)

# The payload warcio hands back is already de-chunked and content-decoded, so these headers no longer hold.
_STALE_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


def ingest_warcs(
    uris: list[str],
    out_dir: Path,
    *,
    warc_prefix: str = "ingest",
    warc_max_bytes: int = 1_000_000_000,
    policy: SourcePolicy | None = None,
) -> CrawlSummary:
    """Re-write the response records of `uris` (local paths or fsspec URLs) into out_dir/warc/ + fetches.parquet.

    `policy` (default SourcePolicy(): local files, s3, gs, and public http(s) hosts) says how sources may be read.
    A damaged record (digest mismatch) becomes a `corrupt_warc` row naming the file and the record's offset, and
    the rest of the file is read; a corrupt or truncated file keeps every valid record before the damage and adds
    such a row (each also in `errors`). Before anything is written, raises ValueError naming a source whose scheme
    or address is refused and FileNotFoundError naming a missing file; later, NotWarcError names a source with no
    valid WARC record, FileNotFoundError an http(s) source that answered 404, SourceFetchError a failed download.
    """
    policy = policy or SourcePolicy()
    check_warc_sources(uris, policy)
    started, out_dir = time.monotonic(), Path(out_dir)
    rows, warc_files, errors = ingest_rows(
        uris, out_dir, warc_prefix=warc_prefix, warc_max_bytes=warc_max_bytes, policy=policy
    )
    write_fetch_log(rows, out_dir)
    return summarize(rows, warc_files, time.monotonic() - started, errors)


def check_warc_sources(uris: list[str], policy: SourcePolicy) -> None:
    """Before any work: refuse a source whose scheme or http(s) address the policy does not allow (ValueError,
    checked without connecting) and raise FileNotFoundError naming every missing (non-http) file."""
    for uri in uris:
        check_source(uri, policy, field=FIELD)
    missing = [uri for uri in uris if not source_exists(uri, policy, field=FIELD)]
    if missing:
        raise FileNotFoundError(f"WARC file not found: {', '.join(missing)}")


def ingest_rows(
    uris: list[str], out_dir: Path, *, warc_prefix: str, warc_max_bytes: int, policy: SourcePolicy
) -> tuple[list[FetchRow], list[str], list[str]]:
    """Re-write `uris` into out_dir/warc/; return (fetch-log rows, WARC files, corruption messages), no log."""
    sink = WarcSink(out_dir, warc_prefix, warc_max_bytes)
    rows: list[FetchRow] = []
    errors: list[str] = []

    def reject(error: CorruptWarcError) -> None:
        errors.append(str(error))
        rows.append(FetchRow(url=error.uri, depth=0, outcome="corrupt_warc", detail=str(error)))

    try:
        for uri in uris:
            with local_copy(uri, policy, field=FIELD) as readable:
                try:
                    for response, request in _exchanges(readable, uri, reject):
                        rows.append(_rewrite(sink, uri, response, request))
                except CorruptWarcError as error:
                    reject(error)
    finally:
        sink.close()
    return rows, sink.files, errors


def _exchanges(readable: str, uri: str, reject) -> Iterator[tuple[WarcRecord, WarcRecord | None]]:
    """(response, its request or None) for each HTTP response record of `uri` (read from `readable`), whether
    requests come before responses (Common Crawl) or after them with WARC-Concurrent-To (lmforge). A damaged
    record goes to `reject`; on corruption of the file, yields what it has, then raises.
    """
    requests: dict[str | None, WarcRecord] = {}  # requests seen before their response, by target URI
    pending: WarcRecord | None = None  # a response waiting to see whether its request follows it
    records = iter_warc_records(readable, record_types=("request", "response"), name=uri, on_damaged_record=reject)
    try:
        for record in records:
            if record.record_type == "request":
                if pending is not None and record.concurrent_to == pending.record_id:
                    yield pending, record
                    pending = None
                else:
                    requests[record.target_uri] = record
            else:
                if pending is not None:
                    yield pending, requests.pop(pending.target_uri, None)
                pending = record if record.http_status is not None else None  # skip non-HTTP (dns:) records
    except CorruptWarcError:
        if pending is not None:
            yield pending, requests.pop(pending.target_uri, None)
        raise
    if pending is not None:
        yield pending, requests.pop(pending.target_uri, None)


def _rewrite(sink: WarcSink, source: str, response: WarcRecord, request: WarcRecord | None) -> FetchRow:
    """Write one response (+ request + metadata) into the sink and return its fetch-log row."""
    body = response.payload
    headers = [(key, value) for key, value in response.http_headers if key.lower() not in _STALE_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    url = response.target_uri or ""
    captured = _parse_date(response.date)  # the source's capture time stays the record's WARC-Date
    warc_file, offset = sink.write(
        url,
        request_headers=request.http_headers if request is not None else [],
        status_line=f"{response.http_status} {_phrase(response.http_status)}".strip(),
        response_headers=headers,
        body=body,
        metadata={
            "robots": "unknown",
            "fetch-outcome": "ok",
            "source-warc": source,
            "source-offset": str(response.offset),
        },
        date=captured,
    )
    return FetchRow(
        url=url,
        final_url=url,
        depth=0,
        http_status=response.http_status,
        detail=f"ingested from {source} at offset {response.offset}",
        content_type=response.header("content-type"),
        bytes_raw=len(body),
        bytes_decoded=len(body),
        fetched_at=captured,
        warc_file=warc_file,
        warc_offset=offset,
        robots_decision="unknown",
    )


def _phrase(status: int | None) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _parse_date(value: str | None) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        parsed = None
    if parsed is None:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
