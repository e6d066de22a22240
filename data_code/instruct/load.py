"""Reading chat and preference datasets from JSONL or Parquet, local or any fsspec URL (s3://, gs://, memory://).

The format comes from the file name: `.jsonl`/`.json` (one JSON object per line, blank lines skipped) or
`.parquet`. Every schema error names the file and the 1-based line (JSONL) or row (Parquet):

    ValueError: data/chat.jsonl: line 3: messages[1] has unknown role 'bot'; expected one of [...]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import fsspec
import pyarrow.parquet as pq

from data_code.instruct.schema import check_chat_row, check_preference_row

JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_chat_dataset(uri: str) -> list[dict]:
    """Chat rows of `uri`, messages normalized to {"role", "content"}; other keys carried through."""
    return _load(uri, check_chat_row)


def load_preference_dataset(uri: str) -> list[dict]:
    """Preference rows of `uri` in TRL's conversational form (plain strings wrapped as messages)."""
    return _load(uri, check_preference_row)


def _load(uri: str, check: Callable[[dict], dict]) -> list[dict]:
    """Every record of `uri` passed through `check`, errors prefixed with the file and line/row."""
    rows = []
    for unit, number, record in _records(uri):
        try:
            rows.append(check(record))
        except ValueError as error:
            raise ValueError(f"{uri}: {unit} {number}: {error}") from None
    if not rows:
        raise ValueError(f"{uri}: the dataset is empty (no rows)")
    return rows


def _records(uri: str) -> Iterator[tuple[str, int, object]]:
    """(unit, 1-based number, record) for each record, unit being 'line' or 'row'."""
    filesystem, path = fsspec.core.url_to_fs(uri)
    if not filesystem.isfile(path):
        raise FileNotFoundError(f"dataset file not found: {uri}")
    name = path.lower()
    if name.endswith(JSONL_SUFFIXES):
        yield from _jsonl_records(filesystem, path, uri)
    elif name.endswith(PARQUET_SUFFIXES):
        yield from _parquet_records(filesystem, path)
    else:
        suffixes = JSONL_SUFFIXES + PARQUET_SUFFIXES
        raise ValueError(f"{uri}: unknown dataset format; expected a name ending in one of {suffixes}")


def _jsonl_records(filesystem, path: str, uri: str) -> Iterator[tuple[str, int, object]]:
    with filesystem.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problem = f"malformed JSON ({error.msg} at column {error.colno})"
                raise ValueError(f"{uri}: line {number}: {problem}") from None
            yield "line", number, record


def _parquet_records(filesystem, path: str) -> Iterator[tuple[str, int, object]]:
    number = 0
    with filesystem.open(path, "rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                number += 1
                yield "row", number, record
