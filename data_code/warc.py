"""Reading and writing standard WARC files (warcio), with errors that name the file and the byte offset.

Readers yield every valid record before a corruption, then raise CorruptWarcError, so callers can keep what was
good and report exactly where the file broke.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import fsspec
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


class CorruptWarcError(ValueError):
    """A WARC file is truncated or corrupt at `offset`; records before it were valid."""

    def __init__(self, uri: str, offset: int, cause: str):
        super().__init__(f"{uri}: corrupt or truncated WARC record at byte offset {offset}: {cause}")
        self.uri, self.offset, self.cause = uri, offset, cause


@dataclass
class WarcRecord:
    """One WARC record, read fully into memory (records are capped in size by the crawler)."""

    uri: str  # the WARC file
    offset: int  # byte offset of the record in the (compressed) file
    record_type: str  # response | request | metadata | warcinfo | resource | revisit
    target_uri: str | None
    record_id: str | None
    date: str | None  # WARC-Date, ISO 8601
    payload_digest: str | None
    concurrent_to: str | None
    http_status: int | None
    http_headers: list[tuple[str, str]]
    payload: bytes  # the HTTP body with transfer- and content-encoding removed

    def header(self, name: str) -> str | None:
        """First HTTP header called `name` (case-insensitive), or None."""
        name = name.lower()
        return next((value for key, value in self.http_headers if key.lower() == name), None)


def iter_warc_records(uri: str, *, record_types: tuple[str, ...] | None = None) -> Iterator[WarcRecord]:
    """Yield the records of the WARC file at `uri` (local path or fsspec URL, .warc or .warc.gz).

    Raises FileNotFoundError when the file does not exist and CorruptWarcError (after yielding every valid record
    before it) when a record cannot be read, or the file ends inside a record (truncated download or copy).
    """
    with fsspec.open(uri, "rb") as stream:
        iterator = ArchiveIterator(stream, no_record_parse=False, arc2warc=True)
        try:
            for record in iterator:
                # iterator.offset is where this record starts; get_record_offset() would first consume the
                # record's content, leaving an empty payload to read.
                offset = iterator.offset
                wanted = not record_types or record.rec_type in record_types
                item = _read_record(uri, offset, record) if wanted else None
                iterator.read_to_end()
                _check_complete(uri, offset, iterator, record)
                if item is not None:
                    yield item
            _check_no_trailing_bytes(uri, iterator.offset, stream)
        except CorruptWarcError:
            raise
        # warcio raises AttributeError/TypeError on some headers cut short, besides its own errors.
        except (ArchiveLoadFailed, zlib.error, EOFError, OSError, ValueError, AttributeError, TypeError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise CorruptWarcError(uri, iterator.offset, f"{type(error).__name__}: {error}") from error


def _check_complete(uri: str, offset: int, iterator: ArchiveIterator, record) -> None:
    # warcio stops quietly at a truncated record: the block is shorter than its Content-Length, the record
    # header never ended, or the gzip member has no end marker. Each means the file was cut here.
    if not record.rec_type or record.rec_headers.get_header("Content-Length") is None:
        raise CorruptWarcError(uri, offset, "record header is incomplete")
    missing = getattr(record.raw_stream, "limit", 0)
    if missing > 0:
        raise CorruptWarcError(uri, offset, f"record block is {missing} bytes shorter than its Content-Length")
    decompressor = iterator.reader.decompressor if iterator.reader else None
    if decompressor is not None and not decompressor.eof:
        raise CorruptWarcError(uri, offset, "gzip member ends before its end marker")


def _check_no_trailing_bytes(uri: str, end: int, stream) -> None:
    # Bytes after the last record that warcio could not decode at all (a gzip member cut in its first block).
    size = stream.seek(0, io.SEEK_END)
    if end < size:
        raise CorruptWarcError(uri, end, f"{size - end} bytes after the last complete record cannot be read")


def _read_record(uri: str, offset: int, record) -> WarcRecord:
    headers = record.rec_headers
    http = record.http_headers
    try:
        payload = record.content_stream().read()
    except (zlib.error, EOFError) as error:  # truncated body, or content-encoding that does not decode
        raise CorruptWarcError(uri, offset, f"unreadable payload: {error}") from error
    status = None
    if http is not None and record.rec_type in ("response", "revisit"):
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
    return WarcRecord(
        uri=uri,
        offset=offset,
        record_type=record.rec_type,
        target_uri=headers.get_header("WARC-Target-URI"),
        record_id=headers.get_header("WARC-Record-ID"),
        date=headers.get_header("WARC-Date"),
        payload_digest=headers.get_header("WARC-Payload-Digest"),
        concurrent_to=headers.get_header("WARC-Concurrent-To"),
        http_status=status,
        http_headers=list(http.headers) if http is not None else [],
        payload=payload,
    )


class WarcFileWriter:
    """Append request/response/metadata records to one gzip WARC file; returns each record's offset."""

    def __init__(self, stream: io.BufferedIOBase, *, filename: str, software: str = "lmforge"):
        self._stream = stream
        self._writer = WARCWriter(stream, gzip=True)
        info = self._writer.create_warcinfo_record(filename, {"software": software, "format": "WARC/1.1"})
        self._writer.write_record(info)

    def write_exchange(
        self,
        url: str,
        *,
        request_headers: list[tuple[str, str]],
        status_line: str,
        response_headers: list[tuple[str, str]],
        body: bytes,
        metadata: dict[str, str] | None = None,
        ip: str | None = None,
    ) -> tuple[int, str]:
        """Write response (+ request and metadata) records for one fetch; return (response offset, record id).

        `body` is the payload exactly as it came off the wire after transfer decoding (content-encoding kept),
        so the WARC is faithful and readers decode it the standard way.
        """
        http = StatusAndHeaders(status_line, response_headers, protocol="HTTP/1.1")
        warc_headers = {"WARC-IP-Address": ip} if ip else None
        response = self._writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
        )
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        offset = self._stream.tell()
        self._writer.write_record(response)
        request_http = StatusAndHeaders(f"GET {_request_target(url)} HTTP/1.1", request_headers, is_http_request=True)
        request = self._writer.create_warc_record(
            url, "request", http_headers=request_http, warc_headers_dict={"WARC-Concurrent-To": response_id}
        )
        self._writer.write_record(request)
        if metadata:
            body_text = "".join(f"{key}: {value}\n" for key, value in metadata.items()).encode()
            meta = self._writer.create_warc_record(
                url,
                "metadata",
                payload=io.BytesIO(body_text),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Concurrent-To": response_id},
            )
            self._writer.write_record(meta)
        return offset, response_id


def _request_target(url: str) -> str:
    """The request-target of a GET for `url`: path and query ('http://example.com' -> '/')."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
