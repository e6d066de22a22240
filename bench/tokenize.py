"""Token shards: lmforge's build_shards end to end against the raw Rust encoder, and its memory at 1x and 4x.

    .venv/bin/python -m bench.tokenize [--quick] --json bench-tokenize.json

Corpus: real English prose, the standard-library docstring paragraphs (data_code.filters.quality_examples),
reshuffled and repeated to a few MB, as two Document Parquet files: "pages" (3-12 paragraphs per document, ~1.4 KB,
the size of a web page after extraction) and "paragraphs" (one paragraph per document, ~190 B: short documents,
where per-document work weighs most). The byte-level BPE (4,096 tokens, the tiny preset) is trained once up front.

Throughput, in one run, best of REPEATS interleaved runs each (the machine is shared; the best run is the least
disturbed), counting the same tokens (document text only, no EOS or padding):
- lmforge: build_shards with ShardConfig() defaults: read Parquet, split, shuffle, encode, pack, write shards,
  sidecars and manifest;
- raw encode_batch: `Tokenizer.encode_batch(texts[i:i + 1024])` over the texts already in memory (the same batch
  size as build_shards' batch_documents), the baseline the goal (>= 0.8x) is stated against;
- raw encode_batch_fast: the same without character offsets (what build_shards calls), for reference.
Memory: peak RSS (VmHWM) of build_shards in a fresh subprocess on the pages corpus at 1x and at 4x (four
times the documents; goal ratio <= 1.3), and of a subprocess that only imports and loads the tokenizer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import subprocess
import sys
import tempfile
import time

SIZES = {"quick": {"pages_mb": 2, "paragraphs_mb": 1}, "full": {"pages_mb": 12, "paragraphs_mb": 4}}
REPEATS = {"quick": 2, "full": 3}
BATCH = 1024  # documents per encode call: ShardConfig().batch_documents


def write_corpus(path: pathlib.Path, target_mb: float, pages: bool, seed: int = 0) -> dict:
    """A Document Parquet of reshuffled stdlib paragraphs; returns its documents and characters."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_code.filters.quality_examples import stdlib_paragraphs

    paragraphs, rng, texts, chars, copy = list(stdlib_paragraphs()), random.Random(seed), [], 0, 0
    while chars < target_mb * 1e6:
        order = rng.sample(paragraphs, len(paragraphs))
        while order:
            size = rng.randint(3, 12) if pages else 1
            texts.append("\n\n".join(order[:size]))
            order, chars = order[size:], chars + len(texts[-1])
        copy += 1
    ids = [f"{seed:02d}{number:010d}" for number in range(len(texts))]
    urls = [f"https://docs{number % 7}.example/{copy}/{number}" for number in range(len(texts))]
    domains = [url.split("/")[2] for url in urls]
    table = pa.table({"doc_id": ids, "url": urls, "domain": domains, "text": texts})
    pq.write_table(table, path, row_group_size=2048)
    return {"documents": len(texts), "chars": chars}


def raw_tokens_per_s(tokenizer, texts: list[str], method: str) -> tuple[float, int]:
    encode = getattr(tokenizer, method)
    started, tokens = time.perf_counter(), 0
    for start in range(0, len(texts), BATCH):
        tokens += sum(len(encoding) for encoding in encode(texts[start : start + BATCH], add_special_tokens=False))
    return tokens / (time.perf_counter() - started), tokens


def lmforge_tokens_per_s(documents: pathlib.Path, tokenizer_dir: pathlib.Path, out_dir: pathlib.Path):
    from data_code.shards import ShardConfig, build_shards

    started = time.perf_counter()
    stats = build_shards(str(documents), str(tokenizer_dir), out_dir, ShardConfig())
    elapsed = time.perf_counter() - started
    tokens = sum(split["tokens"] - split["documents"] for split in stats["splits"].values())  # EOS excluded
    return tokens / elapsed, tokens


def throughput(documents: pathlib.Path, tokenizer_dir: pathlib.Path, work: pathlib.Path, repeats: int) -> dict:
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tokenizer.encode_special_tokens = True  # as build_shards encodes
    texts = pq.read_table(documents, columns=["text"]).column(0).to_pylist()
    best = {"lmforge": 0.0, "encode_batch": 0.0, "encode_batch_fast": 0.0}
    counted = {}
    for repeat in range(repeats):
        for method in best:
            if method == "lmforge":
                rate, tokens = lmforge_tokens_per_s(documents, tokenizer_dir, work / f"shards-{repeat}")
            else:
                rate, tokens = raw_tokens_per_s(tokenizer, texts, method)
            best[method], counted[method] = max(best[method], rate), tokens
    assert len(set(counted.values())) == 1, f"methods counted different tokens: {counted}"
    return {
        "tokens": counted["lmforge"],
        "lmforge_tokens_per_s": round(best["lmforge"]),
        "raw_tokens_per_s": round(best["encode_batch"]),
        "raw_fast_tokens_per_s": round(best["encode_batch_fast"]),
        "ratio_vs_raw": round(best["lmforge"] / best["encode_batch"], 3),
        "ratio_vs_raw_fast": round(best["lmforge"] / best["encode_batch_fast"], 3),
    }


