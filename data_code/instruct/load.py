"""Reading chat and preference datasets from JSONL or Parquet: a local path, s3:// or gs:// (the default
SourcePolicy's schemes; a policy can allow others, e.g. memory:// in tests), or http(s) through the crawler's
address guard, exactly as WARC sources are read (data_code/crawl/remote.py).

The format comes from the file name: `.jsonl`/`.json` (one JSON object per line, blank lines skipped) or
`.parquet`. Every schema error names the file and the 1-based line (JSONL) or row (Parquet):

    ValueError: data/chat.jsonl: line 3: messages[1] has unknown role 'bot'; expected one of [...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import fsspec
import pyarrow.parquet as pq

from data_code.crawl.config import HTTP_SCHEMES, SourcePolicy
from data_code.crawl.remote import local_copy, source_scheme, source_sha256
from data_code.files import excerpt, iter_jsonl
from data_code.instruct.schema import check_chat_row, check_preference_row

JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
FIELD = "files"  # what errors call a dataset file (the instruction/preference assets' config field)
# The longest schema error quoted: the schema's messages quote the row's own values (roles, keys).
_MAX_PROBLEM_CHARS = 100


def load_chat_dataset(uri: str, *, policy: SourcePolicy | None = None) -> list[dict]:
    """Chat rows of `uri`, messages normalized to {"role", "content"}; other keys carried through.

    `policy` (default SourcePolicy()) says which schemes and http(s) hosts may be read.
    """
    return _load(uri, check_chat_row, policy or SourcePolicy())


def load_preference_dataset(uri: str, *, policy: SourcePolicy | None = None) -> list[dict]:
    """Preference rows of `uri` in TRL's conversational form (plain strings wrapped as messages).

    `policy` (default SourcePolicy()) says which schemes and http(s) hosts may be read.
    """
    return _load(uri, check_preference_row, policy or SourcePolicy())


def dataset_sha256(uri: str, *, policy: SourcePolicy | None = None) -> str:
    """sha256 of the dataset file's bytes, read under the same policy as the loaders (for artifact identity)."""
    return source_sha256(uri, policy or SourcePolicy(), field=FIELD)


def _load(uri: str, check: Callable[[dict], dict], policy: SourcePolicy) -> list[dict]:
    """Every record of `uri` passed through `check`, errors prefixed with the file and line/row."""
    rows = []
    for unit, number, record in _records(uri, policy):
        try:
            rows.append(check(record))
        except ValueError as error:
            raise ValueError(f"{uri}: {unit} {number}: {_bounded(str(error))}") from None
    if not rows:
        raise ValueError(f"{uri}: the dataset is empty (no rows)")
    return rows


def _records(uri: str, policy: SourcePolicy) -> Iterator[tuple[str, int, object]]:
    """(unit, 1-based number, record) for each record, unit being 'line' or 'row'."""
    name = _path_of(uri, policy).lower()
    suffixes = JSONL_SUFFIXES + PARQUET_SUFFIXES
    if not name.endswith(suffixes):  # before any download: the name alone decides
        raise ValueError(f"{uri}: unknown dataset format; expected a name ending in one of {suffixes}")
    with local_copy(uri, policy, field=FIELD) as readable:
        filesystem, path = fsspec.core.url_to_fs(readable)
        if not filesystem.isfile(path):
            raise FileNotFoundError(f"dataset file not found: {uri}")
        if name.endswith(JSONL_SUFFIXES):
            yield from _jsonl_records(filesystem, path, uri)
        else:
            yield from _parquet_records(filesystem, path)


def _path_of(uri: str, policy: SourcePolicy) -> str:
    """The path part of `uri` that names its format (an http(s) URL's path, without its query)."""
    if source_scheme(uri, policy, field=FIELD) in HTTP_SCHEMES:
        return urlsplit(uri).path
    return uri


def _bounded(problem: str) -> str:
    """A schema error as quoted: escaped if the row's own values put control characters in it, and cut short."""
    if not problem.isprintable():
        return excerpt(problem, _MAX_PROBLEM_CHARS)
    if len(problem) > _MAX_PROBLEM_CHARS:
        return f"{problem[:_MAX_PROBLEM_CHARS]}... ({len(problem)} characters)"
    return problem


def _jsonl_records(filesystem, path: str, uri: str) -> Iterator[tuple[str, int, object]]:
    with filesystem.open(path, "rt", encoding="utf-8") as handle:
        for number, record in iter_jsonl(handle, uri):
            yield "line", number, record


def _parquet_records(filesystem, path: str) -> Iterator[tuple[str, int, object]]:
    number = 0
    with filesystem.open(path, "rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                number += 1
                yield "row", number, record
