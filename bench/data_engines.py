"""The data stages on both engines: extraction, filters and tokenization, local process pool against Spark local[2].

    .venv/bin/python -m bench.data_engines [--quick] --json bench-data-engines.json

Input: real pages, the demo site's (the Python 3.11 manual, Debian's python3.11-doc, which `make setup` installs),
written as WARC files of 25 pages each. Each stage runs on the same input on the local engine (a pool of
2 worker processes: the cores Spark local[2] gets) and on Spark local[2]; the outputs are compared byte for byte.
Throughput is documents (and MB of input text) per second of wall time, best of two runs. Spark's fixed cost is
reported twice: starting the session, and running a stage on a single document (task scheduling, Python workers,
Arrow transfers) — what a small corpus pays and a large one amortises. Spark exists for corpora that do not fit
one machine; on one machine it is expected to be slower.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import tempfile
import time

import pyarrow.parquet as pq

from data_code.warc import WarcFileWriter

PAGES = {"quick": 100, "full": 600}
PAGES_PER_WARC = 25
REPEATS = 2
WORKERS = 2  # the local pool's processes: the same two cores as Spark local[2]


def real_pages(count: int, scratch: pathlib.Path) -> list[tuple[str, bytes]]:
    """(url, html) of up to `count` real pages (every page of the manual, cycled with distinct URLs if needed)."""
    from cli.demo_site import PYTHON_MANUAL

    root = PYTHON_MANUAL
    if not (root / "index.html").exists():
        raise SystemExit(f"bench.data_engines reads the Python manual under {root}: apt-get install python3.11-doc")
    files = sorted(root.rglob("*.html"))
    pages = []
    for number in range(count):
        file = files[number % len(files)]
        pages.append((f"http://docs.example.org/{number // len(files)}/{file.relative_to(root)}", file.read_bytes()))
    return pages


def write_warcs(pages: list[tuple[str, bytes]], directory: pathlib.Path, per_file: int = PAGES_PER_WARC) -> list[str]:
    """The pages as crawl WARC files (gzip, a response and a metadata record per page), `per_file` pages each."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(pages), per_file):
        path = directory / f"crawl-{start // per_file:04d}.warc.gz"
        with open(path, "wb") as stream:
            writer = WarcFileWriter(stream, filename=path.name)
            for url, body in pages[start : start + per_file]:
                writer.write_exchange(
                    url,
                    request_headers=[("Host", url.split("/")[2])],
                    status_line="200 OK",
                    response_headers=[("Content-Type", "text/html; charset=utf-8")],
                    body=body,
                    metadata={"robots": "allowed", "depth": "0"},
                )
        paths.append(str(path))
    return paths


def extract(warcs, out: pathlib.Path, engine: str, spark=None) -> None:
    from data_code.extract.config import ExtractConfig
    from data_code.extract.pipeline import extract_to_parquet

    out.mkdir(parents=True, exist_ok=True)
    config = ExtractConfig(engine=engine, workers=WORKERS)
    extract_to_parquet(warcs, str(out / "documents.parquet"), str(out / "rejections.parquet"), config, spark=spark)


def filter_(documents: pathlib.Path, out: pathlib.Path, engine: str, model: str, spark=None) -> None:
    from data_code.filters.config import FilterConfig
    from data_code.filters.stage import filter_documents

    out.mkdir(parents=True, exist_ok=True)
    config = FilterConfig(engine=engine, workers=WORKERS, quality_threshold=0.2)
    filter_documents(str(documents), out, config, quality_model_path=model, spark=spark)


def tokenize(documents: pathlib.Path, tokenizer_dir: str, out: pathlib.Path, engine: str, spark=None) -> None:
    from data_code.shards.build import build_shards
    from data_code.shards.config import ShardConfig

    out.mkdir(parents=True, exist_ok=True)
    build_shards(str(documents), tokenizer_dir, out, ShardConfig(engine=engine, seq_len=256), spark=spark)


def _timed(function, out: pathlib.Path) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        function(out)
        best = min(best, time.perf_counter() - started)
    return best


def _same(left: pathlib.Path, right: pathlib.Path) -> bool:
    names = sorted(path.relative_to(left) for path in left.rglob("*") if path.is_file())
    other = sorted(path.relative_to(right) for path in right.rglob("*") if path.is_file())
    if names != other:
        return False
    return all((left / name).read_bytes() == (right / name).read_bytes() for name in names)


