"""Reading and writing standard WARC files (warcio), with errors that name the file and the byte offset.

Readers check every record (complete, digests as recorded, gzip members whole) and yield each valid record before
a corruption, then raise CorruptWarcError naming where the damaged record starts, so callers keep what was good.
A record whose own bytes are damaged (digest mismatch, undecodable payload) can instead be reported and skipped.
Someone else's bytes reach an error message only as a short escaped excerpt.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import fsspec
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from data_code.files import EXCERPT_CHARS, excerpt

_GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_CHUNK = 1 << 20  # output bytes inflated per step while checking gzip members: memory stays bounded
# warcio raises AttributeError/TypeError on some headers cut short, besides its own errors.
_READ_ERRORS = (ArchiveLoadFailed, zlib.error, EOFError, OSError, ValueError, AttributeError, TypeError)


class _ExcerptLongMessages(logging.Filter):
    """warcio logs a WARC-Target-URI it had to repair as it found it (any length, any bytes): log an excerpt."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > 2 * EXCERPT_CHARS or not message.isprintable():
            record.msg, record.args = excerpt(message, 2 * EXCERPT_CHARS), None
        return True


logging.getLogger("warcio.recordloader").addFilter(_ExcerptLongMessages())


class CorruptWarcError(ValueError):
    """A WARC file is truncated or corrupt in the record that starts at `offset`; records before it were valid."""

    def __init__(self, uri: str, offset: int, cause: str):
        super().__init__(f"{uri}: corrupt or truncated WARC record at byte offset {offset}: {cause}")
        self.uri, self.offset, self.cause = uri, offset, cause


class NotWarcError(ValueError):
    """A file holds no valid WARC record at all: an HTML page, an empty file, an ARC file, a broken first record."""

    def __init__(self, uri: str, reason: str):
        super().__init__(f"{uri}: not a WARC file (no valid WARC record): {reason}")
        self.uri, self.reason = uri, reason


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


DamagedRecordHandler = Callable[[CorruptWarcError], None]


def iter_warc_records(
    uri: str,
    *,
    record_types: tuple[str, ...] | None = None,
    name: str | None = None,
    on_damaged_record: DamagedRecordHandler | None = None,
) -> Iterator[WarcRecord]:
    """Yield the records of the WARC file at `uri` (local path or fsspec URL, .warc or .warc.gz).

    `name` is what errors and records call the file (default `uri`: e.g. the URL a local copy was fetched from).
    Records of `record_types` (default all) have WARC-Block-Digest and WARC-Payload-Digest checked when present;
    one whose own bytes are damaged goes to `on_damaged_record` and is skipped (without a handler, it raises).
    Raises FileNotFoundError when the file does not exist, NotWarcError when it holds no valid WARC record, and
    CorruptWarcError (after yielding every valid record before it) when the file itself breaks: a record cannot
    be parsed, a gzip member is damaged, or the file ends inside a record (truncated download or copy).
    """
    with fsspec.open(uri, "rb") as stream:
        scan = _RecordScan(name or uri, stream, record_types, on_damaged_record or _raise)
        yield from scan.records()


def _raise(error: CorruptWarcError) -> None:
    raise error


