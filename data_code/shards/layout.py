"""On-disk layout of a token-shard directory, and the integrity checks every reader runs on it.

    <dir>/index.json                   how to read: seq_len, row_tokens, dtype, eos/pad ids, shards per split
    <dir>/shards.json                  manifest: tokenizer fingerprint, counts per split, sha256 and size per file
    <dir>/<split>/<NNNNN>.bin          raw token ids (little-endian uint16, or uint32 past 65,535 tokens), a
                                       whole number of rows of row_tokens = seq_len + 1: np.memmap-able
    <dir>/<split>/<NNNNN>.spans.parquet  (token_start, token_end, doc_id): where each document lies in the shard

Documents are packed back to back, each followed by <|endoftext|>; a document may continue into the next row or
shard (it then has a span in each). The last row of a split is filled up with <|pad|>.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_code.files import file_sha256

INDEX_FILE = "index.json"
MANIFEST_FILE = "shards.json"
UINT16_MAX_VOCAB = 65_535  # token ids up to 65,534 fit uint16 with room to spare


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id of the vocabulary fits, else uint32."""
    return np.dtype("<u2") if vocab_size <= UINT16_MAX_VOCAB else np.dtype("<u4")


def shard_name(split: str, number: int) -> str:
    return f"{split}/{number:05d}.bin"


def spans_name(split: str, number: int) -> str:
    return f"{split}/{number:05d}.spans.parquet"


def read_json(shards_dir: str | Path, name: str) -> dict:
    """index.json or shards.json of a shard directory; FileNotFoundError naming the directory when absent."""
    path = Path(shards_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {shards_dir} is not a complete token-shard directory")
    return json.loads(path.read_text(encoding="utf-8"))


def verify_file(shards_dir: str | Path, name: str, manifest: dict, *, sha256: bool) -> Path:
    """The path of file `name`, checked against the manifest: size always, sha256 when asked.

    Raises ValueError naming the file when it is missing, truncated, grown or altered.
    """
    path = Path(shards_dir) / name
    record = manifest["files"].get(name)
    if record is None:
        raise ValueError(f"{path} is not listed in {MANIFEST_FILE}")
    if not path.is_file():
        raise ValueError(f"shard file {path} is missing (listed in {MANIFEST_FILE})")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise ValueError(f"shard file {path} has {size} bytes, {MANIFEST_FILE} says {record['bytes']}: truncated?")
    if sha256 and file_sha256(path) != record["sha256"]:
        raise ValueError(f"shard file {path} does not match its sha256 in {MANIFEST_FILE}: altered or corrupt")
    return path


def open_shard(shards_dir: str | Path, entry: dict, index: dict, manifest: dict, *, sha256: bool) -> np.memmap:
    """One shard's tokens as a read-only memory map, after verify_file."""
    path = verify_file(shards_dir, entry["file"], manifest, sha256=sha256)
    return np.memmap(path, dtype=np.dtype(index["dtype"]), mode="r")