def run(quick: bool) -> dict:
    from data_code.filters.quality_classifier import (
        QualityClassifierConfig,
        default_training_examples,
        train_quality_classifier,
    )
    from data_code.spark import build_spark_session
    from data_code.tokenizer.config import TokenizerConfig
    from data_code.tokenizer.train import train_tokenizer

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="lmforge-bench-engines-"))
    pages = real_pages(PAGES["quick" if quick else "full"], scratch)
    warcs = write_warcs(pages, scratch / "warcs")
    positives, negatives = default_training_examples(seed=0)
    train_quality_classifier(positives, negatives, scratch / "quality", QualityClassifierConfig())
    model = str(scratch / "quality" / "model.bin")

    started = time.perf_counter()
    spark = build_spark_session("local[2]", "lmforge-bench-data-engines")
    session_s = time.perf_counter() - started
    try:
        extract(warcs, scratch / "reference", "local")  # the stages' inputs, made once
        documents = scratch / "reference" / "documents.parquet"
        filter_(documents, scratch / "reference-filtered", "local", model)
        kept = scratch / "reference-filtered" / "documents.parquet"
        train_tokenizer(str(kept), scratch / "tokenizer", TokenizerConfig(vocab_size=2000))
        tokenizer = str(scratch / "tokenizer")
        text_mb = {
            "extraction": sum(len(body) for _, body in pages) / 1e6,  # the HTML it parses
            "filters": _text_mb(documents),
            "tokenization": _text_mb(kept),
        }
        stages = {
            "extraction": (lambda out, engine, session=None: extract(warcs, out, engine, session), len(pages)),
            "filters": (
                lambda out, engine, session=None: filter_(documents, out, engine, model, session),
                pq.read_metadata(documents).num_rows,
            ),
            "tokenization": (
                lambda out, engine, session=None: tokenize(kept, tokenizer, out, engine, session),
                pq.read_metadata(kept).num_rows,
            ),
        }
        one = _single_document_inputs(scratch, warcs[0], documents, kept)
        report = {"pages": len(pages), "spark_session_start_s": round(session_s, 2), "stages": {}}
        report["identical"], report["docs_per_s"] = {}, {}
        for name, (stage, docs) in stages.items():
            local_s = _timed(lambda out, stage=stage: stage(out, "local"), scratch / name / "local")
            spark_s = _timed(lambda out, stage=stage: stage(out, "spark", spark), scratch / name / "spark")
            identical = _same(scratch / name / "local", scratch / name / "spark")
            fixed_s = _timed(lambda out, name=name: one[name](out, spark), scratch / name / "one")
            report["identical"][name] = identical
            report["docs_per_s"][name] = {"local": round(docs / local_s, 1), "spark": round(docs / spark_s, 1)}
            report["stages"][name] = {
                "documents": docs,
                "text_mb": round(text_mb[name], 2),
                "local_s": round(local_s, 2),
                "spark_s": round(spark_s, 2),
                "local_mb_per_s": round(text_mb[name] / local_s, 2),
                "spark_mb_per_s": round(text_mb[name] / spark_s, 2),
                "spark_fixed_cost_s": round(fixed_s, 2),
                "identical": identical,
            }
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _text_mb(documents: pathlib.Path) -> float:
    table = pq.read_table(documents, columns=["text"])
    return sum(len(text.encode()) for text in table.column("text").to_pylist()) / 1e6


def _single_document_inputs(scratch: pathlib.Path, warc: str, documents: pathlib.Path, kept: pathlib.Path) -> dict:
    """Each stage on Spark over one document: its fixed cost."""
    [one_warc] = write_warcs(real_pages(1, scratch), scratch / "one")
    one_doc, one_kept = scratch / "one" / "documents.parquet", scratch / "one" / "kept.parquet"
    pq.write_table(pq.read_table(documents).slice(0, 1), one_doc)
    pq.write_table(pq.read_table(kept).slice(0, 1), one_kept)
    model = str(scratch / "quality" / "model.bin")
    tokenizer = str(scratch / "tokenizer")
    return {
        "extraction": lambda out, spark: extract([one_warc], out, "spark", spark),
        "filters": lambda out, spark: filter_(one_doc, out, "spark", model, spark),
        "tokenization": lambda out, spark: tokenize(one_kept, tokenizer, out, "spark", spark),
    }


def print_table(report: dict) -> None:
    print(f"\n{report['pages']} real pages; Spark session start {report['spark_session_start_s']} s (local[2])")
    print("| stage | documents | text MB | local docs/s | Spark docs/s | local MB/s | Spark MB/s | Spark fixed cost "
          "| identical |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, row in report["stages"].items():
        rates = report["docs_per_s"][name]
        print(
            f"| {name} | {row['documents']} | {row['text_mb']} | {rates['local']} | {rates['spark']} | "
            f"{row['local_mb_per_s']} | {row['spark_mb_per_s']} | {row['spark_fixed_cost_s']} s | "
            f"{'yes' if row['identical'] else 'NO'} |"
        )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{PAGES['quick']} pages instead of {PAGES['full']}")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = parser.parse_args(argv)
    report = run(args.quick)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
