"""Writing one split: a bounded shuffle buffer of tokenized documents, packed into shard files and sidecars.

Shuffle: a buffer of `capacity` documents (their token arrays). Once full, each arriving document replaces a
uniformly chosen one, which is written out; at the end the rest leave in a random order. Memory is bounded by
the buffer; documents move up to about `capacity` places earlier and arbitrarily far later, so the order is
well mixed locally and across the whole corpus only as far as the buffer reaches (as in tf.data or webdataset).
The order is a function of the incoming document order and the seed alone, hence deterministic.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_code.files import file_sha256
from data_code.shards.layout import shard_name, spans_name

SPANS_SCHEMA = pa.schema(
    [
        pa.field("token_start", pa.int64(), nullable=False),  # first token of the document in this shard
        pa.field("token_end", pa.int64(), nullable=False),  # one past its last token (its EOS included)
        pa.field("doc_id", pa.string(), nullable=False),
    ]
)
FLUSH_TOKENS = 1 << 19  # tokens gathered before one write() call (1 MiB of uint16)


class ShuffleBuffer:
    """Bounded, seeded shuffle of a stream of items (see the module docstring)."""

    def __init__(self, capacity: int, seed: str):
        self.capacity, self.items, self.random = capacity, [], random.Random(seed)

    def push(self, item):
        """Take `item`; return the item that leaves the buffer, or None while it is still filling."""
        if len(self.items) < self.capacity:
            self.items.append(item)
            return None
        slot = int(self.random.random() * self.capacity)  # uniform slot; cheaper than randrange per document
        leaving, self.items[slot] = self.items[slot], item
        return leaving

    def drain(self) -> list:
        """The items left, in a random order."""
        items, self.items = self.items, []
        self.random.shuffle(items)
        return items


class SplitWriter:
    """Packs documents (token arrays ending in EOS) into the shard files of one split, with their sidecars."""

    def __init__(self, out_dir: Path, split: str, *, row_tokens: int, shard_tokens: int, dtype, pad_id: int):
        self.out_dir, self.split, self.row_tokens, self.dtype, self.pad_id = out_dir, split, row_tokens, dtype, pad_id
        self.capacity = max(1, shard_tokens // row_tokens) * row_tokens  # whole rows per shard
        self.shards: list[dict] = []  # index entries
        self.files: dict[str, dict] = {}  # manifest entries: name -> {sha256, bytes}
        self.documents = self.tokens = self.padding = 0
        self._handle = None

    def add_many(self, documents: list[tuple[str, np.ndarray]]) -> None:
        """Append (doc_id, tokens) documents in order; one that fills a shard continues into the next."""
        if not documents:
            return
        lengths = np.fromiter((len(tokens) for _, tokens in documents), dtype=np.int64, count=len(documents))
        ends = np.cumsum(lengths)  # one past each document's last token, within `flat`
        starts = ends - lengths
        flat = np.concatenate([tokens for _, tokens in documents])
        doc_ids = [doc_id for doc_id, _ in documents]
        self.documents += len(documents)
        self.tokens += len(flat)
        position = 0
        while position < len(flat):
            if self._handle is None:
                self._open()
            take = min(self.capacity - self._filled, len(flat) - position)
            # Documents with a token in flat[position : position + take]: a span each in this shard.
            first = int(np.searchsorted(ends, position, side="right"))
            last = int(np.searchsorted(starts, position + take, side="left"))
            self._starts.append(np.maximum(starts[first:last], position) - position + self._filled)
            self._doc_ids.extend(doc_ids[first:last])
            self._write(flat[position : position + take])
            position += take
            if self._filled == self.capacity:
                self._close()

    def close(self) -> dict:
        """Pad the last row with <|pad|>, finish the last shard; return the split's counts."""
        if self._handle is not None:
            self.padding = -self._filled % self.row_tokens
            if self.padding:
                self._pending.append(np.full(self.padding, self.pad_id, dtype=self.dtype))
                self._pending_tokens += self.padding
            self._close(padding=self.padding)
        rows = sum(entry["rows"] for entry in self.shards)
        return {"documents": self.documents, "tokens": self.tokens, "padding_tokens": self.padding, "sequences": rows}

    def _open(self) -> None:
        number = len(self.shards)
        self._name, self._spans = shard_name(self.split, number), spans_name(self.split, number)
        (self.out_dir / self._name).parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.out_dir / self._name, "wb")
        self._sha = hashlib.sha256()
        self._filled, self._starts, self._doc_ids = 0, [], []
        self._pending, self._pending_tokens = [], 0

    def _write(self, tokens: np.ndarray) -> None:
        self._pending.append(tokens)
        self._pending_tokens += len(tokens)
        self._filled += len(tokens)
        if self._pending_tokens >= FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            data = np.concatenate(self._pending).astype(self.dtype, copy=False).tobytes()
            self._handle.write(data)
            self._sha.update(data)
            self._pending, self._pending_tokens = [], 0

    def _close(self, padding: int = 0) -> None:
        self._flush()
        self._handle.close()
        self._handle = None
        size = self._filled + padding
        self.files[self._name] = {"sha256": self._sha.hexdigest(), "bytes": size * self.dtype.itemsize}
        starts = np.concatenate(self._starts)
        ends = np.append(starts[1:], self._filled)  # a span runs to the next one; padding belongs to none
        table = pa.table({"token_start": starts, "token_end": ends, "doc_id": self._doc_ids}, schema=SPANS_SCHEMA)
        pq.write_table(table, self.out_dir / self._spans)
        spans_path = self.out_dir / self._spans
        self.files[self._spans] = {"sha256": file_sha256(spans_path), "bytes": spans_path.stat().st_size}
        self.shards.append(
            {
                "file": self._name,
                "spans": self._spans,
                "tokens": size,
                "rows": size // self.row_tokens,
                "spans_count": len(self._doc_ids),
                "padding_tokens": padding,
            }
        )
