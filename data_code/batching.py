"""Shared by the batch stages: an order-preserving process pool, and rows -> Parquet in bounded row groups."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_ROW_GROUP = 2_000


def map_in_order(function: Callable, batches: Iterator[list], workers: int) -> Iterator:
    """function(batch) for every batch, results in input order; at most 2 batches per worker in flight."""
    if workers == 1:  # no pool: same code path, no process start-up, easy to debug
        yield from map(function, batches)
        return
    # spawn, not fork: the caller may be a threaded server (Dagster), and fork copies held locks.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight = deque()
        for batch in batches:
            in_flight.append(pool.submit(function, batch))
            if len(in_flight) >= 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


class ParquetSink:
    """Rows of `schema` -> one Parquet file through fsspec (local, s3://, gs://), in row groups so memory stays
    bounded; the schema is written even when no row is."""

    def __init__(self, path: str, schema: pa.Schema):
        self._path, self._schema, self._rows = path, schema, []

    def __enter__(self):
        self._file = fsspec.open(self._path, "wb", auto_mkdir=True).open()
        self._writer = pq.ParquetWriter(self._file, self._schema)
        return self

    def write(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= ROWS_PER_ROW_GROUP:
            self._flush()

    def write_many(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def __exit__(self, *exc_info):
        try:
            if exc_info[0] is None:
                self._flush()
            self._writer.close()
        finally:
            self._file.close()
