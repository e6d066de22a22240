"""filter_documents end to end: exact funnel on a small corpus, outputs, truncation, empty input, determinism."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.document import DOCUMENT_SCHEMA, REJECTION_SCHEMA
from data_code.filters.config import FilterConfig
from data_code.filters.stage import REJECTED_SAMPLE_SCHEMA, filter_documents
from tests.filters.texts import GERMAN_TEXT, GOOD_TEXT, GOOD_TEXT_2, make_doc

LINES = GOOD_TEXT.splitlines()
NAVIGATION = "Home | Docs | Blog"
SHORT_LINES = """Tests pass on Linux. Builds are fast now. Nothing was lost. The cache is warm. Logs stay small.
Each step is timed. Errors are rare. Ports are closed. Disks are mirrored. Keys rotate daily. Users are happy.
Alerts are quiet. Backups are tested.""".replace(". ", ".\n").splitlines()  # 13 distinct lines under 30 chars

# (document, the stage that drops it or None, its reason)
CORPUS = [
    (make_doc(GOOD_TEXT + "\nWrite to team@example.com with questions about it.", doc_id="a"), None, None),
    (make_doc(NAVIGATION + "\n" + GOOD_TEXT_2, url="https://blog.example.org/pools", doc_id="b"), None, None),
    (make_doc("   \n", doc_id="c"), "non_empty", "no_words"),
    (make_doc(GOOD_TEXT, robots_meta="noai", doc_id="d"), "policy", "opt_out:noai"),
    (make_doc(GOOD_TEXT, url="https://ads.spam.test/offer", doc_id="e"), "blocklist", "blocked_domain:spam.test"),
    (make_doc(GERMAN_TEXT, doc_id="f"), "language", "language_not_allowed:de"),
    (
        make_doc("This page is short. It has only a few words, and nothing more.", doc_id="g"),
        "gopher_quality",
        "gopher_short_document",
    ),
    (
        make_doc(f"{GOOD_TEXT}\n\n{GOOD_TEXT_2}\n\n{GOOD_TEXT}", doc_id="h"),
        "gopher_repetition",
        "gopher_dup_para_frac",
    ),
    (
        make_doc(GOOD_TEXT + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", doc_id="i"),
        "c4",
        "c4_lorem_ipsum",
    ),
    (make_doc("\n".join(LINES + SHORT_LINES), doc_id="j"), "fineweb", "fineweb_short_line_ratio"),
]
DOCS = [doc for doc, _, _ in CORPUS]
STAGES = ["non_empty", "policy", "blocklist", "language", "gopher_quality", "gopher_repetition", "c4", "fineweb"]


def write_corpus(path, docs) -> str:
    pq.write_table(pa.Table.from_pylist(docs, schema=DOCUMENT_SCHEMA), path)
    return str(path)


@pytest.fixture
def blocklist(tmp_path) -> str:
    path = tmp_path / "blocklist.txt"
    path.write_text("spam.test\n")
    return str(path)


def test_funnel_is_exact(tmp_path, blocklist, quality_model):
    config = FilterConfig(blocklist_path=blocklist, workers=1, batch_documents=4)
    stats = filter_documents(
        write_corpus(tmp_path / "in.parquet", DOCS), tmp_path / "out", config, quality_model_path=quality_model[0]
    )
    result = stats.as_stats()

    words = [len(doc["text"].split()) for doc in DOCS]
    assert (result["documents_in"], result["documents_kept"], result["tokens_in"]) == (10, 2, sum(words))
    assert result["tokens_kept"] == words[0] + words[1] - 5  # C4 removed the 5-word navigation line
    funnel = result["filters"]
    assert list(funnel) == ["non_empty", *FilterConfig().enabled]
    for position, stage in enumerate(STAGES):
        dropped = [(reason, 1) for _, where, reason in CORPUS if where == stage]
        assert funnel[stage]["documents_in"] == 10 - position, stage
        assert funnel[stage]["documents_kept"] == 9 - position, stage
        assert list(funnel[stage]["rejected_by_reason"].items()) == dropped, stage
    for stage in ("quality", "pii"):
        assert funnel[stage]["documents_in"] == funnel[stage]["documents_kept"] == 2
    # The funnel keeps the pipeline's order through a manifest (which stores dict keys sorted), as the UI shows it.
    from assets.filters import funnel_steps

    stored = json.loads(json.dumps(result, sort_keys=True))
    dedupe = {"documents_in": 12, "tokens_in": 0, "domains_in": {}, "documents_kept": 10, "tokens_kept": 0,
              "domains_kept": {}}  # fmt: skip
    shown = [step.stage for step in funnel_steps(dedupe, stored)]
    assert shown == ["documents", "deduplicated", "non_empty", *FilterConfig().enabled]
    assert funnel["language"]["tokens_in"] == sum(words[5:]) + words[0] + words[1]
    assert funnel["fineweb"]["kept_by_domain"] == {"blog.example.org": 1, "docs.example.com": 1}
    assert funnel["c4"]["counters"] == {"lines_dropped_no_terminal_punct": 1}
    assert result["domains"]["docs.example.com"] == {"documents_in": 8, "documents_kept": 1}
    assert result["pii"] == {"email": 1} and result["pii_documents"] == {"email": 1}
    assert result["languages"] == {"en": 6, "de": 1}
    assert result["truncated_documents"] == 0

    kept = pq.read_table(tmp_path / "out" / "documents.parquet")
    assert kept.schema == DOCUMENT_SCHEMA
    rows = kept.to_pylist()
    assert [row["doc_id"] for row in rows] == ["a", "b"]
    assert rows[0]["text"].endswith("Write to <EMAIL> with questions about it.")
    assert not rows[1]["text"].startswith(NAVIGATION)
    assert all(row["language"] == "en" and row["language_score"] > 0.65 and row["quality_score"] > 0.5 for row in rows)

    rejections = pq.read_table(tmp_path / "out" / "rejections.parquet")
    assert rejections.schema == REJECTION_SCHEMA
    expected = [(doc["doc_id"], stage, reason) for doc, stage, reason in CORPUS if stage]
    assert [(r["doc_id"], r["stage"], r["reason"]) for r in rejections.to_pylist()] == expected
    samples = pq.read_table(tmp_path / "out" / "rejected_samples.parquet")
    assert samples.schema == REJECTED_SAMPLE_SCHEMA and samples.num_rows == 8
    assert {row["reason"]: row["text"] for row in samples.to_pylist()}["language_not_allowed:de"] == GERMAN_TEXT[:500]


def test_huge_document_is_truncated_and_recorded(tmp_path):
    huge = "\n".join(LINES) * (50_000_000 // len(GOOD_TEXT))  # ~50 MB of text in one document
    docs = [make_doc(GOOD_TEXT, doc_id="small"), make_doc(huge, doc_id="huge")]
    config = FilterConfig(enabled=("gopher_quality", "gopher_repetition", "pii"), workers=1)
    stats = filter_documents(
        write_corpus(tmp_path / "in.parquet", docs), tmp_path / "out", config, quality_model_path=None
    )
    assert stats.truncated_documents == 1 and stats.documents_in == 2
    assert len(huge) > 49_000_000 and stats.filters["non_empty"].tokens_in < 30_000  # only the first 100k chars
    rejection = pq.read_table(tmp_path / "out" / "rejections.parquet").to_pylist()
    assert [(row["doc_id"], row["reason"]) for row in rejection] == [("huge", "gopher_dup_line_frac")]
    sample = pq.read_table(tmp_path / "out" / "rejected_samples.parquet").to_pylist()
    assert len(sample[0]["text"]) == 500


def test_empty_corpus_gives_valid_empty_outputs(tmp_path):
    config = FilterConfig(enabled=("language", "gopher_quality", "c4", "pii"), workers=1)
    stats = filter_documents(
        write_corpus(tmp_path / "in.parquet", []), tmp_path / "out", config, quality_model_path=None
    )
    assert stats.documents_in == stats.documents_kept == 0
    assert stats.as_stats()["filters"] == {}
    for name, schema in (
        ("documents", DOCUMENT_SCHEMA),
        ("rejections", REJECTION_SCHEMA),
        ("rejected_samples", REJECTED_SAMPLE_SCHEMA),
    ):
        table = pq.read_table(tmp_path / "out" / f"{name}.parquet")
        assert table.num_rows == 0 and table.schema == schema


def test_same_output_for_one_and_two_workers(tmp_path, blocklist, quality_model):
    source = write_corpus(tmp_path / "in.parquet", DOCS * 3)
    outputs = {}
    for workers in (1, 2):
        config = FilterConfig(blocklist_path=blocklist, workers=workers, batch_documents=4)
        stats = filter_documents(source, tmp_path / f"out{workers}", config, quality_model_path=quality_model[0])
        files = [
            (tmp_path / f"out{workers}" / name).read_bytes()
            for name in ("documents.parquet", "rejections.parquet", "rejected_samples.parquet")
        ]
        outputs[workers] = ({**stats.as_stats(), "elapsed_s": None}, files)
    assert outputs[1] == outputs[2]


def test_bad_inputs_fail_before_writing(tmp_path):
    documents = write_corpus(tmp_path / "in.parquet", DOCS[:1])
    with pytest.raises(ValueError, match="quality_model_path"):
        filter_documents(documents, tmp_path / "out", FilterConfig(), quality_model_path=None)
    with pytest.raises(FileNotFoundError, match="absent.parquet"):
        filter_documents(
            str(tmp_path / "absent.parquet"), tmp_path / "out", FilterConfig(enabled=("pii",)), quality_model_path=None
        )
    assert not (tmp_path / "out").exists()
