"""Checks on a token-shard directory, as pure functions returning (passed, message) for Dagster asset checks.

Each reads the shards through memory maps in bounded chunks, so memory stays flat whatever their size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from data_code.document import TRAIN, VALIDATION
from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, open_shard, read_json, verify_file

CHUNK_TOKENS = 1 << 24  # tokens examined at a time (32 MiB of uint16)


def _shards(shards_dir) -> Iterator[tuple[str, dict, np.memmap]]:
    """(split, index entry, memory map) of every shard, sizes verified against the manifest."""
    index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
    for split, entries in index["splits"].items():
        for entry in entries:
            yield split, entry, open_shard(shards_dir, entry, index, manifest, sha256=False)


def _chunks(tokens: np.memmap) -> Iterator[np.ndarray]:
    for start in range(0, len(tokens), CHUNK_TOKENS):
        yield tokens[start : start + CHUNK_TOKENS]


def check_token_ids(shards_dir: str | Path) -> tuple[bool, str]:
    """Every token id is below the tokenizer's vocabulary size."""
    vocab_size, total = read_json(shards_dir, INDEX_FILE)["vocab_size"], 0
    for _, entry, tokens in _shards(shards_dir):
        largest = max((int(chunk.max()) for chunk in _chunks(tokens)), default=-1)
        if largest >= vocab_size:
            return False, f"{entry['file']} holds token id {largest} >= vocab_size {vocab_size}"
        total += len(tokens)
    return True, f"all {total} token ids are below vocab_size {vocab_size}"


def check_nonempty(shards_dir: str | Path, required: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """Every split of `required` (default: all) has at least one shard, and no shard file is empty.

    One day's shards require only train (a small day may hold no validation document), a day without documents
    nothing; the shard set training reads requires both splits.
    """
    index = read_json(shards_dir, INDEX_FILE)
    for split, entries in index["splits"].items():
        if not entries and (required is None or split in required):
            return False, (
                f"split {split!r} has no shards (no documents fell into it): with few documents, raise "
                "token_shards' validation_fraction, or crawl more"
            )
    for _, entry, tokens in _shards(shards_dir):
        if len(tokens) == 0:
            return False, f"shard {entry['file']} is empty"
    counts = {split: len(entries) for split, entries in index["splits"].items()}
    return True, f"no shard is empty; shards per split: {counts}"


def check_eos_count(shards_dir: str | Path) -> tuple[bool, str]:
    """Per split, the number of <|endoftext|> tokens equals the number of documents written."""
    index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
    counts = dict.fromkeys(index["splits"], 0)
    for split, _, tokens in _shards(shards_dir):
        counts[split] += sum(int(np.count_nonzero(chunk == index["eos_id"])) for chunk in _chunks(tokens))
    wrong = {
        s: (n, manifest["splits"][s]["documents"])
        for s, n in counts.items()
        if n != manifest["splits"][s]["documents"]
    }
    if wrong:
        return False, "EOS count != documents (eos, documents) per split: " + str(wrong)
    return True, f"EOS count equals document count per split: {counts}"


def check_split_disjoint(shards_dir: str | Path) -> tuple[bool, str]:
    """No document appears in both train and validation (memory: the validation doc_ids, a small fraction)."""
    index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
    if VALIDATION not in index["splits"]:
        return True, "no validation split (validation_fraction is 0)"
    held_out = set()
    for entry in index["splits"][VALIDATION]:
        held_out.update(_doc_ids(shards_dir, entry, manifest))
    shared = set()
    for entry in index["splits"][TRAIN]:
        shared.update(held_out.intersection(_doc_ids(shards_dir, entry, manifest)))
    if shared:
        return False, f"{len(shared)} documents are in both train and validation, e.g. {sorted(shared)[:5]}"
    return True, f"train and validation share no document ({len(held_out)} validation documents)"


def _doc_ids(shards_dir, entry: dict, manifest: dict) -> list[str]:
    path = verify_file(shards_dir, entry["spans"], manifest, sha256=False)
    return pq.read_table(path, columns=["doc_id"]).column(0).to_pylist()
