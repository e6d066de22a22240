"""The training corpus: a manifest of day artifacts and exclusions, never a copy of their documents.

    <corpus dir>/corpus.json          the days: day, asset, version, documents file, documents, tokens, excluded
    <corpus dir>/exclusions.parquet   doc_id, url, day, reason: documents of those days that are not trained on:
                                      superseded:<new doc_id>@<day> (a changed page's older version),
                                      opted_out:<entry>, same_document_as:<day> (a page kept on two days)

Readers go through `iter_documents` / `read_documents`, which accept a corpus directory or a plain Document Parquet
file, so every stage that reads "the corpus" reads the same documents: the days' files minus the exclusions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CORPUS_FILE = "corpus.json"
EXCLUSIONS_FILE = "exclusions.parquet"
EXCLUSION_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("day", pa.string(), nullable=False),  # the day whose artifact holds the document
        pa.field("reason", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class CorpusDay:
    """One day's contribution: its filtered documents and the older versions its pages superseded."""

    day: str
    version: str  # the filtered_documents version
    documents: str  # its documents.parquet
    superseded: list[dict]  # rows of that day's superseded.parquet: url, doc_id (older version), new_doc_id, ...
    tokens: int | None = None  # its whitespace words, from its stats (None: counted from the text)


def build_corpus(days: list[CorpusDay], out_dir: Path, opted_out: Callable[[str, str], str | None]) -> dict:
    """Write corpus.json and exclusions.parquet for `days` (oldest first); return stats.

    `opted_out(url, domain)` names the opt-out entry a document matches, or None. Stats: documents (trained on),
    tokens (whitespace words), excluded (by reason kind), domains, and per day a row of the nights table.
    """
    superseded = {row["doc_id"]: row for day in days for row in day.superseded}
    seen: dict[str, str] = {}
    exclusions, nights, domains = [], [], Counter()
    total_documents = total_tokens = 0
    for day in days:
        # Only the small columns of earlier days are read (ids, URLs, domains), never their text: the cost of a
        # night's corpus grows with the number of documents, by ~100 bytes each, not with their text.
        table = pq.read_table(day.documents, columns=["doc_id", "url", "domain"])
        words = _words(day, table.num_rows)
        excluded_here, documents_here, tokens_here = Counter(), 0, 0
        for doc_id, url, domain, count in zip(
            table.column("doc_id").to_pylist(),
            table.column("url").to_pylist(),
            table.column("domain").to_pylist(),
            words,
            strict=True,
        ):
            reason = None
            if doc_id in superseded:
                newer = superseded[doc_id]
                reason = f"superseded:{newer['new_doc_id']}@{newer['new_day']}"
            elif (entry := opted_out(url, domain or "")) is not None:
                reason = f"opted_out:{entry}"
            elif doc_id in seen:
                reason = f"same_document_as:{seen[doc_id]}"
            seen.setdefault(doc_id, day.day)
            if reason is not None:
                exclusions.append({"doc_id": doc_id, "url": url, "day": day.day, "reason": reason})
                excluded_here[reason.split(":")[0]] += 1
                continue
            documents_here += 1
            tokens_here += count or 0
            domains[domain] += 1
        nights.append(
            {
                "day": day.day,
                "version": day.version,
                "documents": table.num_rows,
                "trained_on": documents_here,
                "tokens": round(tokens_here),
                "superseded_by_this_day": len(day.superseded),
                **{f"excluded_{kind}": count for kind, count in sorted(excluded_here.items())},
            }
        )
        total_documents += documents_here
        total_tokens += round(tokens_here)
    out_dir = Path(out_dir)
    pq.write_table(pa.Table.from_pylist(exclusions, schema=EXCLUSION_SCHEMA), out_dir / EXCLUSIONS_FILE)
    entries = [{**asdict(day), "superseded": len(day.superseded)} for day in days]
    (out_dir / CORPUS_FILE).write_text(
        json.dumps({"days": entries, "exclusions": len(exclusions)}, indent=2) + "\n", encoding="utf-8"
    )
    return {
        "documents": total_documents,
        "tokens": total_tokens,
        "excluded": dict(Counter(row["reason"].split(":")[0] for row in exclusions)),
        "nights": nights,
        "domains": dict(domains),
    }


