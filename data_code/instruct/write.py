"""Writing chat or preference rows to Parquet, with a validation report instead of silent drops.

Each row is checked with the loaders' rules (data_code.instruct.schema); a row that fails, or whose longest
message exceeds `max_chars`, is left out of the file and listed in the report with its reason, so the caller
can record how many rows were dropped and why.
"""

from __future__ import annotations

from collections import Counter

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from data_code.instruct.schema import check_chat_row, check_preference_row, row_kind

CHECKS = {"chat": check_chat_row, "preference": check_preference_row}
MESSAGE_FIELDS = {"chat": ("messages",), "preference": ("prompt", "chosen", "rejected")}
MAX_LISTED = 100  # rejected rows listed in the report (all are counted)


def write_dataset(rows: list[dict], path: str, *, max_chars: int | None = None) -> dict:
    """Write the valid rows of `rows` to Parquet at `path` (local or fsspec URL); return the validation report.

    Report: kind ("chat" | "preference"), rows_in, rows_written, rows_rejected, rejected_by_reason,
    rejected (first MAX_LISTED: index, example_id, reason), splits (written rows per split), path.
    Raises ValueError when `rows` is empty, mixes chat and preference rows, or no row is valid.
    """
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    kinds = {row_kind(row) if isinstance(row, dict) else "chat" for row in rows}
    if len(kinds) > 1:
        raise ValueError(f"{path}: rows mix chat and preference examples; write them to separate files")
    kind = kinds.pop()
    kept, rejected = [], []
    for index, row in enumerate(rows):
        reason = _problem(row, kind, max_chars)
        if reason:
            example_id = row.get("example_id") if isinstance(row, dict) else None
            rejected.append({"index": index, "example_id": example_id, "reason": reason})
        else:
            kept.append(CHECKS[kind](row))
    if not kept:
        raise ValueError(f"{path}: none of {len(rows)} rows is valid; first problem: {rejected[0]['reason']}")
    with fsspec.open(path, "wb") as handle:
        pq.write_table(pa.Table.from_pylist(kept), handle)
    return {
        "kind": kind,
        "path": path,
        "rows_in": len(rows),
        "rows_written": len(kept),
        "rows_rejected": len(rejected),
        "rejected_by_reason": dict(Counter(item["reason"].split(":")[0] for item in rejected)),
        "rejected": rejected[:MAX_LISTED],
        "splits": dict(Counter(row.get("split", "unsplit") for row in kept)),
    }


def _problem(row, kind: str, max_chars: int | None) -> str | None:
    """Why `row` cannot be written ('invalid: ...' or 'too_long: ...'), or None when it can."""
    try:
        checked = CHECKS[kind](row)
    except ValueError as error:
        return f"invalid: {error}"
    if max_chars is not None:
        longest = max(len(m["content"]) for field in MESSAGE_FIELDS[kind] for m in checked[field])
        if longest > max_chars:
            return f"too_long: a message has {longest} characters (max_chars={max_chars})"
    return None
