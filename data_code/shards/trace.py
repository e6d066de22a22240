"""From a token back to its source: (split, shard, token offset) -> doc_id -> URL, licence and fetch time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, read_json, verify_file

PROVENANCE_COLUMNS = ["doc_id", "url", "domain", "license", "fetch_time"]


def trace(
    shards_dir: str | Path, split: str, shard: int, token_offset: int, documents_path: str | Path | list[str]
) -> dict:
    """The document that token `token_offset` of shard number `shard` of `split` came from, with its provenance.

        Returns {split, shard, token_offset, doc_id, token_start, token_end (the document's span in the shard), url,
        domain, license, fetch_time (ISO 8601)}. The span comes from the shard's sidecar by binary search; the
        provenance from the documents Parquet (streamed with a filter on doc_id; a list of files, as a corpus of days
    reads, is searched as one). Raises ValueError for a split or
        shard that does not exist, an offset outside the shard or in its final padding, or a doc_id missing from
        `documents_path`.
    """
    index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
    entries = index["splits"].get(split)
    if entries is None:
        raise ValueError(f"split {split!r} not in {shards_dir} (splits: {sorted(index['splits'])})")
    if not 0 <= shard < len(entries):
        raise ValueError(f"shard {shard} not in split {split!r} of {shards_dir} ({len(entries)} shards)")
    entry = entries[shard]
    if not 0 <= token_offset < entry["tokens"]:
        raise ValueError(f"token_offset {token_offset} outside {entry['file']} ({entry['tokens']} tokens)")
    spans = pq.read_table(verify_file(shards_dir, entry["spans"], manifest, sha256=False))
    starts = spans.column("token_start").to_numpy()
    row = int(np.searchsorted(starts, token_offset, side="right")) - 1
    token_start, token_end = int(starts[row]), int(spans.column("token_end")[row].as_py())
    if token_offset >= token_end:
        raise ValueError(f"token_offset {token_offset} of {entry['file']} is padding after the last document")
    doc_id = spans.column("doc_id")[row].as_py()
    sources = [str(path) for path in documents_path] if isinstance(documents_path, list) else str(documents_path)
    found = ds.dataset(sources, format="parquet").to_table(
        columns=PROVENANCE_COLUMNS, filter=pc.field("doc_id") == doc_id
    )
    if found.num_rows == 0:
        raise ValueError(f"doc_id {doc_id} (from {entry['spans']}) is not in {documents_path}")
    document = found.slice(0, 1).to_pylist()[0]
    fetch_time = document["fetch_time"]
    return {
        "split": split,
        "shard": shard,
        "token_offset": token_offset,
        "token_start": token_start,
        "token_end": token_end,
        **document,
        "fetch_time": fetch_time.isoformat() if fetch_time is not None else None,
    }
