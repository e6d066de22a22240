"""The Spark engine gives the local engine's answer, on local[2] (one SparkSession for the whole module).

.venv/bin/pytest tests/dedupe/test_spark_engine.py -m spark
"""

from __future__ import annotations

import json
import math
import string
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.dedupe import local_engine, spark_engine
from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.core import DUPLICATE_CLUSTER_SCHEMA
from data_code.dedupe.lsh import MAX_BUCKET_ALL_PAIRS
from data_code.dedupe.synthetic import generate_corpus
from data_code.document import DOCUMENT_SCHEMA
from data_code.spark import build_spark_session

CONFIG = DedupeConfig(workers=1)  # the local engine in-process: the reference answer, quickly
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark():
    session = build_spark_session("local[2]", "lmforge-test-dedupe")
    yield session
    session.stop()  # one SparkContext per process: leave none behind for the next module


def write_corpus(records: list[dict], path) -> str:
    pq.write_table(pa.Table.from_pylist(records, schema=DOCUMENT_SCHEMA), path)
    return str(path)


def record(doc_id: str, text: str, quality=0.5, fetch_time=_EPOCH) -> dict:
    return {
        "doc_id": doc_id,
        "url": f"https://example.com/{doc_id}",
        "domain": "example.com",
        "text": text,
        "quality_score": quality,
        "fetch_time": fetch_time,
    }


