"""A small real corpus for benchmarks and tests: standard-library docstring paragraphs as Documents."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_code.document import DOCUMENT_SCHEMA, make_doc_id
from data_code.filters.quality_examples import stdlib_paragraphs

HOSTS = ("docs.python.org", "peps.python.org", "wiki.python.org")
# Texts a tokenizer or packer could get wrong: a special token spelled out, non-ASCII, empty and blank texts.
TRICKY_TEXTS = (
    "A page that quotes <|endoftext|> and <|im_start|>user in its text must still round-trip.",
    "Unicode: naïve café, Ελληνικά, 日本語のテキスト, emoji 🚀🎉, and a tab\tbetween words.",
    "",
    "   \n\n  ",
)


def corpus_texts() -> list[str]:
    return list(stdlib_paragraphs()) + list(TRICKY_TEXTS)


def host_of(position: int, skewed: bool) -> str:
    """Round-robin hosts, or a skewed 70/20/10 mixture for the temperature tests."""
    if not skewed:
        return HOSTS[position % len(HOSTS)]
    bucket = position % 10
    return HOSTS[0] if bucket < 7 else HOSTS[1] if bucket < 9 else HOSTS[2]


def write_corpus(path: Path, texts: list[str], *, skewed: bool = False, row_group_size: int = 256) -> Path:
    """A Document Parquet of `texts`, with doc_ids, URLs, licences and fetch times that differ per document."""
    rows = []
    for position, text in enumerate(texts):
        host = host_of(position, skewed)
        url = f"https://{host}/page/{position}"
        rows.append(
            {
                "doc_id": make_doc_id(url, hashlib.sha256(text.encode()).hexdigest()),
                "url": url,
                "domain": host,
                "fetch_time": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=position),
                "license": "https://creativecommons.org/licenses/by/4.0/" if position % 2 else None,
                "text": text,
            }
        )
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path, row_group_size=row_group_size)
    return path


def read_corpus(path: Path) -> dict[str, dict]:
    """doc_id -> the document's row."""
    return {row["doc_id"]: row for row in pq.read_table(path).to_pylist()}
