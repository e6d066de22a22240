"""Near-duplicate detection: lmforge's local engine against datasketch (and the Spark engine), in one run.

    .venv/bin/python -m bench.dedupe [--quick] --json bench-dedupe.json

Corpora come from data_code.dedupe.synthetic (Zipfian pseudo-English, planted near-duplicate groups at measured
Jaccard similarities): ~1 KB and ~5 KB documents. Throughput is documents per second on ONE core: lmforge runs
with workers=1 (in-process) and datasketch is single-threaded. Both use 112 permutations, bands x rows = 14 x 8 and
threshold 0.8. lmforge's time covers reading Parquet, normalization, shingling, MinHash, LSH buckets and
verification of candidates by true Jaccard (local_engine.search_pairs); datasketch's covers the same
normalization and 5-word shingling in Python, MinHash.update_batch and MinHashLSH insert + query. Ground truth:
every pair within a planted group whose true shingle Jaccard is >= 0.8; F1 is over pairs found.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

SIZES = {"quick": {"1KB": (10000, 1000), "5KB": (1500, 5000)}, "full": {"1KB": (20000, 1000), "5KB": (5000, 5000)}}
DATASKETCH_LIMIT = {"quick": 2000, "full": 6000}  # datasketch is slow: timed on a prefix of the corpus
REPEATS = 2  # each method's best of two runs (this machine is shared; the best run is the least disturbed)


def datasketch_pairs(texts: list[str], num_perm: int, bands: int, rows: int, threshold: float) -> set:
    """Pairs (i < j) that datasketch's MinHashLSH reports, the way its users write it: normalize and shingle in
    Python, MinHash.update_batch, then query each document before inserting it."""
    from datasketch import MinHash, MinHashLSH

    from data_code.dedupe.core import normalize_text

    lsh, pairs = MinHashLSH(threshold=threshold, num_perm=num_perm, params=(bands, rows)), set()
    for i, text in enumerate(texts):
        words = normalize_text(text).split()
        shingles = {" ".join(words[k : k + 5]) for k in range(max(1, len(words) - 4))}
        minhash = MinHash(num_perm=num_perm, seed=1)
        minhash.update_batch([s.encode() for s in shingles])
        pairs.update((j, i) for j in lsh.query(minhash))
        lsh.insert(i, minhash)
    return pairs


def lmforge_pairs(path: str, config) -> tuple[set, set]:
    """(verified pairs, raw LSH candidate pairs) of document rows found by the local engine."""
    from data_code.dedupe import local_engine

    found = local_engine.search_pairs(path, config)
    left, right = found.leaders[found.left], found.leaders[found.right]
    pairs = [(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist(), strict=True)]
    return {p for p, edge in zip(pairs, found.edges.tolist(), strict=True) if edge}, set(pairs)


def scores(found: set, truth: set) -> dict:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "pairs": len(found)}


def _timed(function, *args, repeats: int = 1):
    """(result, best wall seconds of `repeats` runs): the best run is the least disturbed by other processes."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return result, best


def bench_corpus(name: str, documents: int, doc_bytes: int, ds_limit: int, directory: pathlib.Path) -> dict:
    from data_code.dedupe import synthetic
    from data_code.dedupe.config import DedupeConfig

    corpus = synthetic.generate_corpus(documents, doc_bytes=doc_bytes, seed=11)
    path = directory / f"{name}.parquet"
    corpus.write(path)
    config = DedupeConfig(workers=1)
    truth = synthetic.true_pairs(corpus, config.threshold)
    (verified, candidates), seconds = _timed(lmforge_pairs, str(path), config, repeats=REPEATS)
    ds_limit = min(ds_limit, documents)
    texts = [r["text"] for r in corpus.records[:ds_limit]]
    prefix_truth = {p for p in truth if p[1] < ds_limit}
    ds_args = (texts, config.num_perm, config.bands, config.rows, config.threshold)
    ds_found, ds_seconds = _timed(datasketch_pairs, *ds_args, repeats=REPEATS)
    lm_prefix = {p for p in verified if p[1] < ds_limit}
    lmforge = {"docs_per_s": round(documents / seconds), "seconds": round(seconds, 3)}
    datasketch = {"documents": ds_limit, "docs_per_s": round(ds_limit / ds_seconds), "seconds": round(ds_seconds, 3)}
    return {
        "documents": documents,
        "mean_chars": round(sum(len(r["text"]) for r in corpus.records) / documents),
        "truth_pairs": len(truth),
        "lmforge": lmforge | scores(verified, truth),
        "lmforge_candidates_unverified": scores(candidates, truth),
        "datasketch": datasketch | scores(ds_found, prefix_truth),
        "lmforge_on_datasketch_prefix": scores(lm_prefix, prefix_truth),
    }


