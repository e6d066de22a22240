"""Rows -> one Parquet file through fsspec, in row groups so memory stays bounded (local paths or s3:// / gs://)."""

from __future__ import annotations

from collections.abc import Iterable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_ROW_GROUP = 2_000


class ParquetSink:
    """Context manager writing rows of `schema` to `path`; the schema is written even when no row is."""

    def __init__(self, path: str, schema: pa.Schema):
        self._path, self._schema, self._rows = path, schema, []

    def __enter__(self):
        self._file = fsspec.open(self._path, "wb", auto_mkdir=True).open()
        self._writer = pq.ParquetWriter(self._file, self._schema)
        return self

    def write_many(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._rows.append(row)
            if len(self._rows) >= ROWS_PER_ROW_GROUP:
                self._flush()

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
