"""A shard set: what training reads, made of per-day token-shard directories, none of them copied or rewritten.

    <set dir>/index.json      the token-shard layout (layout.py) every reader knows, whose entries point into the
                              day directories (paths relative to the set, e.g. ../../token_shards/<v>/train/00000.bin)
                              and carry `excluded_rows`: the rows holding a token of a document not trained on
    <set dir>/shards.json     tokenizer fingerprint, per split counts, sha256 and size of every file it points to
    <set dir>/shard_set.json  the days: day, version, tokens, weight; the exclusions applied and what they cost

So a reader of a shard set is a reader of one token-shard directory (ShardReader, trace, the checks, evaluation):
it only has to skip `excluded_rows`. A superseded or opted-out document is excluded by dropping every packed row
that holds any of its tokens, so not one of its tokens is read, at the price of the neighbours sharing those rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_code.document import SPLITS
from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, read_json

SET_FILE = "shard_set.json"
LAYOUT_KEYS = ("seq_len", "row_tokens", "dtype", "vocab_size", "eos_id", "pad_id")


@dataclass(frozen=True)
class DayShards:
    """One day's token_shards artifact."""

    day: str
    version: str
    directory: Path
    weight: float = 1.0  # mixture weight of the day (1.0: its natural share of rows)


def build_shard_set(
    days: list[DayShards],
    excluded: dict[str, set[str]],
    out_dir: Path,
    final_dir: Path,
    fingerprint: str,
    read_elsewhere: frozenset[str] = frozenset(),
    opted_out: frozenset[str] = frozenset(),
) -> dict:
    """Write index.json, shards.json and shard_set.json for `days` into `out_dir` (published later as `final_dir`,
    which the relative paths are computed from). `excluded` is {day: doc_ids of that day not to read};
    `read_elsewhere` the excluded ones whose other copy, in another day, is read (they are not listed as excluded
    documents, which the audit and the URL index take as "never read"); `opted_out` the excluded ones whose owner
    opted out (listed apart: a model that read one must be rebuilt, see lineage/continuation.py). Raises
    ValueError when a day was made with another tokenizer or another layout, or when the set would have no train
    rows."""
    out_dir = Path(out_dir)
    layout, entries, files, days_out = None, {split: [] for split in SPLITS}, {}, []
    split_stats = {split: {"documents": 0, "tokens": 0, "sequences": 0, "excluded_rows": 0} for split in SPLITS}
    excluded_docs_found: set[str] = set()
    for day in days:
        index, manifest = read_json(day.directory, INDEX_FILE), read_json(day.directory, MANIFEST_FILE)
        if manifest["tokenizer_fingerprint"] != fingerprint:
            raise ValueError(
                f"token_shards of {day.day} ({day.version}) were made with tokenizer "
                f"{manifest['tokenizer_fingerprint']}, the current tokenizer is {fingerprint}: a new tokenizer "
                f"needs every day's shards rebuilt (re-materialize token_shards for {day.day} and the other days)"
            )
        mine = {key: index[key] for key in LAYOUT_KEYS}
        if layout is None:
            layout = mine
        elif mine != layout:
            raise ValueError(f"token_shards of {day.day} have layout {mine}, the other days {layout}")
        relative = Path(os.path.relpath(day.directory, final_dir))
        tokens_here = 0
        for split, split_entries in index["splits"].items():
            for entry in split_entries:
                gone = excluded.get(day.day, set())
                rows = _excluded_rows(day.directory, entry, index["row_tokens"], gone, excluded_docs_found)
                moved = {
                    **entry,
                    "file": (relative / entry["file"]).as_posix(),
                    "spans": (relative / entry["spans"]).as_posix(),
                }
                entries[split].append({**moved, "day": day.day, "excluded_rows": rows})
                for name in (entry["file"], entry["spans"]):
                    files[(relative / name).as_posix()] = manifest["files"][name]
                split_stats[split]["sequences"] += entry["rows"] - len(rows)
                split_stats[split]["excluded_rows"] += len(rows)
            counts = manifest["splits"].get(split, {})  # document tokens, without the last row's padding
            split_stats[split]["documents"] += counts.get("documents", 0)
            split_stats[split]["tokens"] += counts.get("tokens", 0)
            tokens_here += counts.get("tokens", 0)
        days_out.append({"day": day.day, "version": day.version, "tokens": tokens_here, "weight": day.weight})
    if layout is None or split_stats["train"]["sequences"] == 0:
        raise ValueError("the shard set has no train rows: no day has token shards with documents to train on")
    index = {**layout, "splits": entries}
    manifest = {"tokenizer_fingerprint": fingerprint, **layout, "splits": split_stats, "files": files}
    description = {
        "fingerprint": fingerprint,
        "days": days_out,
        "excluded_documents": sorted(excluded_docs_found - read_elsewhere),
        "excluded_by_day": {day: sorted(ids) for day, ids in sorted(excluded.items())},
        "opted_out_documents": sorted(opted_out & excluded_docs_found),
    }
    for name, payload in ((INDEX_FILE, index), (MANIFEST_FILE, manifest), (SET_FILE, description)):
        (out_dir / name).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return {
        "fingerprint": fingerprint,
        "days": len(days_out),
        "nights": days_out,
        "tokens": sum(day["tokens"] for day in days_out),
        "excluded_documents": len(excluded_docs_found - read_elsewhere),
        "opted_out_documents": len(opted_out & excluded_docs_found),
        **{f"{key}_{split}": value for split, stats in split_stats.items() for key, value in stats.items()},
        "seq_len": layout["seq_len"],
    }