class _RecordScan:
    """One pass over the records of an open WARC file, counting those read whole: a file whose very first record
    cannot be read is not a damaged WARC but something else (NotWarcError)."""

    def __init__(self, name: str, stream, record_types: tuple[str, ...] | None, on_damaged: DamagedRecordHandler):
        self.name, self.stream, self.record_types, self.on_damaged = name, stream, record_types, on_damaged
        self.reader = _GzipMemberCheck(stream) if _starts_with_gzip(stream) else None
        self.iterator = _StrictArchiveIterator(self.reader or stream, check_digests=True)
        self.parsed = 0  # records read whole, damaged or not

    def records(self) -> Iterator[WarcRecord]:
        """Every valid record, then the check that nothing unreadable follows the last one."""
        try:
            yield from self._records()
        except NotWarcError:
            raise
        except CorruptWarcError as error:
            if not self.parsed:
                raise NotWarcError(self.name, self._not_warc_reason(error.cause)) from error
            raise
        except _READ_ERRORS as error:
            if isinstance(error, FileNotFoundError):
                raise
            damage = self._damage()  # where zlib saw the damage is more precise than warcio's parse error
            if damage is None or damage[0] > self.iterator.offset:
                damage = (self.iterator.offset, _describe(error))
            offset, cause = damage
            if not self.parsed:
                raise NotWarcError(self.name, self._not_warc_reason(cause)) from error
            raise CorruptWarcError(self.name, offset, cause) from error
        if not self.parsed:
            raise NotWarcError(self.name, "the file is empty" if _size(self.stream) == 0 else "no record in it")
        _check_no_trailing_bytes(self.name, self.iterator.offset, self.stream)

    def _records(self) -> Iterator[WarcRecord]:
        for record in self.iterator:
            # iterator.offset is where this record starts; get_record_offset() would first consume the
            # record's content, leaving an empty payload to read.
            offset = self.iterator.offset
            self._check_members(offset)  # a damaged member can parse as anything: say so first
            if not self.parsed and record.format != "warc":
                raise NotWarcError(self.name, self._not_warc_reason("its first record is ARC (or not an archive)"))
            wanted = not self.record_types or record.rec_type in self.record_types
            item, problem = _read_record(self.name, offset, record) if wanted else (None, None)
            self.iterator.read_to_end()
            _check_complete(self.name, offset, self.iterator, record)
            self._check_members(offset)
            self.parsed += 1
            problem = problem or (_digest_problem(record) if wanted else None)
            if problem:
                self.on_damaged(CorruptWarcError(self.name, offset, problem))
            elif item is not None:
                yield item
        self._check_members(None)

    def _damage(self) -> tuple[int, str] | None:
        return self.reader.damage if self.reader is not None else None

    def _check_members(self, offset: int | None) -> None:
        """Raise for a damaged gzip member that starts at or before `offset` (None: anywhere, the file is read)."""
        if self.reader is not None and offset is None:
            self.reader.finish()
        damage = self._damage()
        if damage is not None and (offset is None or damage[0] <= offset):
            raise CorruptWarcError(self.name, *damage)

    def _not_warc_reason(self, cause: str) -> str:
        self.stream.seek(0)
        return f"{cause}; the file starts with {excerpt(_leading_bytes(self.stream.read(4096)), 40)}"


class _StrictArchiveIterator(ArchiveIterator):
    """warcio's ArchiveIterator, except that a record not followed by the blank lines that end it (a wrong
    Content-Length, bytes lost or added) is flagged in `misaligned` for the reader to refuse, where warcio prints
    the line it found, someone else's bytes and all, to stderr (and so into the run's logs) and goes on."""

    misaligned = False

    def _consume_blanklines(self):
        # warcio 1.x's own loop, with the stderr warning replaced by the flag.
        empty_size, first_line = 0, True
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty_size
            if not line.rstrip() or first_line:
                empty_size += len(line)
                self.misaligned = self.misaligned or bool(line.rstrip())
                first_line = False
                continue
            return line, empty_size


class _GzipMemberCheck:
    """The raw .warc.gz stream as warcio reads it, while inflating the same bytes member by member (zlib checks
    each member's CRC and length) to remember where the first damaged member starts.

    warcio cannot tell this itself: after an inflate error it goes on with empty data, so it hands out a member
    whose CRC fails as if it were whole and reports trouble a kilobyte or more past the damage.
    """

    def __init__(self, stream):
        self._stream = stream
        self._position = stream.tell()
        self._member_start = self._position
        self._inflater = None  # of the member being read; None between members
        self.damage: tuple[int, str] | None = None  # (where the first damaged member starts, what is wrong)

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if self.damage is None:
            self._inflate(data, self._position)
        self._position += len(data)
        return data

    def finish(self) -> None:
        """Note a last member that the file ends inside (call once warcio has read to the end)."""
        if self.damage is None and self._inflater is not None:
            self.damage = (self._member_start, "gzip member ends before its end marker")

    def _inflate(self, data: bytes, position: int) -> None:
        while data:
            if self._inflater is None:
                self._member_start, self._inflater = position, zlib.decompressobj(31)
            try:
                self._inflater.decompress(data, _INFLATE_CHUNK)
            except zlib.error as error:
                self.damage = (self._member_start, f"gzip data is damaged ({error})")
                return
            rest = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._inflater = None
            position += len(data) - len(rest)
            data = rest


def _starts_with_gzip(stream) -> bool:
    start = stream.read(len(_GZIP_MAGIC))
    stream.seek(0)
    return start == _GZIP_MAGIC


def _leading_bytes(head: bytes) -> bytes:
    """The first bytes of a file as text would show them: inflated when it is gzip (as far as that goes)."""
    if not head.startswith(_GZIP_MAGIC):
        return head
    try:
        return zlib.decompressobj(31).decompress(head, 256) or head
    except zlib.error:
        return head


def _size(stream) -> int:
    return stream.seek(0, io.SEEK_END)


