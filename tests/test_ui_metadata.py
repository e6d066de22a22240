"""What the UI shows when a number cannot be computed: the reason, never a blank cell."""

from __future__ import annotations

from assets.dedupe import _estimate


def test_dedupe_estimates_say_why_they_are_missing():
    none_similar = {"sample_size": 40, "threshold": 0.8, "precision": None, "recall": None}
    assert "no candidate pair" in _estimate(none_similar, "precision")
    assert "reaches Jaccard 0.8" in _estimate(none_similar, "recall")
    assert "fewer than 2 documents" in _estimate({"sample_size": 1}, "recall")
    assert _estimate({"precision": 0.987654321}, "precision") == 0.9877


def test_rejected_samples_show_a_few_per_reason(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from assets.filters import rejected_samples_table
    from data_code.filters.stage import REJECTED_SAMPLE_SCHEMA

    rows = [{"doc_id": f"d{i}", "url": f"http://site/{i}", "stage": "gopher_quality", "reason": "too_few_words",
             "text": f"short page {i} | nav"} for i in range(5)]  # fmt: skip
    french = {"stage": "language", "reason": "language_not_allowed:fr", "language": "fr"}
    rows.append({"doc_id": "x", "url": None, **french, "text": "Bonjour tout le monde"})
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECTED_SAMPLE_SCHEMA), tmp_path / "rejected.parquet")
    table = rejected_samples_table(tmp_path / "rejected.parquet").value
    assert table.count("too_few_words") == 3 and "Bonjour tout le monde" in table
    assert "short page 0 \\| nav" in table  # a pipe in the text does not break the table
    assert "| language | language_not_allowed:fr | fr | - | Bonjour" in table  # the language of the decision


def test_failed_urls_are_grouped_by_status(tmp_path):
    from assets.crawl import failed_urls_table
    from data_code.crawl.records import FetchRow, write_fetch_log

    missing = [FetchRow(f"http://s/{name}", 1, "http_error", http_status=404) for name in "ab"]
    rows = [FetchRow("http://s/ok", 0), *missing, FetchRow("http://s/c", 1, "timeout")]
    table = failed_urls_table(tmp_path / write_fetch_log(rows, tmp_path)).value
    assert "| 404 (http_error) | 2 | http://s/a, http://s/b |" in table and "| timeout | 1 |" in table
    assert "http://s/ok" not in table


def test_duplicate_clusters_show_the_largest_first(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from assets.dedupe import clusters_table

    rows = [{"doc_id": f"c{i}", "cluster_id": "keepA", "representative": "keepA", "similarity": 0.9 - i / 100,
             "kind": "near", "url": f"http://s/a{i}"} for i in range(3)]  # fmt: skip
    rows.append({"doc_id": "d", "cluster_id": "keepB", "representative": "keepB", "similarity": 1.0, "kind": "exact",
                 "url": "http://s/b"})  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "clusters.parquet")
    table = clusters_table(tmp_path / "clusters.parquet").value.splitlines()
    assert table[2].startswith("| `keepA` | 3 | near | 0.880 | http://s/a0, http://s/a1 |")
    assert table[3].startswith("| `keepB` | 1 | exact | 1.000 |")
