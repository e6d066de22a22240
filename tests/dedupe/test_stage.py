"""The local engine and the stage on real Parquet files: planted duplicates, exact reasons, edge cases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.dedupe import local_engine, synthetic
from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.core import DUPLICATE_CLUSTER_SCHEMA, EMPTY_BAND_KEY, representative_order_key
from data_code.dedupe.lsh import MAX_BUCKET_ALL_PAIRS, candidate_pairs, exact_groups, order_ranks
from data_code.dedupe.stage import deduplicate
from data_code.document import DOCUMENT_SCHEMA, REJECTION_SCHEMA

CONFIG = DedupeConfig(workers=1, batch_size=128)
EARLY, LATE = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)


def _doc(doc_id: str, text: str, quality=None, fetch_time=EARLY) -> dict:
    url = f"https://{doc_id}.example/"
    return {
        "doc_id": doc_id,
        "url": url,
        "domain": f"{doc_id}.example",
        "fetch_time": fetch_time,
        "text": text,
        "quality_score": quality,
    }


def _letters(number: int) -> str:
    """A distinct lower-case word per number (base 26)."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word += chr(97 + digit)
        if number == 0:
            return word + "a"


def _write(tmp_path, records, name="docs.parquet") -> str:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(records, schema=DOCUMENT_SCHEMA), path)
    return str(path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A generated corpus with planted groups, written to Parquet and deduplicated once."""
    corpus = synthetic.generate_corpus(700, doc_bytes=800, groups=40, seed=3)
    directory = tmp_path_factory.mktemp("planted")
    corpus.write(directory / "docs.parquet")
    stats = deduplicate(str(directory / "docs.parquet"), directory / "out", CONFIG)
    return corpus, str(directory / "docs.parquet"), directory / "out", stats


def _found_pairs(path: str, config: DedupeConfig) -> set[tuple[int, int]]:
    found = local_engine.search_pairs(path, config)
    left, right = found.leaders[found.left[found.edges]], found.leaders[found.right[found.edges]]
    return {(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist(), strict=True)}


def test_planted_similarities_are_measured(planted):
    corpus = planted[0]
    achieved = np.array(list(corpus.similarity_to_base.values()))
    assert len(achieved) == 40 * len(synthetic.DEFAULT_TARGETS)
    assert np.abs(achieved - np.tile(synthetic.DEFAULT_TARGETS, 40)).max() < 0.06  # targets are hit closely


def test_precision_and_recall_at_threshold(planted):
    corpus, path, _, _ = planted
    truth = synthetic.true_pairs(corpus, 0.8)
    found = _found_pairs(path, CONFIG)
    assert len(truth) >= 80
    assert len(found & truth) / len(found) >= 0.9  # precision
    assert len(found & truth) / len(truth) >= 0.9  # recall


def test_stage_outputs(planted):
    corpus, path, out, stats = planted
    kept = pq.read_table(out / "documents.parquet")
    clusters = pq.read_table(out / "duplicate_clusters.parquet")
    rejections = pq.read_table(out / "rejections.parquet")
    assert kept.schema.equals(DOCUMENT_SCHEMA) and rejections.schema.equals(REJECTION_SCHEMA)
    assert clusters.schema.equals(DUPLICATE_CLUSTER_SCHEMA)
    assert stats.documents_kept == kept.num_rows == 700 - rejections.num_rows
    assert stats.near_duplicates == rejections.num_rows > 0 and stats.exact_duplicates == 0
    original = [r["doc_id"] for r in corpus.records]
    kept_ids = kept.column("doc_id").to_pylist()
    assert kept_ids == [d for d in original if d in set(kept_ids)]  # input order preserved
    for row in rejections.to_pylist():
        assert row["stage"] == "dedupe" and re.fullmatch(r"near_duplicate_of:[0-9a-f]{24}", row["reason"])
        assert row["reason"].split(":")[1] in set(kept_ids)
    assert stats.candidate_pairs >= stats.verified_pairs > 0 and stats.clusters > 0
    assert sum(stats.domains_in.values()) == 700 and sum(stats.domains_kept.values()) == kept.num_rows
    assert stats.tokens_in > stats.tokens_kept > 0
    report = json.loads((out / "calibration.json").read_text())
    assert report["recall"] >= 0.9 and report["sample_size"] == 700 and stats.calibration == report
    assert (out / "s_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_exact_and_near_duplicates_get_exact_reasons_and_the_best_representative(tmp_path):
    words = " ".join(_letters(i) for i in range(200))  # 200 distinct words (digits would all fold to 0)
    near = words.replace(" ka ", " changed ", 1)
    records = [
        _doc("d1", words, quality=0.5),
        _doc("d2", words.upper() + " !!", quality=0.9, fetch_time=LATE),  # same normalized text, best quality
        _doc("d3", near, quality=0.9, fetch_time=EARLY),  # as good and fetched earlier: the representative
        _doc("d0", near, quality=0.9, fetch_time=EARLY),  # a tie with d3 except doc_id: smaller id wins
        _doc("u1", "an unrelated short document about something else entirely"),
    ]
    stats = deduplicate(_write(tmp_path, records), tmp_path / "out", CONFIG)
    reasons = {r["doc_id"]: r["reason"] for r in pq.read_table(tmp_path / "out" / "rejections.parquet").to_pylist()}
    assert reasons == {"d1": "near_duplicate_of:d0", "d2": "near_duplicate_of:d0", "d3": "exact_duplicate_of:d0"}
    assert pq.read_table(tmp_path / "out" / "documents.parquet").column("doc_id").to_pylist() == ["d0", "u1"]
    assert (stats.exact_duplicates, stats.near_duplicates, stats.clusters) == (1, 2, 1)
    scores = {r["doc_id"]: r["score"] for r in pq.read_table(tmp_path / "out" / "rejections.parquet").to_pylist()}
    assert scores["d3"] == 1.0 and 0.9 < scores["d1"] == scores["d2"] < 1.0


def test_empty_corpus(tmp_path):
    stats = deduplicate(_write(tmp_path, []), tmp_path / "out", CONFIG)
    assert (stats.documents_in, stats.documents_kept, stats.clusters, stats.candidate_pairs) == (0, 0, 0, 0)
    for name in ("documents.parquet", "duplicate_clusters.parquet", "rejections.parquet"):
        assert pq.read_table(tmp_path / "out" / name).num_rows == 0
    assert (tmp_path / "out" / "s_curve.png").exists() and (tmp_path / "out" / "calibration.json").exists()


def test_odd_texts_and_a_huge_document(tmp_path):
    huge = ("lorem ipsum dolor sit amet consectetur " * 1_300_000)[:50_000_000]  # 50 MB
    records = [
        _doc("e1", ""),
        _doc("e2", "!!! ... ???"),  # no words either: the same (empty) normalized text as e1
        _doc("c1", "control\x00chars\x07and\ttabs \u200b zero width"),
        _doc("h1", huge),
        _doc("s1", "short"),
    ]
    stats = deduplicate(_write(tmp_path, records), tmp_path / "out", DedupeConfig(workers=1))
    assert stats.truncated_documents == 1
    assert stats.exact_duplicates == 1 and stats.documents_kept == 4  # the two wordless documents are one
    assert stats.predicted_peak_memory_bytes > 0


def test_process_pool_gives_the_same_clusters(planted):
    _, path, _, _ = planted
    pooled = local_engine.find_clusters(path, DedupeConfig(workers=2, batch_size=100))
    assert pooled.equals(local_engine.find_clusters(path, CONFIG))


def test_order_ranks_match_representative_order_key():
    quality = pa.array([0.5, None, 0.5, 0.9, float("nan"), 0.5], pa.float32())
    fetch = pa.array([LATE, EARLY, EARLY, None, EARLY, EARLY], pa.timestamp("us", tz="UTC"))
    ids = pa.array(["b", "a", "c", "d", "e", "a2"])
    expected = sorted(
        range(6), key=lambda i: representative_order_key(quality[i].as_py(), fetch[i].as_py(), ids[i].as_py())
    )
    assert np.argsort(order_ranks(quality, fetch, ids)).tolist() == expected


def test_exact_groups_are_numbered_by_leader_rank():
    rng = np.random.default_rng(5)
    distinct = rng.integers(0, 2**63, (30, 2)).astype(np.uint64)
    distinct[:10, 0] = distinct[0, 0]  # the first word alone does not make two keys equal
    keys, ranks = distinct[rng.integers(0, 30, 500)], rng.permutation(500)
    group, leaders = exact_groups(keys, ranks)
    by_key = {}
    for row in np.argsort(ranks):  # best rank first: the first member seen of a key leads its group
        by_key.setdefault(keys[row].tobytes(), row)
    assert leaders.tolist() == sorted(by_key.values(), key=lambda row: ranks[row])
    assert all(leaders[group[row]] == by_key[keys[row].tobytes()] for row in range(500))


def test_candidate_pairs_all_pairs_in_small_buckets_and_a_star_in_big_ones():
    rng = np.random.default_rng(6)
    keys = rng.integers(1, 40, (400, 3)).astype(np.uint64)  # buckets of ~10 rows
    keys[:100, 0] = 7  # one bucket of > MAX_BUCKET_ALL_PAIRS rows in band 0
    keys[100:120, 1] = EMPTY_BAND_KEY  # never candidates through band 1
    expected = set()
    for band in range(keys.shape[1]):
        for key in set(keys[:, band].tolist()) - {EMPTY_BAND_KEY}:
            rows = np.flatnonzero(keys[:, band] == key).tolist()
            if len(rows) > MAX_BUCKET_ALL_PAIRS:
                expected |= {(rows[0], row) for row in rows[1:]}
            else:
                expected |= {(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]}
    left, right = candidate_pairs(keys)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == sorted(expected)


def test_without_verification_candidates_are_edges(planted):
    _, path, _, _ = planted
    unverified = local_engine.find_clusters(path, DedupeConfig(workers=1, verify_candidates=False))
    verified = local_engine.find_clusters(path, CONFIG)
    assert unverified.num_rows >= verified.num_rows
    assert set(verified.column("doc_id").to_pylist()) <= set(unverified.column("doc_id").to_pylist())


def test_candidates_agree_with_datasketch(planted):
    """datasketch's MinHashLSH with the same bands x rows finds nearly the same candidate pairs."""
    from bench.dedupe import datasketch_pairs, lmforge_pairs

    corpus, path, _, _ = planted
    texts = [r["text"] for r in corpus.records]
    theirs = datasketch_pairs(texts, CONFIG.num_perm, CONFIG.bands, CONFIG.rows, CONFIG.threshold)
    verified, ours = lmforge_pairs(path, CONFIG)
    # Below the threshold a pair is a candidate by chance (P ~ 0.1-0.6), so only the sizes of the sets can agree there;
    # at and above it both must find the same pairs.
    assert 0.8 <= len(ours) / len(theirs) <= 1.25
    truth = synthetic.true_pairs(corpus, 0.8)
    assert len(truth & theirs) / len(truth) >= 0.9 and len(truth & ours) / len(truth) >= 0.9
    assert len(truth & ours & theirs) / len(truth & (ours | theirs)) >= 0.9
    assert verified <= ours
