"""Token shards from the filtered corpus: tokenize on all cores, split, reweight, shuffle, pack, write.

One streaming pass (two when the mixture reweights: the first counts documents per source):
record batch of documents -> split by doc_id hash -> copies per the mixture -> `encode_batch_fast` (Rust,
multi-threaded over the batch; the same ids as `encode_batch` without computing offsets) -> ids + EOS -> the
split's shuffle buffer -> packed into shard files. Memory holds one batch, the shuffle buffers and the sidecar
spans of the shard being written, whatever the corpus size. Text that spells a special token (say a web page
quoting "<|endoftext|>") is encoded as plain text, so EOS marks document boundaries and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from data_code.document import TRAIN, VALIDATION
from data_code.shards.config import ShardConfig
from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, token_dtype
from data_code.shards.mixture import (
    copies_of,
    mixture_table,
    sampling_rates,
    source_counts,
    split_of,
)
from data_code.shards.writer import ShuffleBuffer, SplitWriter
from data_code.spark import map_batches_in_order, require_session, ship_files, shipped_path
from data_code.tokenizer.config import EOS, PAD
from data_code.tokenizer.corpus import iter_batches, open_documents
from data_code.tokenizer.fingerprint import TOKENIZER_FILE, tokenizer_fingerprint

MIXTURE_TABLE_ROWS = 50  # sources listed in the stats, largest first


def load_tokenizer(tokenizer_dir: str | Path) -> Tokenizer:
    """The saved tokenizer (its directory, or its tokenizer.json under any name: a file shipped to a Spark executor
    is renamed), set to encode special-token text as plain text; ValueError when EOS/PAD are missing."""
    path = Path(tokenizer_dir)
    tokenizer = Tokenizer.from_file(str(path if path.is_file() else path / TOKENIZER_FILE))
    tokenizer.encode_special_tokens = True
    for token in (EOS, PAD):
        if tokenizer.token_to_id(token) is None:
            raise ValueError(f"tokenizer in {tokenizer_dir} has no {token} token")
    return tokenizer


def build_shards(
    documents_path: str,
    tokenizer_dir: str,
    out_dir: Path,
    config: ShardConfig,
    *,
    allow_empty: bool = False,
    spark=None,
) -> dict:
    """Write the token shards of `documents_path` into `out_dir` and return stats.

    engine 'spark' (with `spark`, the SparkSession): the executors select and encode each Arrow batch (mapInArrow,
    the tokenizer shipped to them as a file); the token ids come back keyed by their batch's first row and are
    packed here in row order through the same shuffle buffers and writers, so the shards, the sidecars and the
    checks are the local engine's, byte for byte. Executors hold one batch of texts and its ids per running task;
    the encoded batches wait in Spark's storage (spilling to disk) until packed, one at a time.

    An empty documents file raises ValueError, unless `allow_empty` (a night that brought no new document: its
    shard directory then has no shard files, and a shard set leaves it out).

    Stats: fingerprint, dtype, vocab_size, seq_len, per split tokens/documents/sequences/padding_tokens/shards,
    the same flattened as tokens_train, ..., shards (file count), mixture (per source), elapsed_s, tokens_per_s.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    fingerprint = tokenizer_fingerprint(tokenizer_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    vocab_size, eos_id, pad_id = tokenizer.get_vocab_size(), tokenizer.token_to_id(EOS), tokenizer.token_to_id(PAD)
    dtype = token_dtype(vocab_size)
    columns = ["doc_id", config.text_field]
    if open_documents(documents_path, columns + [config.mixture_field]).metadata.num_rows == 0 and not allow_empty:
        raise ValueError(f"the corpus is empty: {documents_path} holds no documents")
    counts = source_counts(documents_path, config) if config.reweights else None
    rates = sampling_rates(counts, config) if counts is not None else None
    splits = [TRAIN, VALIDATION] if config.validation_fraction > 0 else [TRAIN]
    writers = {
        split: SplitWriter(
            out_dir, split, row_tokens=config.row_tokens, shard_tokens=config.shard_tokens, dtype=dtype, pad_id=pad_id
        )
        for split in splits
    }
    buffers = {split: ShuffleBuffer(config.shuffle_buffer, f"{config.seed}:{split}") for split in splits}
    if rates is not None:
        columns.append(config.mixture_field)
    require_session(config.engine, spark)
    if config.engine == "spark":
        for kept, ids in _spark_encoded(spark, documents_path, columns, tokenizer_dir, config, rates):
            _pack(kept, ids, eos_id, dtype, buffers, writers)
    else:
        _encode_and_pack(
            iter_batches(documents_path, columns, config.batch_documents),
            tokenizer,
            config,
            rates,
            eos_id,
            dtype,
            buffers,
            writers,
        )
    split_stats = {}
    for split in splits:
        writers[split].add_many(buffers[split].drain())
        split_stats[split] = {**writers[split].close(), "shards": len(writers[split].shards)}
    layout = {"seq_len": config.seq_len, "row_tokens": config.row_tokens, "dtype": dtype.str, "vocab_size": vocab_size}
    layout |= {"eos_id": eos_id, "pad_id": pad_id}
    _write_json(out_dir / INDEX_FILE, {**layout, "splits": {split: writers[split].shards for split in splits}})
    files = {name: record for split in splits for name, record in sorted(writers[split].files.items())}
    manifest = {"tokenizer_fingerprint": fingerprint, **layout, "splits": split_stats, "files": files}
    _write_json(out_dir / MANIFEST_FILE, {**manifest, "config": _versioned_config(config)})
    elapsed = time.perf_counter() - started
    tokens = sum(stats["tokens"] for stats in split_stats.values())
    return {
        "fingerprint": fingerprint,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "seq_len": config.seq_len,
        "splits": split_stats,
        **{f"{key}_{split}": value for split, stats in split_stats.items() for key, value in stats.items()},
        "shards": sum(stats["shards"] for stats in split_stats.values()),
        "mixture": mixture_table(counts, rates)[:MIXTURE_TABLE_ROWS] if counts is not None else [],
        "engine": config.engine,
        "elapsed_s": round(elapsed, 3),
        "tokens_per_s": round(tokens / elapsed, 1) if elapsed > 0 else 0.0,
    }


def _encode_and_pack(batches, tokenizer, config, rates, eos_id, dtype, buffers, writers) -> None:
    """Select, encode and pack every record batch. Encoding runs in Rust without the GIL, so batch k + 1 is encoded
    on a helper thread while this thread packs batch k; results are consumed in order, so timing changes nothing."""
    with ThreadPoolExecutor(max_workers=1) as encoder:
        pending = None
        for batch in batches:
            kept = _select(batch, config, rates)
            encoding = encoder.submit(tokenizer.encode_batch_fast, [d[3] for d in kept], add_special_tokens=False)
            if pending is not None:
                _pack(pending[0], [e.ids for e in pending[1].result()], eos_id, dtype, buffers, writers)
            pending = (kept, encoding)
        if pending is not None:
            _pack(pending[0], [e.ids for e in pending[1].result()], eos_id, dtype, buffers, writers)


def _spark_encoded(spark, documents_path: str, columns: list[str], tokenizer_dir: str, config, rates):
    """(kept, token ids) of every batch of `batch_documents` rows, encoded on the executors, in row order."""
    [shipped] = ship_files(spark, [str(Path(tokenizer_dir) / TOKENIZER_FILE)])
    work = partial(_encode_arrow, config=config, rates=rates, tokenizer_file=shipped)
    yield from map_batches_in_order(spark, documents_path, columns, work, config.batch_documents)


_TOKENIZERS: dict[str, Tokenizer] = {}  # one loaded tokenizer per executor Python worker


def _encode_arrow(batch: pa.RecordBatch, config: ShardConfig, rates, tokenizer_file: str) -> tuple[list, list]:
    """On an executor: the batch's kept documents (without their text) and their token ids."""
    path = shipped_path(tokenizer_file)
    if path not in _TOKENIZERS:
        _TOKENIZERS[path] = load_tokenizer(path)
    kept = _select(batch, config, rates)
    encodings = _TOKENIZERS[path].encode_batch_fast([document[3] for document in kept], add_special_tokens=False)
    ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
    return [(doc_id, split, copies, "") for doc_id, split, copies, _ in kept], ids


def _select(batch, config: ShardConfig, rates: dict | None) -> list[tuple[str, str, int, str]]:
    """(doc_id, split, copies, text) of each document of the batch that is written at least once."""
    doc_ids, texts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
    sources = batch.column(2).to_pylist() if rates is not None else None
    kept = []
    for row, doc_id in enumerate(doc_ids):
        split = split_of(doc_id, config)
        copies = 1
        if split == TRAIN and rates is not None:
            copies = copies_of(doc_id, rates[str(sources[row])], config.seed)
        if copies:
            kept.append((doc_id, split, copies, texts[row] or ""))
    return kept


def _pack(kept: list, token_ids: list, eos_id: int, dtype, buffers: dict, writers: dict) -> None:
    """Token ids + EOS of each kept document through its split's shuffle buffer into its split's writer."""
    leaving = {split: [] for split in buffers}
    for (doc_id, split, copies, _), ids in zip(kept, token_ids, strict=True):
        tokens = np.empty(len(ids) + 1, dtype=dtype)
        tokens[:-1] = ids
        tokens[-1] = eos_id
        for _ in range(copies):
            document = buffers[split].push((doc_id, tokens))
            if document is not None:
                leaving[split].append(document)
    for split, documents in leaving.items():
        writers[split].add_many(documents)


def _versioned_config(config: ShardConfig) -> dict:
    """The config fields that shape the shards (speed-only fields left out), as JSON-able values."""
    fields = [f.name for f in dataclasses.fields(config) if f.metadata.get("versioned", True)]
    return {name: dict(v) if isinstance(v := getattr(config, name), Mapping) else v for name in fields}


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
