"""What a crawl leaves behind: the fetch log (one Parquet row per URL attempted), WARC files, and a summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_code.document import domain_of
from data_code.warc import WarcFileWriter

FETCH_LOG_NAME = "fetches.parquet"

FETCH_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),  # normalized URL as queued (for ingest: the target URI)
        pa.field("final_url", pa.string()),  # after redirects
        pa.field("depth", pa.int32(), nullable=False),  # link hops from a seed (0 = seed)
        pa.field("http_status", pa.int32()),  # last status received; null when no response came
        pa.field("outcome", pa.string(), nullable=False),  # "ok" or a failure reason slug (errors.FAILURE_REASONS)
        pa.field("detail", pa.string()),  # human-readable reason
        pa.field("content_type", pa.string()),
        pa.field("bytes_raw", pa.int64()),  # body as sent (content-encoded)
        pa.field("bytes_decoded", pa.int64()),  # body after content-decoding
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("elapsed_s", pa.float64()),  # wall time for this URL incl. retries, waits and redirects
        pa.field("attempts", pa.int32()),  # HTTP requests sent for this URL (robots.txt not counted)
        pa.field("redirects", pa.list_(pa.string())),  # each redirect target followed, in order
        pa.field("ip", pa.string()),  # address connected to (the checked, pinned one)
        pa.field("warc_file", pa.string()),  # WARC path relative to the crawl's out_dir; null on failure
        pa.field("warc_offset", pa.int64()),  # byte offset of the response record in warc_file
        pa.field("robots_decision", pa.string()),  # allowed | disallowed | unavailable | unreachable | unknown
        pa.field("robots_meta", pa.string()),  # opt-out directives (robots meta + X-Robots-Tag), comma-separated
        pa.field("license", pa.string()),  # licence URL signalled by the page
    ]
)


@dataclass
class FetchRow:
    """One row of FETCH_SCHEMA, filled in while the URL is processed."""

    url: str
    depth: int
    outcome: str = "ok"
    final_url: str | None = None
    http_status: int | None = None
    detail: str | None = None
    content_type: str | None = None
    bytes_raw: int | None = None
    bytes_decoded: int | None = None
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    elapsed_s: float | None = None
    attempts: int = 0
    redirects: list[str] = field(default_factory=list)
    ip: str | None = None
    warc_file: str | None = None
    warc_offset: int | None = None
    robots_decision: str = "unknown"
    robots_meta: str | None = None
    license: str | None = None


@dataclass
class CrawlSummary:
    """Counts and paths of one crawl or ingest. Paths are relative to its out_dir."""

    pages_fetched: int
    pages_failed: int
    failures_by_reason: dict[str, int]
    bytes_raw: int  # summed over successful pages
    bytes_decoded: int
    domains: dict[str, int]  # successful pages per host
    warc_files: list[str]
    fetch_log: str
    elapsed_s: float
    errors: list[str] = field(default_factory=list)  # file-level problems (corrupt WARC input), with offsets

    def as_stats(self) -> dict:
        """Plain dict of every field (for a manifest's stats and MLflow metrics)."""
        return asdict(self)


def write_fetch_log(rows: list[FetchRow], out_dir: Path) -> str:
    """Write `rows` as out_dir/fetches.parquet; return its path relative to out_dir."""
    table = pa.Table.from_pylist([asdict(row) for row in rows], schema=FETCH_SCHEMA)
    pq.write_table(table, out_dir / FETCH_LOG_NAME)
    return FETCH_LOG_NAME


def summarize(rows: list[FetchRow], warc_files: list[str], elapsed_s: float, errors=()) -> CrawlSummary:
    """The CrawlSummary of a finished crawl from its fetch rows."""
    ok = [row for row in rows if row.outcome == "ok"]
    failures = Counter(row.outcome for row in rows if row.outcome != "ok")
    domains = Counter(domain_of(row.final_url or row.url) for row in ok)
    return CrawlSummary(
        pages_fetched=len(ok),
        pages_failed=len(rows) - len(ok),
        failures_by_reason=dict(sorted(failures.items())),
        bytes_raw=sum(row.bytes_raw or 0 for row in ok),
        bytes_decoded=sum(row.bytes_decoded or 0 for row in ok),
        domains=dict(domains.most_common()),
        warc_files=list(warc_files),
        fetch_log=FETCH_LOG_NAME,
        elapsed_s=round(elapsed_s, 3),
        errors=list(errors),
    )


class WarcSink:
    """Writes exchanges into out_dir/warc/<prefix>-NNNNN.warc.gz, starting a new file past `max_bytes`."""

    def __init__(self, out_dir: Path, prefix: str, max_bytes: int):
        self._out_dir, self._prefix, self._max_bytes = out_dir, prefix, max_bytes
        (out_dir / "warc").mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []  # relative to out_dir
        self._stream = None
        self._writer: WarcFileWriter | None = None

    def write(self, url: str, **exchange) -> tuple[str, int]:
        """Write one exchange (WarcFileWriter.write_exchange keywords); return (warc file, response offset)."""
        if self._writer is None:
            self._open()
        offset, _record_id = self._writer.write_exchange(url, **exchange)
        current = self.files[-1]
        if self._stream.tell() >= self._max_bytes:
            self.close()
        return current, offset

    def _open(self) -> None:
        relative = f"warc/{self._prefix}-{len(self.files):05d}.warc.gz"
        self._stream = open(self._out_dir / relative, "wb")  # noqa: SIM115 - closed by close()
        self._writer = WarcFileWriter(self._stream, filename=Path(relative).name)
        self.files.append(relative)

    def close(self) -> None:
        """Close the current file (the next write opens a new one)."""
        if self._stream is not None:
            self._stream.close()
        self._stream, self._writer = None, None
