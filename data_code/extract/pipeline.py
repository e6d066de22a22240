"""WARC files -> documents.parquet + rejections.parquet, extracted over a pool of worker processes, or on Spark.

Revisit records (a page unchanged since an earlier capture) are counted, by profile, and make no row.
Records stream through in bounded batches (at most two batches per worker in flight) and results are written in
input order, so memory stays flat on any crawl size and the output is the same for any number of workers.

On Spark (engine: spark) each WARC file is one task: the executor reads it (a local path or any fsspec URL the
executors can reach, Common Crawl's s3:// segments included) and extracts it with the very functions of the local
engine; the driver writes the results in file order. Executors hold the extracted rows of their tasks (a file's
documents) until the driver has written them; the driver holds one file's rows at a time. Same input, same
output as the local engine, byte for byte.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from functools import partial

import fsspec

from data_code.batching import ParquetSink, map_in_order
from data_code.document import DOCUMENT_SCHEMA, REJECTION_SCHEMA, rejection
from data_code.extract.config import REVISIT_PROFILES, ExtractConfig, ExtractStats
from data_code.extract.record import STAGE, extract_batch
from data_code.spark import ordered_map, require_session
from data_code.warc import CorruptWarcError, WarcRecord, iter_warc_records

# A response's metadata record follows it within a few records (request, metadata); responses wait this many
# newer responses for it before they are processed without one.
_PAIRING_WINDOW = 8


def extract_to_parquet(
    warc_uris: list[str], documents_path: str, rejections_path: str, config: ExtractConfig, *, spark=None
) -> ExtractStats:
    """Extract every HTML / plain-text response in `warc_uris` into Parquet files; return what happened.

    Each response record becomes one row of DOCUMENT_SCHEMA in `documents_path` or one row of REJECTION_SCHEMA
    (stage 'extract') in `rejections_path`; a corrupt WARC file adds one 'corrupt_warc' rejection after the
    documents of its valid records. A revisit record makes no row in either file: it is counted in
    stats.revisits and stats.revisits_by_profile. Both files are always written, empty ones included.
    Raises FileNotFoundError (before writing anything) when a WARC file does not exist. `spark`: the SparkSession
    of engine 'spark' (ValueError without one).
    """
    _check_inputs_exist(warc_uris)
    require_session(config.engine, spark)
    started = time.perf_counter()
    stats = ExtractStats(warc_files=len(warc_uris), extractor=config.extractor, engine=config.engine)
    tally = _Tally()
    with ExitStack() as stack:
        documents = stack.enter_context(ParquetSink(documents_path, DOCUMENT_SCHEMA))
        rejections = stack.enter_context(ParquetSink(rejections_path, REJECTION_SCHEMA))
        sinks = {"document": documents, "rejection": rejections}  # a revisit writes no row
        if config.engine == "spark":
            outcomes = ordered_map(spark, list(warc_uris), partial(extract_file, config=config))
        else:
            batches = _batches(_work_items(warc_uris), config.batch_records)
            outcomes = map_in_order(partial(extract_batch, config=config), batches, config.workers)
        for results in outcomes:
            for kind, row in results:
                if kind in sinks:
                    sinks[kind].write(row)
                tally.add(kind, row)
    tally.fill(stats)
    stats.elapsed_s = round(time.perf_counter() - started, 3)
    return stats


def extract_file(uri: str, config: ExtractConfig) -> list[tuple[str, dict]]:
    """Every outcome of one WARC file, in order (a Spark task: the records never leave the executor)."""
    return extract_batch(list(_file_items(uri)), config)


def _check_inputs_exist(warc_uris: list[str]) -> None:
    for uri in warc_uris:
        filesystem, path = fsspec.core.url_to_fs(uri)
        if not filesystem.exists(path):
            raise FileNotFoundError(f"WARC file not found: {uri}")


def _work_items(warc_uris: Iterable[str]) -> Iterator[tuple]:
    for uri in warc_uris:
        yield from _file_items(uri)


def _file_items(uri: str) -> Iterator[tuple]:
    """('record', record, metadata fields) per response or revisit, then ('row', 'rejection', row) if the file is
    corrupt. A revisit goes on at once: it makes no row, so it needs neither metadata nor its place in the order."""
    pending: OrderedDict[str, tuple[WarcRecord, dict[str, str]]] = OrderedDict()
    try:
        for record in iter_warc_records(uri, record_types=("response", "revisit", "metadata")):
            if record.record_type == "response":
                pending[record.record_id or str(record.offset)] = (record, {})
                while len(pending) > _PAIRING_WINDOW:
                    yield ("record", *pending.popitem(last=False)[1])
            elif record.record_type == "revisit":
                yield ("record", record, {})
            elif record.concurrent_to in pending:
                pending[record.concurrent_to][1].update(parse_warc_fields(record.payload))
    except CorruptWarcError as error:
        # Every record before the corruption was valid: keep them, then say where the file broke.
        yield from (("record", *value) for value in pending.values())
        yield ("row", "rejection", rejection(STAGE, "corrupt_warc", detail=str(error)))
        return
    yield from (("record", *value) for value in pending.values())


def parse_warc_fields(payload: bytes) -> dict[str, str]:
    """'robots: allowed\\ndepth: 1\\n' -> {'robots': 'allowed', 'depth': '1'} (application/warc-fields)."""
    fields = {}
    for line in payload.decode("utf-8", errors="replace").splitlines():
        name, separator, value = line.partition(":")
        if separator and name.strip():
            fields[name.strip().lower()] = value.strip()
    return fields


def _batches(items: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Tally:
    """Counts for ExtractStats, accumulated row by row in the parent process."""

    def __init__(self):
        self.documents, self.records, self.chars = 0, 0, 0
        self.reasons, self.languages, self.domains = Counter(), Counter(), Counter()
        self.revisits = Counter(dict.fromkeys(REVISIT_PROFILES, 0))  # profile -> revisits, both profiles shown

    def add(self, kind: str, row: dict) -> None:
        if kind == "revisit":  # not a record read for text, nor a rejection: the page is unchanged
            self.revisits[row["profile"]] += 1
        elif kind == "document":
            self.records += 1
            self.documents += 1
            self.chars += len(row["text"])
            self.languages[row["language"] or "und"] += 1
            self.domains[row["domain"]] += 1
        else:
            self.records += row["reason"] != "corrupt_warc"  # a corrupt file is not a record
            self.reasons[row["reason"]] += 1

    def fill(self, stats: ExtractStats) -> None:
        stats.records_read, stats.documents, stats.chars = self.records, self.documents, self.chars
        stats.rejected = sum(self.reasons.values())
        stats.rejections_by_reason = dict(sorted(self.reasons.items()))
        stats.revisits = sum(self.revisits.values())
        stats.revisits_by_profile = dict(self.revisits)
        stats.languages = dict(self.languages.most_common())
        stats.domains = dict(self.domains.most_common())
