"""The training corpus: the union of every day's filtered documents, streamed into one Parquet file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_code.document import DOCUMENT_SCHEMA


def concatenate_documents(paths: list[str], out_path: Path, batch_size: int = 4096) -> dict:
    """Stream the Document Parquet files at `paths` (in order) into `out_path`, keeping the first row per doc_id.

    A page fetched unchanged on two days has one doc_id (url + payload digest) and is kept once. Returns stats:
    documents, tokens (whitespace words), duplicates_dropped, per-source counts and per-domain counts.
    """
    seen: set[str] = set()  # doc_ids only (24 chars each): bounded by the corpus size, not its text
    stats = {"documents": 0, "tokens": 0, "duplicates_dropped": 0, "sources": {}, "domains": Counter()}
    with pq.ParquetWriter(out_path, DOCUMENT_SCHEMA, compression="zstd") as writer:
        for path in paths:
            kept_here = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
                ids = batch.column("doc_id").to_pylist()
                keep = [doc_id not in seen for doc_id in ids]
                seen.update(ids)
                table = pa.Table.from_batches([batch]).filter(pa.array(keep)).cast(DOCUMENT_SCHEMA)
                stats["duplicates_dropped"] += len(ids) - table.num_rows
                if table.num_rows:
                    writer.write_table(table)
                    kept_here += table.num_rows
                    stats["tokens"] += _words(table.column("text"))
                    stats["domains"].update(table.column("domain").to_pylist())
            stats["sources"][path] = kept_here
            stats["documents"] += kept_here
    stats["domains"] = dict(stats["domains"])
    return stats


def _words(texts: pa.ChunkedArray) -> int:
    return int(pc.sum(pc.list_value_length(pc.utf8_split_whitespace(texts))).as_py() or 0)