def _excluded_rows(directory: Path, entry: dict, row_tokens: int, excluded: set[str], found: set[str]) -> list[int]:
    """Rows of one shard that hold a token of an excluded document (its span may cross several rows)."""
    if not excluded:
        return []
    spans = pq.read_table(Path(directory) / entry["spans"])
    hit = pc.is_in(spans.column("doc_id"), value_set=_as_array(excluded)).to_numpy(zero_copy_only=False)
    if not hit.any():
        return []
    found.update(np.asarray(spans.column("doc_id").to_pylist(), object)[hit].tolist())
    starts = spans.column("token_start").to_numpy()[hit]
    ends = spans.column("token_end").to_numpy()[hit]
    rows = set()
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        rows.update(range(start // row_tokens, (max(end, start + 1) - 1) // row_tokens + 1))
    return sorted(rows)


def documents_in_rows(directory: str | Path, entry: dict, row_tokens: int, rows) -> set[str]:
    """doc_ids with at least one token in `rows` of one shard (the inverse of the excluded rows: a document whose
    span crosses a read row counts as read)."""
    rows = np.unique(np.asarray(rows, np.int64))
    if rows.size == 0:
        return set()
    spans = pq.read_table(Path(directory) / entry["spans"], columns=["doc_id", "token_start", "token_end"])
    starts = spans.column("token_start").to_numpy() // row_tokens
    ends = np.maximum(spans.column("token_end").to_numpy(), spans.column("token_start").to_numpy() + 1) - 1
    ends = ends // row_tokens
    # A span [first row, last row] is read when some read row lies inside it: count read rows <= last and < first.
    hit = np.searchsorted(rows, ends, side="right") > np.searchsorted(rows, starts, side="left")
    return set(np.asarray(spans.column("doc_id").to_pylist(), object)[hit].tolist())


def _as_array(values: set[str]):
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def check_exclusions(directory: str | Path) -> tuple[bool, str]:
    """No row a reader may read holds a token of a document the set excludes (re-derived from the sidecars)."""
    if not is_shard_set(directory):
        return True, "not a shard set: nothing excluded"
    description = set_description(directory)
    by_day = {day: set(ids) for day, ids in description.get("excluded_by_day", {}).items()}
    index = read_json(directory, INDEX_FILE)
    readable = 0
    for entries in index["splits"].values():
        for entry in entries:
            gone = by_day.get(entry.get("day"), set())
            needed = set(_excluded_rows(Path(directory), entry, index["row_tokens"], gone, set()))
            leaked = needed - set(entry.get("excluded_rows") or [])
            if leaked:
                return False, f"{entry['file']}: rows {sorted(leaked)[:5]} hold excluded documents and are readable"
            readable += entry["rows"] - len(entry.get("excluded_rows") or [])
    excluded = len(description["excluded_documents"])
    return True, f"{excluded} excluded documents, none of their tokens in the {readable} readable rows"


def allowed_rows(entry: dict) -> np.ndarray:
    """Row numbers of a shard entry that may be read (all but its `excluded_rows`)."""
    rows = np.arange(entry["rows"])
    excluded = entry.get("excluded_rows") or []
    return np.setdiff1d(rows, np.asarray(excluded, np.int64)) if excluded else rows


def is_shard_set(directory: str | Path) -> bool:
    return (Path(directory) / SET_FILE).is_file()


def set_description(directory: str | Path) -> dict:
    """shard_set.json of a shard set."""
    return json.loads((Path(directory) / SET_FILE).read_text(encoding="utf-8"))