def words(count: int, offset: int = 0) -> list[str]:
    """Distinct letter-only words (normalization maps every digit to '0', so digits would not be distinct)."""
    letters = string.ascii_lowercase
    return ["".join(letters[(i // 26**p) % 26] for p in range(3)) + "x" for i in range(offset, offset + count)]


def assert_same_answer(got: pa.Table, expected: pa.Table) -> None:
    """Same rows in the same order; similarities equal within 1e-9; the same candidate/verified pair counts."""
    assert got.schema.remove_metadata() == DUPLICATE_CLUSTER_SCHEMA
    for column in ("doc_id", "cluster_id", "representative", "kind"):
        assert got.column(column).to_pylist() == expected.column(column).to_pylist(), column
    np.testing.assert_allclose(
        got.column("similarity").to_numpy(), expected.column("similarity").to_numpy(), atol=1e-9
    )
    got_stats = json.loads(got.schema.metadata[b"lmforge.dedupe.stats"])
    expected_stats = json.loads(expected.schema.metadata[b"lmforge.dedupe.stats"])
    for counter in ("candidate_pairs", "verified_pairs"):
        assert got_stats[counter] == expected_stats[counter], counter


@pytest.fixture(scope="module")
def planted_corpus(tmp_path_factory) -> str:
    """Generated corpus with planted near-duplicate groups, plus exact duplicates that exercise every tie-break:
    same quality (fetch time decides), null fetch time, null and NaN quality, and duplicates of variants."""
    corpus = generate_corpus(400, doc_bytes=500, groups=12, seed=7)
    records = corpus.records
    copies = []
    for n, members in enumerate(corpus.groups[:8]):
        original = records[members[n % len(members)]]
        copy = dict(original, doc_id=f"{original['doc_id'][:20]}dup{n}", text=original["text"].upper() + " ...")
        if n % 4 == 1:
            copy["fetch_time"] = None
        elif n % 4 == 2:
            copy["quality_score"] = math.nan
        elif n % 4 == 3:
            copy["fetch_time"] = original["fetch_time"] - timedelta(hours=1)  # same quality, fetched earlier: kept
        copies.append(copy)
    records[3]["quality_score"] = math.nan
    return write_corpus(records + copies, tmp_path_factory.mktemp("planted") / "documents.parquet")


@pytest.fixture(scope="module")
def planted_answer(spark, planted_corpus) -> pa.Table:
    return spark_engine.find_clusters(planted_corpus, CONFIG, spark)


@pytest.mark.spark
def test_spark_engine_equals_local_engine_on_planted_duplicates(planted_corpus, planted_answer):
    expected = local_engine.find_clusters(planted_corpus, CONFIG)
    kinds = set(expected.column("kind").to_pylist())
    assert kinds == {"exact", "near"} and expected.num_rows > 20, "the corpus must exercise both kinds"
    assert_same_answer(planted_answer, expected)


@pytest.mark.spark
def test_spark_engine_is_deterministic_across_runs_and_shuffle_partitions(spark, planted_corpus, planted_answer):
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        again = spark_engine.find_clusters(planted_corpus, CONFIG, spark)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert again.equals(planted_answer)


@pytest.mark.spark
def test_spark_engine_without_verification_equals_local_engine(spark, planted_corpus):
    config = DedupeConfig(workers=1, verify_candidates=False, threshold=0.7, bands=28, rows=4)
    expected = local_engine.find_clusters(planted_corpus, config)
    got = spark_engine.find_clusters(planted_corpus, config, spark)
    assert_same_answer(got, expected)
    assert min(got.column("similarity").to_pylist()) < 0.7, "unverified candidates keep low-similarity members"


@pytest.mark.spark
def test_transitive_chain_forms_one_cluster(spark, tmp_path):
    """A~B and B~C (Jaccard 0.90) but not A~C (0.81 < 0.85): one cluster through B, kept document A."""
    a = words(100)
    b = a[:30] + ["qqq"] + a[31:]
    c = b[:70] + ["zzz"] + b[71:]
    records = [record("doc-a", " ".join(a), 0.9), record("doc-b", " ".join(b), 0.5)]
    records += [record("doc-c", " ".join(c), 0.1), record("doc-other", " ".join(words(100, offset=5000)))]
    path = write_corpus(records, tmp_path / "chain.parquet")
    config = DedupeConfig(workers=1, threshold=0.85)
    got = spark_engine.find_clusters(path, config, spark)
    assert got.column("doc_id").to_pylist() == ["doc-b", "doc-c"]
    assert set(got.column("cluster_id").to_pylist()) == {"doc-a"}
    similarity = dict(zip(got.column("doc_id").to_pylist(), got.column("similarity").to_pylist(), strict=True))
    assert similarity["doc-b"] == pytest.approx(91 / 101) and similarity["doc-c"] == pytest.approx(86 / 106)
    assert_same_answer(got, local_engine.find_clusters(path, config))


@pytest.mark.spark
def test_bucket_larger_than_all_pairs_limit_is_a_star_like_the_local_engine(spark, tmp_path):
    """70 one-word variants of a text share buckets of > MAX_BUCKET_ALL_PAIRS leaders: the candidate pairs (a star
    around the best leader, not all pairs) and the answer must match the local engine's."""
    base = words(100)
    variants = [
        base[:i] + [f"v{string.ascii_lowercase[i % 26]}{string.ascii_lowercase[i // 26]}"] + base[i + 1 :]
        for i in range(10, 10 + MAX_BUCKET_ALL_PAIRS + 6)
    ]
    records = [record(f"doc-{i:03d}", " ".join(v), quality=i / 100) for i, v in enumerate(variants)]
    path = write_corpus(records, tmp_path / "bucket.parquet")
    expected = local_engine.find_clusters(path, CONFIG)
    stats = json.loads(expected.schema.metadata[b"lmforge.dedupe.stats"])
    all_pairs = len(records) * (len(records) - 1) // 2
    assert 0 < stats["candidate_pairs"] < all_pairs, "the star must cut pairs for this test to mean anything"
    assert_same_answer(spark_engine.find_clusters(path, CONFIG, spark), expected)


@pytest.mark.spark
def test_empty_corpus_gives_empty_table(spark, tmp_path):
    path = write_corpus([], tmp_path / "empty.parquet")
    got = spark_engine.find_clusters(path, CONFIG, spark)
    assert got.num_rows == 0 and got.schema.remove_metadata() == DUPLICATE_CLUSTER_SCHEMA


def test_missing_java_is_reported_with_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # a JAVA_HOME without bin/java; no JVM is started
    with pytest.raises(RuntimeError, match="Java 17 runtime"):
        build_spark_session("local[1]")


@pytest.mark.spark
def test_second_session_on_another_master_is_refused(spark):
    assert build_spark_session("local[2]", "lmforge-test-dedupe") is spark
    with pytest.raises(RuntimeError, match="one SparkContext per process"):
        build_spark_session("local[1]")