def bench_spark(path: str, local_removed: set) -> dict:
    """Spark engine throughput at local[1] and local[2], or why it was skipped."""
    try:
        from data_code.dedupe import spark_engine
    except ImportError as error:
        return {"skipped": f"data_code.dedupe.spark_engine not importable: {error}"}
    import pyarrow.parquet as pq

    from data_code.dedupe.config import DedupeConfig
    from data_code.spark import build_spark_session

    documents, results = pq.ParquetFile(path).metadata.num_rows, {}
    for cores in (1, 2):
        master = f"local[{cores}]"
        session = build_spark_session(master, "bench-dedupe")  # executors run this Python (PYSPARK_PYTHON)
        try:
            config = DedupeConfig(engine="spark", spark_master=master, workers=cores)
            spark_engine.find_clusters(path, config, session)  # warm-up: JVM, Python workers, numba caches
            table, seconds = _timed(spark_engine.find_clusters, path, config, session)
            same = set(table.column("doc_id").to_pylist()) == local_removed
            results[master] = {
                "docs_per_s": round(documents / seconds),
                "docs_per_s_per_core": round(documents / seconds / cores),
                "seconds": round(seconds, 3),
                "same_as_local": same,
            }
        except Exception as error:  # noqa: BLE001 - a broken engine is reported in the table, not fatal to the bench
            results[master] = {"skipped": f"{type(error).__name__}: {error}"}
        finally:
            session.stop()
    return results


def _warm_up(directory: pathlib.Path) -> None:
    """Load the compiled numba kernels once, so their first-call cost is not timed."""
    from data_code.dedupe import local_engine, synthetic
    from data_code.dedupe.config import DedupeConfig

    synthetic.generate_corpus(50, groups=2, seed=1).write(directory / "warm.parquet")
    local_engine.find_clusters(str(directory / "warm.parquet"), DedupeConfig(workers=1))


def print_table(report: dict) -> None:
    print(f"{'corpus':6} {'method':26} {'docs':>6} {'docs/s/core':>11} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, corpus in report["corpora"].items():
        rows = [
            ("lmforge (verified)", corpus["lmforge"], corpus["documents"]),
            ("lmforge (LSH only)", corpus["lmforge_candidates_unverified"] | {"docs_per_s": ""}, ""),
            ("datasketch MinHashLSH", corpus["datasketch"], corpus["datasketch"]["documents"]),
        ]
        for method, row, docs in rows:
            print(
                f"{name:6} {method:26} {docs!s:>6} {row['docs_per_s']!s:>11} {row['precision']:>9.3f} "
                f"{row['recall']:>7.3f} {row['f1']:>6.3f}"
            )
    for master, row in report["spark"].items():
        print(f"spark {master}: {row}" if isinstance(row, dict) else f"spark: {row}")
    print(f"speedup (1KB, per core): {report['speedup']}x")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, no Spark: under a minute")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as tmp:
        directory = pathlib.Path(tmp)
        _warm_up(directory)
        corpora = {
            name: bench_corpus(name, documents, doc_bytes, DATASKETCH_LIMIT[mode], directory)
            for name, (documents, doc_bytes) in SIZES[mode].items()
        }
        one_kb = str(directory / "1KB.parquet")
        spark = {"skipped": "--quick"} if args.quick else bench_spark(one_kb, _removed(one_kb))
    one = corpora["1KB"]
    report = {
        "mode": mode,
        "throughput_unit": "documents per second on one core (lmforge workers=1; datasketch single-threaded)",
        "lmforge_docs_per_s": one["lmforge"]["docs_per_s"],
        "datasketch_docs_per_s": one["datasketch"]["docs_per_s"],
        "lmforge_f1": one["lmforge"]["f1"],
        "datasketch_f1": one["datasketch"]["f1"],
        "speedup": round(one["lmforge"]["docs_per_s"] / one["datasketch"]["docs_per_s"], 1),
        "corpora": corpora,
        "spark": spark,
    }
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


def _removed(path: str) -> set:
    from data_code.dedupe import local_engine
    from data_code.dedupe.config import DedupeConfig

    table = local_engine.find_clusters(path, DedupeConfig(workers=1))
    return set(table.column("doc_id").to_pylist())


if __name__ == "__main__":
    main()
