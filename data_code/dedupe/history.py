"""Dedupe against history: what earlier days kept, as a persistent index of keys, one part per day.

A nightly crawl brings back mostly pages it has seen before. Day D's dedupe therefore runs in two steps: the
usual exact + near dedupe within D (stage.deduplicate, either engine), then this module, which compares D's
documents with what earlier days kept:

    same URL, same normalized text as its newest kept version     unchanged: dropped (nothing new to learn)
    same URL, other text                                          supersedes that version: kept, and the older
                                                                  version is listed in superseded.parquet
    another URL's kept text, exactly                              exact_duplicate_of_history:<doc_id>@<day>
    another URL's kept text, Jaccard >= threshold                 near_duplicate_of_history:<doc_id>@<day>

The index is one *part* per day, written by `write_part` from that day's kept documents (and so rebuildable
from the day artifacts at any time: `lmforge history rebuild`):

    <index root>/<day>/keys.parquet    per kept document: doc_id, url, row (in the day's documents.parquet),
                                       exact key (16 bytes), LSH band keys (one uint64 per band)
    <index root>/<day>/superseded.parquet   the older versions this day superseded
    <index root>/<day>/part.json       day, the artifact version it was made from, the LSH parameters, row count,
                                       sha256 of both files; written last, so a part without it is incomplete

A day has exactly one part: re-materializing a day (another config, another version) replaces its part. Reading
the history costs ~140 bytes of keys per earlier document; no earlier document's text is read except the few that
share an LSH band with one of D's documents, read by row group from their day's artifact to verify Jaccard.
Why band-key tables of our own rather than datasketch's MinHashLSH with a storage backend: the keys are the ones
both engines already compute (so a history lookup gives the same answer whatever the engine), a part is one
immutable file per day that rebuilds from its artifact, and there is no server to run (MinHashLSH's persistent
backends are Redis and Cassandra); bench.nightly measures the lookup against MinHashLSH's in-memory index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_code.dedupe.config import DedupeConfig, history_window
from data_code.dedupe.core import EMPTY_BAND_KEY, jaccard
from data_code.dedupe.local_engine import hash_batch, shingle_sets
from data_code.files import file_sha256

KEYS_FILE = "keys.parquet"
SUPERSEDED_FILE = "superseded.parquet"
PART_FILE = "part.json"
REBUILD_COMMAND = "lmforge history rebuild"

SUPERSEDED_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),  # the older version, no longer trained on
        pa.field("day", pa.string(), nullable=False),  # the day that older version was kept
        pa.field("new_doc_id", pa.string(), nullable=False),  # the version that replaces it
        pa.field("new_day", pa.string(), nullable=False),
        pa.field("new_kept", pa.bool_(), nullable=False),  # False: the new version was itself a duplicate
    ]
)


def superseded_rows(path: str) -> list[dict]:
    """The rows of a day artifact's superseded.parquet."""
    return pq.read_table(path).to_pylist()


def history_days(history: str, day: str, earlier: list[str]) -> list[str]:
    """The earlier days (YYYY-MM-DD, before `day`) that config `history` compares `day` with, oldest first."""
    before = sorted(d for d in earlier if d < day)
    window = history_window(history)
    if window is None:
        return before
    first = str(np.datetime64(day) - np.timedelta64(window, "D"))
    return [d for d in before if d >= first] if window else []


def lsh_parameters(config: DedupeConfig) -> dict:
    """What a part's keys depend on: documents hashed with other values cannot be compared with it."""
    names = ("ngram", "num_perm", "bands", "rows", "seed", "max_text_chars")
    return {name: getattr(config, name) for name in names}


class HistoryError(ValueError):
    """A history part that is missing, incomplete, corrupt or made otherwise; the message says how to fix it."""


# ---- writing a part -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayArtifact:
    """One earlier day as the history sees it: its dedupe artifact's version and files, and its index part."""

    day: str
    version: str  # that day's deduplicated_documents version
    documents: str  # its kept documents.parquet
    superseded: str  # its superseded.parquet ("" when the artifact predates supersession)
    part: Path  # its index part directory