def peak_rss_mb(*arguments: str) -> dict:
    """Run this module as a child with `arguments`; its JSON report (peak RSS in MB, and what it did)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.tokenize", *arguments], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_of_this_process_mb() -> float:
    """VmHWM, the peak resident set of this process image. Not ru_maxrss: Linux carries the parent's peak RSS
    over fork and exec into the child's ru_maxrss, so a child of a large parent would report the parent's."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)  # kB -> MB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(arguments: list[str]) -> None:
    """In a fresh process: build shards (or only load the tokenizer, for 'idle') and report peak RSS."""
    from tokenizers import Tokenizer

    from data_code.shards import ShardConfig, build_shards

    mode, documents, tokenizer_dir, out_dir = arguments
    report = {}
    if mode == "build":
        stats = build_shards(documents, tokenizer_dir, pathlib.Path(out_dir), ShardConfig())
        report = {"documents": stats["documents_train"] + stats.get("documents_validation", 0)}
    else:
        Tokenizer.from_file(str(pathlib.Path(tokenizer_dir) / "tokenizer.json"))
    report["peak_rss_mb"] = peak_rss_of_this_process_mb()
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora, fewer repeats")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    from data_code.tokenizer import TokenizerConfig, train_tokenizer

    size = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as temporary:
        work = pathlib.Path(temporary)
        unique = write_corpus(work / "unique.parquet", 0.1, pages=False)  # each paragraph once: for training
        tokenizer_dir = work / "tokenizer"
        trained = train_tokenizer(str(work / "unique.parquet"), tokenizer_dir, TokenizerConfig(vocab_size=4096))
        corpora = {
            "pages": write_corpus(work / "pages.parquet", SIZES[size]["pages_mb"], pages=True),
            "paragraphs": write_corpus(work / "paragraphs.parquet", SIZES[size]["paragraphs_mb"], pages=False),
        }
        write_corpus(work / "pages-4x.parquet", 4 * SIZES[size]["pages_mb"], pages=True, seed=1)
        results = {"size": size, "vocab_size": trained["vocab_size"], "training_documents": unique["documents"]}
        for name, corpus in corpora.items():
            measured = throughput(work / f"{name}.parquet", tokenizer_dir, work / name, REPEATS[size])
            results[name] = {**corpus, "mb": round(corpus["chars"] / 1e6, 2), **measured}
        idle = peak_rss_mb("--child", "idle", "-", str(tokenizer_dir), "-")
        one = peak_rss_mb("--child", "build", str(work / "pages.parquet"), str(tokenizer_dir), str(work / "rss1"))
        four = peak_rss_mb("--child", "build", str(work / "pages-4x.parquet"), str(tokenizer_dir), str(work / "rss4"))
    results |= {
        "lmforge_tokens_per_s": results["pages"]["lmforge_tokens_per_s"],
        "raw_tokens_per_s": results["pages"]["raw_tokens_per_s"],
        "ratio_vs_raw": results["pages"]["ratio_vs_raw"],
        "peak_rss_idle_mb": idle["peak_rss_mb"],
        "peak_rss_1x_mb": one["peak_rss_mb"],
        "peak_rss_4x_mb": four["peak_rss_mb"],
        "documents_1x": one["documents"],
        "documents_4x": four["documents"],
        "rss_ratio_4x_1x": round(four["peak_rss_mb"] / one["peak_rss_mb"], 3),
    }
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def print_table(results: dict) -> None:
    print(f"\nbuild_shards vs raw Tokenizer.encode_batch ({results['size']}, vocab {results['vocab_size']})")
    print(
        f"{'corpus':<11} {'MB':>6} {'docs':>7} {'tokens':>9} {'lmforge tok/s':>14} {'raw tok/s':>10} "
        f"{'raw fast tok/s':>15} {'vs raw':>7} {'vs fast':>8}"
    )
    for name in ("pages", "paragraphs"):
        r = results[name]
        print(
            f"{name:<11} {r['mb']:>6} {r['documents']:>7} {r['tokens']:>9} {r['lmforge_tokens_per_s']:>14,} "
            f"{r['raw_tokens_per_s']:>10,} {r['raw_fast_tokens_per_s']:>15,} {r['ratio_vs_raw']:>7} "
            f"{r['ratio_vs_raw_fast']:>8}"
        )
    print(
        f"\npeak RSS (fresh process): tokenizer only {results['peak_rss_idle_mb']} MB, "
        f"build 1x ({results['documents_1x']} docs) {results['peak_rss_1x_mb']} MB, "
        f"4x ({results['documents_4x']} docs) {results['peak_rss_4x_mb']} MB, "
        f"ratio {results['rss_ratio_4x_1x']}"
    )


if __name__ == "__main__":
    main()