def _words(day: CorpusDay, rows: int) -> list[float]:
    """Words per document of a day: its stats' total spread evenly (approximate), or counted from the text."""
    if day.tokens is not None:
        return [day.tokens / rows] * rows if rows else []
    texts = pq.read_table(day.documents, columns=["text"]).column("text")
    return pc.list_value_length(pc.utf8_split_whitespace(texts)).to_pylist()


# ---- reading a corpus -----------------------------------------------------------------------------------------


def is_corpus(source: str | Path) -> bool:
    """Whether `source` is a corpus directory (corpus.json), rather than one Document Parquet file."""
    return (Path(source) / CORPUS_FILE).is_file()


def _days(source: str | Path) -> list[dict]:
    return json.loads((Path(source) / CORPUS_FILE).read_text(encoding="utf-8"))["days"]


def corpus_files(source: str | Path) -> list[str]:
    """The Document Parquet files a corpus reads (one per day), or [source] for a plain file."""
    return [entry["documents"] for entry in _days(source)] if is_corpus(source) else [str(source)]


def excluded_ids(source: str | Path) -> dict[str, set[str]]:
    """{day: doc_ids of that day's file not trained on} of a corpus ({} for a plain file). Per day, because one
    document may sit in two days' files (kept on both under history: none) and only the later copy is excluded."""
    found: dict[str, set[str]] = {}
    for row in exclusions(source).select(["doc_id", "day"]).to_pylist():
        found.setdefault(row["day"], set()).add(row["doc_id"])
    return found


def read_elsewhere(source: str | Path) -> frozenset[str]:
    """Excluded doc_ids whose other copy, in an earlier day's file, is read (same_document_as:<day>)."""
    rows = exclusions(source).select(["doc_id", "reason"]).to_pylist()
    return frozenset(row["doc_id"] for row in rows if row["reason"].startswith("same_document_as:"))


def opted_out_ids(source: str | Path) -> frozenset[str]:
    """Excluded doc_ids whose owner opted out (opted_out:<entry>): unlike a superseded version, which a model may
    have read legitimately, a model that read one of these has to be rebuilt without it."""
    rows = exclusions(source).select(["doc_id", "reason"]).to_pylist()
    return frozenset(row["doc_id"] for row in rows if row["reason"].startswith("opted_out:"))


def exclusions(source: str | Path) -> pa.Table:
    """The exclusions table of a corpus (empty for a plain file)."""
    if not is_corpus(source):
        return EXCLUSION_SCHEMA.empty_table()
    return pq.read_table(Path(source) / EXCLUSIONS_FILE)


def iter_documents(source: str | Path, columns: list[str], batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns` of the documents a corpus trains on (days in order, exclusions left out)."""
    from data_code.tokenizer.corpus import open_documents

    excluded = excluded_ids(source)
    days = [entry["day"] for entry in _days(source)] if is_corpus(source) else [""]
    for path, day in zip(corpus_files(source), days, strict=True):
        gone = excluded.get(day)
        read = columns if "doc_id" in columns or not gone else [*columns, "doc_id"]
        for batch in open_documents(path, read).iter_batches(batch_size=batch_size, columns=read):
            if gone:
                batch = batch.filter(pc.invert(pc.is_in(batch.column("doc_id"), pa.array(sorted(gone), pa.string()))))
            if batch.num_rows:
                yield batch.select(columns)


def read_documents(source: str | Path, columns: list[str]) -> pa.Table:
    """All of `columns` of the documents a corpus trains on, as one table."""
    batches = list(iter_documents(source, columns))
    if not batches:
        from data_code.document import DOCUMENT_SCHEMA

        return pa.table({name: pa.array([], DOCUMENT_SCHEMA.field(name).type) for name in columns})
    return pa.Table.from_batches(batches)


def count_documents(source: str | Path) -> int:
    """Documents a corpus trains on."""
    return sum(batch.num_rows for batch in iter_documents(source, ["doc_id"]))
