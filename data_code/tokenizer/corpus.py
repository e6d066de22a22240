"""Streaming reads of a Document Parquet file: record batches of a few columns, never the whole corpus.

Memory is bounded by one Parquet row group (pyarrow decodes a row group's column chunk at a time) plus one batch,
so upstream stages should write bounded row groups (pyarrow's default is 1 Mi rows; the lmforge stages write less).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def open_documents(documents_path: str | Path, columns: list[str]) -> pq.ParquetFile:
    """The Parquet file at `documents_path`, checked to hold `columns`.

    Raises FileNotFoundError for a missing file and ValueError naming the file for a missing column.
    """
    path = Path(documents_path)
    if not path.is_file():
        raise FileNotFoundError(f"documents file not found: {path}")
    # pre_buffer=False: with it, pyarrow keeps every row group's column chunks it has read, and memory grows with
    # the file (seen: 55 MB held for a 54 MB file, 5 MB without).
    parquet = pq.ParquetFile(path, pre_buffer=False)
    missing = [name for name in columns if name not in parquet.schema_arrow.names]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; it has {parquet.schema_arrow.names}")
    return parquet


def iter_batches(documents_path: str | Path, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns`, `batch_size` rows at most, in file order; of a corpus directory (its days'
    documents minus its exclusions, data_code.corpus) as well as of one Document Parquet file."""
    from data_code.corpus import is_corpus, iter_documents

    if is_corpus(documents_path):
        yield from iter_documents(documents_path, columns, batch_size)
        return
    parquet = open_documents(documents_path, columns)
    yield from parquet.iter_batches(batch_size=batch_size, columns=columns)


def count_rows(documents_path: str | Path, columns: list[str]) -> int:
    """Documents of a Document Parquet file (from its footer) or of a corpus directory."""
    from data_code.corpus import count_documents, is_corpus

    if is_corpus(documents_path):
        return count_documents(documents_path)
    return open_documents(documents_path, columns).metadata.num_rows


def iter_texts(documents_path: str | Path, text_field: str, batch_size: int, counts: dict) -> Iterator[list[str]]:
    """Lists of texts, one per record batch; adds the documents and characters seen to `counts` as it goes."""
    for batch in iter_batches(documents_path, [text_field], batch_size):
        texts = [text or "" for text in batch.column(0).to_pylist()]
        counts["documents"] = counts.get("documents", 0) + len(texts)
        counts["chars"] = counts.get("chars", 0) + sum(map(len, texts))
        yield texts
