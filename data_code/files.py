"""Small file facts every layer needs, defined once: a file's sha256, reading JSON Lines, quoting foreign bytes.

from data_code.files import file_sha256, read_jsonl
file_sha256("lake/token_shards/<v>/train/shard-00000.bin")   # hex digest; local path, UPath or open file
read_jsonl("run/metrics.jsonl")                              # [record, ...]; invalid lines name file:line
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

CHUNK_BYTES = 8 << 20  # read large files in 8 MiB blocks: constant memory, few system calls
EXCERPT_CHARS = 60  # the most characters of someone else's content an error message quotes


def file_sha256(path: str | os.PathLike | Any, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of the file at `path`: a local path, or a UPath / anything with .open("rb") (remote stores)."""
    if hasattr(path, "open"):
        with path.open("rb") as handle:
            return stream_sha256(handle, chunk_bytes)
    with open(path, "rb") as handle:
        return stream_sha256(handle, chunk_bytes)


def stream_sha256(handle: IO[bytes], chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of what is left to read in an open binary file (an fsspec file, a socket body...)."""
    digest = hashlib.sha256()
    while block := handle.read(chunk_bytes):
        digest.update(block)
    return digest.hexdigest()


def iter_jsonl(lines: Iterable[str], source: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank JSON line; ValueError naming `source` and the line when invalid."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: line {number}: invalid JSON ({error.msg} at column {error.colno})") from None


def read_jsonl(path: str | os.PathLike, *, missing_ok: bool = False) -> list[Any]:
    """Every value of a JSON Lines file ([] for a missing file when `missing_ok`)."""
    if missing_ok and not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [value for _, value in iter_jsonl(lines, str(path))]


def excerpt(content: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """Foreign content quoted for an error message: at most `limit` characters between double quotes, with every
    control, non-ASCII, backslash or quote character escaped (a CR shows as the two characters \\r), and the full
    size added when it was cut: b"<p>" + CR LF + 100 x's with limit 10 gives "<p>\\r\\nxxx"... (105 bytes).
    """
    head = content[: limit * 4]  # escaping never shortens text: this much always fills `limit`
    text = head.decode("latin-1") if isinstance(head, bytes) else head
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    if len(escaped) <= limit and len(head) == len(content):
        return f'"{escaped}"'
    unit = "bytes" if isinstance(content, bytes) else "characters"
    return f'"{escaped[:limit]}"... ({len(content)} {unit})'