def _describe(error: Exception) -> str:
    """A warcio/zlib failure in words; warcio's own message quotes the bytes it could not parse, so only an
    excerpt of it is kept."""
    if isinstance(error, ArchiveLoadFailed) and "Unknown archive format" in str(error):
        return "no WARC record header where a record should start"
    return f"{type(error).__name__}: {excerpt(str(error))}"


def _check_complete(uri: str, offset: int, iterator: _StrictArchiveIterator, record) -> None:
    # warcio stops quietly at a truncated record: the block is shorter than its Content-Length, the record
    # header never ended, or the gzip member has no end marker. Each means the file was cut here.
    if not record.rec_type or record.rec_headers.get_header("Content-Length") is None:
        raise CorruptWarcError(uri, offset, "record header is incomplete")
    if iterator.misaligned:
        raise CorruptWarcError(uri, offset, "record does not end where its Content-Length says (bytes lost or added)")
    missing = getattr(record.raw_stream, "limit", 0)
    if missing > 0:
        raise CorruptWarcError(uri, offset, f"record block is {missing} bytes shorter than its Content-Length")
    decompressor = iterator.reader.decompressor if iterator.reader else None
    if decompressor is not None and not decompressor.eof:
        raise CorruptWarcError(uri, offset, "gzip member ends before its end marker")


def _check_no_trailing_bytes(uri: str, end: int, stream) -> None:
    # Bytes after the last record that warcio could not decode at all (a gzip member cut in its first block).
    size = _size(stream)
    if end < size:
        raise CorruptWarcError(uri, end, f"{size - end} bytes after the last complete record cannot be read")


def _digest_problem(record) -> str | None:
    """Which recorded digest the record's bytes fail (warcio checks them as the record is read), or None."""
    checker = record.digest_checker
    if checker is None or checker.passed is not False:
        return None
    kinds = [kind for kind in ("block", "payload") if any(kind in problem for problem in checker.problems)]
    names = " and ".join(f"WARC-{kind.title()}-Digest" for kind in kinds) or "a recorded digest"
    return f"{names} does not match the record's bytes (damaged in storage or transfer)"


def _read_record(uri: str, offset: int, record) -> tuple[WarcRecord | None, str | None]:
    """The record, or (None, why) when its payload does not decode (the file itself may be fine)."""
    headers = record.rec_headers
    http = record.http_headers
    try:
        payload = record.content_stream().read()
    except (zlib.error, EOFError) as error:  # content-encoding (or chunking) that does not decode
        return None, f"unreadable payload: {type(error).__name__}: {excerpt(str(error))}"
    status = None
    if http is not None and record.rec_type in ("response", "revisit"):
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
    item = WarcRecord(
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
    return item, None


class WarcFileWriter:
    """Append request/response/metadata records to one gzip WARC file; returns each record's offset."""

    def __init__(self, stream: io.BufferedIOBase, *, filename: str, software: str = "lmforge"):
        self._stream = stream
        self._writer = WARCWriter(stream, gzip=True, warc_version="1.1")  # 1.1: WARC-Date to the microsecond
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
        date: datetime | None = None,
    ) -> tuple[int, str]:
        """Write response (+ request and metadata) records for one fetch; return (response offset, record id).

        `date` is when the capture began (the request was sent), every record's WARC-Date; now when not given.

        `body` is the payload exactly as it came off the wire after transfer decoding (content-encoding kept),
        so the WARC is faithful and readers decode it the standard way.
        """
        http = StatusAndHeaders(status_line, response_headers, protocol="HTTP/1.1")
        moment = datetime_to_iso_date(
            (date or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), use_micros=True
        )
        dated = {"WARC-Date": moment}
        warc_headers = {**dated, "WARC-IP-Address": ip} if ip else dated
        response = self._writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
        )
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        offset = self._stream.tell()
        self._writer.write_record(response)
        request_http = StatusAndHeaders(f"GET {_request_target(url)} HTTP/1.1", request_headers, is_http_request=True)
        request = self._writer.create_warc_record(
            url, "request", http_headers=request_http, warc_headers_dict={**dated, "WARC-Concurrent-To": response_id}
        )
        self._writer.write_record(request)
        if metadata:
            body_text = "".join(f"{key}: {value}\n" for key, value in metadata.items()).encode()
            meta = self._writer.create_warc_record(
                url,
                "metadata",
                payload=io.BytesIO(body_text),
                warc_content_type="application/warc-fields",
                warc_headers_dict={**dated, "WARC-Concurrent-To": response_id},
            )
            self._writer.write_record(meta)
        return offset, response_id


def _request_target(url: str) -> str:
    """The request-target of a GET for `url`: path and query ('http://example.com' -> '/')."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