def hash_texts(texts: pa.Array, config: DedupeConfig, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(exact keys (N, 2) uint64, band keys (N, bands) uint64) of texts, hashed in-process in batches."""
    exact, bands = [np.empty((0, 2), np.uint64)], [np.empty((0, config.bands), np.uint64)]
    for start in range(0, len(texts), batch):
        keys, band_keys = hash_batch(texts.slice(start, batch), config)
        exact.append(keys.view(np.uint64).reshape(-1, 2))
        bands.append(band_keys)
    return np.concatenate(exact), np.concatenate(bands)


def write_part(artifact: DayArtifact, config: DedupeConfig) -> dict:
    """(Re)write the index part of `artifact`'s day from its kept documents; replaces any earlier part of that day.

    Written beside the final place and renamed into it, part.json last: a reader sees the old part or the new one.
    """
    table = pq.read_table(artifact.documents, columns=["doc_id", "url", "text"])
    exact, bands = hash_texts(table.column("text").combine_chunks(), config)
    keys = pa.table(
        {
            "doc_id": table.column("doc_id"),
            "url": table.column("url"),
            "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
            "exact_key": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), len(exact), [None, pa.py_buffer(np.ascontiguousarray(exact).tobytes())]
            ),
            "band_keys": pa.FixedSizeListArray.from_arrays(pa.array(bands.ravel(), pa.uint64()), config.bands),
        }
    )
    superseded = (
        pq.read_table(artifact.superseded) if artifact.superseded and Path(artifact.superseded).exists() else None
    )
    superseded = SUPERSEDED_SCHEMA.empty_table() if superseded is None else superseded.cast(SUPERSEDED_SCHEMA)
    final = Path(artifact.part)
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(keys, staging / KEYS_FILE)
    pq.write_table(superseded, staging / SUPERSEDED_FILE)
    description = {
        "day": artifact.day,
        "version": artifact.version,
        "documents": artifact.documents,
        "rows": table.num_rows,
        "lsh": lsh_parameters(config),
        "sha256": {name: file_sha256(staging / name) for name in (KEYS_FILE, SUPERSEDED_FILE)},
    }
    (staging / PART_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return description


def part_is_current(artifact: DayArtifact, config: DedupeConfig) -> bool:
    """Whether the day's part exists, is complete and was made from this artifact with these LSH parameters."""
    try:
        description = json.loads((Path(artifact.part) / PART_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return description.get("version") == artifact.version and description.get("lsh") == lsh_parameters(config)


# ---- reading the history --------------------------------------------------------------------------------------


def _problem(artifact: DayArtifact, what: str) -> HistoryError:
    return HistoryError(
        f"history index part of {artifact.day} (deduplicated_documents@{artifact.version}) at {artifact.part} "
        f"{what}: rebuild the index from the day artifacts with `{REBUILD_COMMAND}`"
    )


def _read_part(artifact: DayArtifact, config: DedupeConfig) -> tuple[pa.Table, pa.Table]:
    """(keys, superseded) of one day's part, after checking it is complete, current and intact."""
    part = Path(artifact.part)
    if not (part / PART_FILE).is_file():
        raise _problem(artifact, "is missing" if not part.exists() else f"is incomplete (no {PART_FILE})")
    try:
        description = json.loads((part / PART_FILE).read_text(encoding="utf-8"))
    except ValueError as error:
        raise _problem(artifact, f"is corrupt ({PART_FILE} is not JSON: {error})") from None
    if description.get("version") != artifact.version:
        raise _problem(artifact, f"was made from version {description.get('version')}, not the current one")
    if description.get("lsh") != lsh_parameters(config):
        raise HistoryError(
            f"history index part of {artifact.day} at {part} was hashed with {description.get('lsh')}, this run "
            f"uses {lsh_parameters(config)}: documents hashed differently cannot be compared; rebuild the index "
            f"with this run's parameters (`{REBUILD_COMMAND} --config RUN_CONFIG.yaml`), or set history: none"
        )
    for name, digest in description.get("sha256", {}).items():
        if not (part / name).is_file():
            raise _problem(artifact, f"is missing {name}")
        if file_sha256(part / name) != digest:
            raise _problem(artifact, f"is corrupt ({name} does not match its sha256 in {PART_FILE})")
    return pq.read_table(part / KEYS_FILE), pq.read_table(part / SUPERSEDED_FILE)


@dataclass
class HistoryIndex:
    """The keys of every document earlier days kept and still train on (superseded versions left out)."""

    days: list[DayArtifact]
    day_of: np.ndarray  # (H,) index into days
    doc_ids: list[str]
    urls: list[str]
    rows: np.ndarray  # (H,) row in its day's documents.parquet
    exact: np.ndarray  # (H, 2) uint64
    band_keys: np.ndarray  # (H, bands) uint64
    newest_of_url: dict[str, int] = field(default_factory=dict)  # url -> its newest version's history row

    @classmethod
    def load(cls, days: list[DayArtifact], config: DedupeConfig) -> HistoryIndex:
        """Read and check the parts of `days` (oldest first); HistoryError naming the first bad one."""
        tables, superseded = [], set()
        for number, artifact in enumerate(days):
            keys, gone = _read_part(artifact, config)
            tables.append(keys.append_column("day_of", pa.array(np.full(keys.num_rows, number, np.int64))))
            superseded.update(gone.column("doc_id").to_pylist())
        if not tables:
            return cls.empty(config)
        keys = pa.concat_tables(tables)
        if superseded:
            alive = ~np.isin(np.asarray(keys.column("doc_id").to_pylist(), object), list(superseded))
            keys = keys.filter(pa.array(alive))
        exact = np.frombuffer(keys.column("exact_key").combine_chunks().buffers()[1], np.uint64)
        exact = exact[: 2 * keys.num_rows].reshape(-1, 2) if keys.num_rows else np.empty((0, 2), np.uint64)
        flat = keys.column("band_keys").combine_chunks().flatten().to_numpy()
        index = cls(
            days=days,
            day_of=keys.column("day_of").to_numpy(),
            doc_ids=keys.column("doc_id").to_pylist(),
            urls=keys.column("url").to_pylist(),
            rows=keys.column("row").to_numpy(),
            exact=exact.copy(),
            band_keys=flat.reshape(-1, config.bands),
        )
        index.newest_of_url = {url: row for row, url in enumerate(index.urls)}  # later days overwrite earlier
        return index

    @classmethod
    def empty(cls, config: DedupeConfig) -> HistoryIndex:
        return cls([], np.empty(0, np.int64), [], [], np.empty(0, np.int64), np.empty((0, 2), np.uint64),
                   np.empty((0, config.bands), np.uint64))  # fmt: skip

    def __len__(self) -> int:
        return len(self.doc_ids)

    def where(self, row: int) -> str:
        """'<doc_id>@<day>' of history row `row`: how rejection reasons name it."""
        return f"{self.doc_ids[row]}@{self.days[self.day_of[row]].day}"

    def exact_matches(self, exact: np.ndarray) -> np.ndarray:
        """(N,) the history row holding each of `exact` (N, 2) keys' text, or -1."""
        found = np.full(len(exact), -1, np.int64)
        if not len(self) or not len(exact):
            return found
        order = np.lexsort((self.exact[:, 1], self.exact[:, 0]))
        first = self.exact[order, 0]
        spot = np.minimum(np.searchsorted(first, exact[:, 0]), len(order) - 1)
        hit = (first[spot] == exact[:, 0]) & (self.exact[order[spot], 1] == exact[:, 1])
        found[hit] = order[spot[hit]]
        return found

    def band_candidates(self, band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document, history row) pairs sharing at least one LSH band key (the empty-text key never matches)."""
        if not len(self) or not len(band_keys):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        flat = self.band_keys.ravel()
        order = np.argsort(flat, kind="stable")
        keys = flat[order]
        query = band_keys.ravel()
        low, high = np.searchsorted(keys, query, "left"), np.searchsorted(keys, query, "right")
        counts = np.where(query == EMPTY_BAND_KEY, 0, high - low)
        documents = np.repeat(np.arange(len(query)) // band_keys.shape[1], counts)
        starts = np.repeat(low, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        rows = order[starts] // self.band_keys.shape[1]
        pairs = np.unique(np.stack([documents, rows], axis=1), axis=0) if len(rows) else np.empty((0, 2), np.int64)
        return pairs[:, 0], pairs[:, 1]

    def texts(self, rows: np.ndarray) -> dict[int, str]:
        """{history row: text}, read from each day's artifact by row group (only the groups holding them)."""
        found: dict[int, str] = {}
        for number in np.unique(self.day_of[rows]).tolist() if len(rows) else []:
            mine = rows[self.day_of[rows] == number]
            file = pq.ParquetFile(self.days[number].documents)
            sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
            bounds = np.cumsum([0, *sizes])
            groups = np.searchsorted(bounds, self.rows[mine], "right") - 1
            for group in np.unique(groups).tolist():
                texts = file.read_row_group(group, columns=["text"]).column("text")
                for row in mine[groups == group].tolist():
                    found[row] = texts[int(self.rows[row] - bounds[group])].as_py()
        return found


# ---- matching a day against the history -----------------------------------------------------------------------


@dataclass
class HistoryMatch:
    """What comparing one day's documents with the history decided."""

    removed: np.ndarray  # (R,) rows of the day's input removed because of the history, sorted
    rejections: pa.Table  # REJECTION_SCHEMA rows for them
    superseded: pa.Table  # SUPERSEDED_SCHEMA
    unchanged: int = 0
    superseding: int = 0  # kept documents that replace an older version of their URL
    new: int = 0  # kept documents of URLs the history does not hold
    exact_duplicates_of_history: int = 0
    near_duplicates_of_history: int = 0
    history_days: int = 0
    history_documents: int = 0
    history_candidate_pairs: int = 0  # (document, history row) pairs sharing an LSH band
    history_lookup_s: float = 0.0

    def counts(self) -> dict:
        names = [name for name in asdict(self) if name not in ("removed", "rejections", "superseded")]
        return {name: getattr(self, name) for name in names}


def match_history(
    documents: pa.Table, within_removed: np.ndarray, history: HistoryIndex, day: str, config: DedupeConfig
) -> HistoryMatch:
    """Compare a day's input documents (doc_id, url, text; input order) with `history`.

    `within_removed` are the rows the within-day dedupe removed: they are never kept, but a changed page among
    them still supersedes its older version (the page no longer says what was trained on).
    """
    from data_code.document import REJECTION_SCHEMA

    started = time.perf_counter()
    count = documents.num_rows
    kept = np.ones(count, bool)
    kept[within_removed] = False
    urls, doc_ids = documents.column("url").to_pylist(), documents.column("doc_id").to_pylist()
    languages = documents.column("language").to_pylist() if "language" in documents.column_names else [None] * count
    exact, bands = hash_texts(documents.column("text").combine_chunks(), config)
    newest = np.array([history.newest_of_url.get(url, -1) for url in urls], np.int64)
    same_text = (
        (newest >= 0) & np.all(history.exact[np.maximum(newest, 0)] == exact, axis=1)
        if len(history)
        else (np.zeros(count, bool))
    )
    reasons: dict[int, tuple[str, float]] = {}
    for row in np.flatnonzero(kept & same_text):
        reasons[int(row)] = (f"unchanged:{history.where(newest[row])}", 1.0)
    # Another URL's text: exact first, then LSH candidates verified by true Jaccard.
    exact_rows = history.exact_matches(exact)
    for row in np.flatnonzero(kept & ~same_text & (exact_rows >= 0)):
        if history.urls[exact_rows[row]] != urls[row]:
            reasons[int(row)] = (f"exact_duplicate_of_history:{history.where(exact_rows[row])}", 1.0)
    open_rows = np.array([r for r in np.flatnonzero(kept & ~same_text) if int(r) not in reasons], np.int64)
    left, right = history.band_candidates(bands[open_rows]) if len(open_rows) else (np.empty(0), np.empty(0))
    left = open_rows[left.astype(np.int64)] if len(left) else np.empty(0, np.int64)
    other_url = np.array([history.urls[h] != urls[d] for d, h in zip(left, right, strict=True)], bool)
    left, right = left[other_url] if len(left) else left, right[other_url] if len(right) else right
    best: dict[int, tuple[float, int]] = {}
    if len(left):
        old_texts = history.texts(right.astype(np.int64))
        new_sets = _sets(documents.column("text").take(pa.array(np.unique(left))), config)
        new_of = dict(zip(np.unique(left).tolist(), new_sets, strict=True))
        old_sets = dict(zip(old_texts, _sets(pa.array(list(old_texts.values()), pa.string()), config), strict=True))
        for d, h in zip(left.tolist(), right.tolist(), strict=True):
            similarity = jaccard(new_of[d], old_sets[h])
            if (similarity >= config.threshold or not config.verify_candidates) and similarity > best.get(d, (-1, 0))[
                0
            ]:
                best[d] = (similarity, h)
    for row, (similarity, h) in best.items():
        reasons[row] = (f"near_duplicate_of_history:{history.where(h)}", similarity)
    removed = np.array(sorted(reasons), np.int64)
    kept[removed] = False
    superseded = [
        {
            "url": urls[row],
            "doc_id": history.doc_ids[newest[row]],
            "day": history.days[history.day_of[newest[row]]].day,
            "new_doc_id": doc_ids[row],
            "new_day": day,
            "new_kept": bool(kept[row]),
        }
        for row in np.flatnonzero((newest >= 0) & ~same_text)
        if history.doc_ids[newest[row]] != doc_ids[row]
    ]
    superseded = _first_per_old_version(superseded)
    kinds = [reason.split(":")[0] for reason, _ in reasons.values()]
    rejections = pa.table(
        {
            "doc_id": [doc_ids[row] for row in removed],
            "url": [urls[row] for row in removed],
            "stage": ["dedupe"] * len(removed),
            "reason": [reasons[row][0] for row in removed],
            "score": [float(reasons[row][1]) for row in removed],
            "detail": ["against history" for _ in removed],
            "language": [languages[row] for row in removed],
        },
        schema=REJECTION_SCHEMA,
    )
    superseding = {entry["new_doc_id"] for entry in superseded if entry["new_kept"]}
    return HistoryMatch(
        removed=removed,
        rejections=rejections,
        superseded=pa.Table.from_pylist(superseded, schema=SUPERSEDED_SCHEMA),
        unchanged=int(same_text.sum()),  # every unchanged page, also one the within-day dedupe removed first
        superseding=len(superseding),
        new=int(sum(1 for row in np.flatnonzero(kept) if newest[row] < 0)),
        exact_duplicates_of_history=kinds.count("exact_duplicate_of_history"),
        near_duplicates_of_history=kinds.count("near_duplicate_of_history"),
        history_days=len(history.days),
        history_documents=len(history),
        history_candidate_pairs=int(len(left)),
        history_lookup_s=round(time.perf_counter() - started, 3),
    )


def _sets(texts: pa.Array, config: DedupeConfig) -> list[np.ndarray]:
    flat, offsets = shingle_sets(texts, config)
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def _first_per_old_version(entries: list[dict]) -> list[dict]:
    """One row per superseded version (a URL fetched twice in a day supersedes its old version once: the kept
    copy, else the first)."""
    chosen: dict[str, dict] = {}
    for entry in entries:
        current = chosen.get(entry["doc_id"])
        if current is None or (entry["new_kept"] and not current["new_kept"]):
            chosen[entry["doc_id"]] = entry
    return list(chosen.values())
