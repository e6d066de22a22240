"""Reading a shard directory back independently of the code under test: raw bytes, sidecars, EOS walks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def split_tokens(shards_dir: Path, split: str) -> np.ndarray:
    """All tokens of a split, shards concatenated in file order."""
    index = json.loads((shards_dir / "index.json").read_text())
    dtype = np.dtype(index["dtype"])
    parts = [np.fromfile(shards_dir / entry["file"], dtype=dtype) for entry in index["splits"][split]]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def split_doc_ids(shards_dir: Path, split: str) -> list[str]:
    """doc_ids in packing order, a document continued across a shard boundary counted once."""
    index = json.loads((shards_dir / "index.json").read_text())
    doc_ids: list[str] = []
    for entry in index["splits"][split]:
        spans = pq.read_table(shards_dir / entry["spans"]).to_pylist()
        if doc_ids and spans and spans[0]["token_start"] == 0 and _continues(shards_dir, index, split, entry):
            spans = spans[1:]
        doc_ids.extend(span["doc_id"] for span in spans)
    return doc_ids


def _continues(shards_dir: Path, index: dict, split: str, entry: dict) -> bool:
    """Whether the previous shard of `entry` ends inside a document (its last token is not EOS)."""
    previous = index["splits"][split][index["splits"][split].index(entry) - 1]
    return int(np.fromfile(shards_dir / previous["file"], dtype=np.dtype(index["dtype"]))[-1]) != index["eos_id"]


def documents_by_eos(tokens: np.ndarray, eos_id: int, pad_id: int) -> list[np.ndarray]:
    """Each document's tokens, found by walking EOS tokens (EOS itself and the final padding dropped)."""
    tokens = tokens[: len(tokens) - int(np.argmax(tokens[::-1] != pad_id))] if len(tokens) else tokens
    ends = np.flatnonzero(tokens == eos_id)
    assert len(ends) and ends[-1] == len(tokens) - 1, "a split must end with EOS before its padding"
    return [piece[:-1] for piece in np.split(tokens, ends + 1)[:-1]]
