"""Dagster metadata builders shared by the stage assets: count tables and document samples."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema


def count_table(counts: Mapping[str, int], key: str, *, limit: int = 50) -> MetadataValue:
    """A two-column table (key, count), largest first, at most `limit` rows."""
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    schema = TableSchema(columns=[TableColumn(key, "string"), TableColumn("count", "int")])
    return MetadataValue.table([TableRecord({key: name, "count": int(count)}) for name, count in rows], schema=schema)


def sample_markdown(row: Mapping[str, object], text_chars: int = 1200) -> MetadataValue:
    """One document shown as Markdown: its provenance fields, then the start of its text."""
    text = str(row.get("text") or "")
    fields = ["url", "domain", "title", "language", "license", "robots", "robots_meta", "warc_file", "warc_offset"]
    lines = [f"- **{name}**: `{row.get(name)}`" for name in fields if row.get(name) not in (None, "")]
    excerpt = text[:text_chars] + (" …" if len(text) > text_chars else "")
    quoted = "\n".join(f"> {line}" if line else ">" for line in excerpt.splitlines())
    return MetadataValue.md("\n".join(lines) + "\n\n" + quoted)


def key_numbers(stats: Mapping[str, object], keys: tuple[str, ...], digits: int | None = None) -> dict[str, object]:
    """The entries of `stats` named in `keys` that are set, in that order (floats rounded to `digits` when given):
    a stage's headline numbers for the UI."""
    return {
        key: round(value, digits) if digits is not None and isinstance(value, float) else value
        for key in keys
        if (value := stats.get(key)) is not None
    }
