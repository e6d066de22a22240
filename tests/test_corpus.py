"""The training corpus is a manifest of day files and exclusions: readers see the days minus what is excluded."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from data_code.corpus import (
    CORPUS_FILE,
    CorpusDay,
    build_corpus,
    corpus_files,
    count_documents,
    exclusions,
    read_documents,
)
from data_code.document import DOCUMENT_SCHEMA
from data_code.tokenizer.corpus import iter_batches


def write_documents(path, rows):
    defaults = {name: None for name in DOCUMENT_SCHEMA.names}
    table = pa.Table.from_pylist([{**defaults, **row} for row in rows], schema=DOCUMENT_SCHEMA)
    pq.write_table(table, path)
    return str(path)


def never(url, domain):
    return None


def two_days(tmp_path):
    day1 = write_documents(
        tmp_path / "d1.parquet",
        [
            {"doc_id": "a", "url": "http://x.org/a", "domain": "x.org", "text": "one two three"},
            {"doc_id": "b", "url": "http://y.org/b", "domain": "y.org", "text": "four five"},
            {"doc_id": "old", "url": "http://x.org/page", "domain": "x.org", "text": "old words here"},
        ],
    )
    day2 = write_documents(
        tmp_path / "d2.parquet",
        [
            {"doc_id": "b", "url": "http://y.org/b", "domain": "y.org", "text": "four five"},
            {"doc_id": "c", "url": "http://x.org/c", "domain": "x.org", "text": "six"},
            {"doc_id": "new", "url": "http://x.org/page", "domain": "x.org", "text": "new words"},
        ],
    )
    superseded = [{"url": "http://x.org/page", "doc_id": "old", "day": "2026-01-01", "new_doc_id": "new",
                   "new_day": "2026-01-02", "new_kept": True}]  # fmt: skip
    return [CorpusDay("2026-01-01", "v1", day1, []), CorpusDay("2026-01-02", "v2", day2, superseded)]


def test_corpus_is_a_manifest_of_days_minus_exclusions(tmp_path):
    days = two_days(tmp_path)
    out = tmp_path / "corpus"
    out.mkdir()
    stats = build_corpus(days, out, never)
    assert corpus_files(out) == [days[0].documents, days[1].documents]  # nothing copied
    assert not list(out.glob("*documents*"))
    assert sorted(read_documents(out, ["doc_id"]).column("doc_id").to_pylist()) == ["a", "b", "c", "new"]
    reasons = {row["doc_id"]: row["reason"] for row in exclusions(out).to_pylist()}
    assert reasons == {"old": "superseded:new@2026-01-02", "b": "same_document_as:2026-01-01"}
    assert stats["documents"] == 4 and stats["tokens"] == 3 + 2 + 1 + 2
    assert [night["trained_on"] for night in stats["nights"]] == [2, 2]
    assert json.loads((out / CORPUS_FILE).read_text())["exclusions"] == 2
    assert count_documents(out) == 4
    # The tokenizer and shard readers read a corpus directory like a file.
    assert sum(batch.num_rows for batch in iter_batches(out, ["text"], 2)) == 4


def test_an_opt_out_excludes_without_rewriting_day_files(tmp_path):
    days = two_days(tmp_path)
    before = [open(day.documents, "rb").read() for day in days]
    out = tmp_path / "corpus"
    out.mkdir()
    build_corpus(days, out, lambda url, domain: "y.org" if domain == "y.org" else None)
    assert "b" not in read_documents(out, ["doc_id"]).column("doc_id").to_pylist()
    assert {row["reason"] for row in exclusions(out).to_pylist() if row["doc_id"] == "b"} == {"opted_out:y.org"}
    assert [open(day.documents, "rb").read() for day in days] == before


def test_a_plain_file_reads_as_itself(tmp_path):
    path = write_documents(tmp_path / "d.parquet", [{"doc_id": "a", "url": "u", "domain": "d", "text": "t"}])
    assert corpus_files(path) == [path] and exclusions(path).num_rows == 0
    assert read_documents(path, ["doc_id"]).column("doc_id").to_pylist() == ["a"]
