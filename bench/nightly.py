"""The nightly data path over N nights of a real site that changes: does each night cost only what it brought?

    .venv/bin/python -m bench.nightly [--quick] [--nights N] --json bench-nightly.json

The site: the Python 3.11 manual (python3.11-doc) served on 127.0.0.1 by bench.nightly_site.ChangingSite: 70% of
its 530 pages on night 1; each later night 10% of them get a sentence changed, ~11 are added and ~11 removed (so
the site keeps its size), the rest stay as they were. The run: the
real `data_refresh` job (crawl → extract → dedupe within the day and against history → filter → training_corpus →
frozen tokenizer → the night's token shards → shard set) through a Dagster instance, MLflow store and lake in a
temporary LMFORGE_HOME, one partition per night.

Per night: wall time of the data stages, documents new / unchanged / superseding / deduplicated against history,
tokens tokenized that night, the tokenizer fingerprint. At the end, over the training set the shard set reads
(the corpus days minus its exclusions): URLs present twice, and pairs of documents from different nights whose
true word 5-gram Jaccard is >= 0.8. And the history index choice, measured on the night's real documents: our
band-key tables (what dedupe runs) against datasketch's MinHashLSH (in-memory; its persistent backends need Redis
or Cassandra) for the same lookup.

Training (bench.nightly_training; --no-train skips it): each night continues the previous night's model on its new
rows plus a replay share, for a fixed token budget; at the end a model from scratch on the union with the chain's
whole budget. Per night: training wall time, tokens trained, held-out perplexity of the continued model.

Goals: 0 URLs twice, 0 near-duplicate pairs across nights, one tokenizer fingerprint, every night's data wall
time <= 1.3x night 2's (flat, not growing with history); continued_over_scratch_ppl <= 1.02, every night's training
wall time <= 1.3x night 2's, forgetting_pct <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

FIRST_NIGHT = date(2026, 6, 1)
GOAL_WALL_RATIO = 1.3
GOAL_CONTINUED_OVER_SCRATCH = 1.02
GOAL_FORGETTING_PCT = 2.0


def run_config(site: str) -> dict:
    """The crawl of the whole changing site each night (it is small), and defaults everywhere else."""
    return {
        "ops": {
            "raw_crawl": {
                "config": {
                    "seeds": [site + "index.html"],
                    "max_pages": 1000,
                    "max_depth": 4,
                    "requests_per_second_per_host": 50,
                }
            },
        }
    }


def metadata(result) -> dict[str, dict]:
    """{asset: plain metadata} of a run's materializations."""
    return {
        event.asset_key.to_user_string(): {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def run_night(site, number: int) -> dict:
    from cli.runner import execute_job

    partition = str(FIRST_NIGHT + timedelta(days=number - 1))
    lines: list[str] = []
    with site.serve(number) as url:
        started = time.perf_counter()
        result, log_path = execute_job("data_refresh", run_config(url), partition, out=lines.append)
        wall = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"night {number} ({partition}) failed; see {log_path}")
    made = metadata(result)
    dedupe, shards = made["deduplicated_documents"], made["token_shards"]
    plan = site.night(number)
    return {
        "night": number,
        "partition": partition,
        "data_wall_s": round(wall, 1),
        "site": {
            "present": len(plan.present),
            "edited": len(plan.edited),
            "added": len(plan.added),
            "removed": len(plan.removed),
        },  # fmt: skip
        "documents_in": dedupe["documents_in"],
        "new": dedupe["documents_new"],
        "unchanged": dedupe["documents_unchanged"],
        "superseding": dedupe["documents_superseding"],
        "deduped_against_history": dedupe["duplicates_of_history"],
        "duplicates_within_day": dedupe["duplicates_within_day"],
        "history_lookup_s": dedupe["history_lookup_s"],
        "tokens_tokenized": shards["tokens_added"],
        "tokenizer_fingerprint": made["tokenizer"]["fingerprint"],
        "tokenizer_event": made["tokenizer"]["tokenizer_event"],
        "shard_set_days": made["shard_set"]["days"],
        "shard_set_tokens": made["shard_set"]["tokens"],
        "stage_s": stage_seconds(lines),
    }


def stage_seconds(lines: list[str]) -> dict[str, float]:
    """{asset: seconds} from the runner's one line per asset ("  asset  version  ...  12.3 s")."""
    found = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3 and line.startswith("  ") and words[-1] == "s":
            try:
                found[words[0]] = float(words[-2])
            except ValueError:
                continue
    return found


def training_set() -> list[dict]:
    """Every document the latest shard set trains on, with the night it came from."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from data_code.corpus import corpus_files, excluded_ids
    from data_code.tokenizer.corpus import iter_batches
    from lineage.settings import Settings
    from lineage.store import ArtifactStore

    store = ArtifactStore(Settings.from_env().store_root)
    corpus = store.local_path("training_corpus", store.latest("training_corpus"))
    excluded = excluded_ids(corpus)
    description = json.loads((corpus / "corpus.json").read_text())
    docs = []
    for entry, path in zip(description["days"], corpus_files(corpus), strict=True):
        for batch in iter_batches(path, ["doc_id", "url", "text"], 4096):
            gone = excluded.get(entry["day"], set())
            keep = pc.invert(pc.is_in(batch.column("doc_id"), value_set=pa.array(sorted(gone), pa.string())))
            for row in batch.filter(keep).to_pylist():
                docs.append({**row, "night": entry["day"]})
    return docs


def index_choice(docs: list[dict]) -> dict:
    """The history lookup two ways on the same documents: the first nights as history, the last as tonight."""
    import numpy as np
    import pyarrow as pa
    from datasketch import MinHash, MinHashLSH

    from data_code.dedupe.config import DedupeConfig
    from data_code.dedupe.core import normalize_text
    from data_code.dedupe.history import HistoryIndex, hash_texts

    config = DedupeConfig(workers=1)
    nights = sorted({doc["night"] for doc in docs})
    history = [doc for doc in docs if doc["night"] != nights[-1]]
    tonight = [doc for doc in docs if doc["night"] == nights[-1]] or history[:100]
    started = time.perf_counter()
    exact, bands = hash_texts(pa.array([d["text"] for d in history], pa.string()), config)
    index = HistoryIndex([], np.zeros(len(history), np.int64), [d["doc_id"] for d in history],
                         [d["url"] for d in history], np.arange(len(history)), exact, bands)  # fmt: skip
    build_ours = time.perf_counter() - started
    started = time.perf_counter()
    _, query = hash_texts(pa.array([d["text"] for d in tonight], pa.string()), config)
    pairs = len(index.band_candidates(query)[0])
    ours = time.perf_counter() - started

    def minhash(text: str) -> MinHash:
        words = normalize_text(text).split()
        shingles = {" ".join(words[i : i + config.ngram]) for i in range(max(1, len(words) - config.ngram + 1))}
        signature = MinHash(num_perm=config.num_perm, seed=config.seed)
        signature.update_batch([s.encode() for s in shingles])
        return signature

    started = time.perf_counter()
    lsh = MinHashLSH(num_perm=config.num_perm, params=(config.bands, config.rows))
    for doc in history:
        lsh.insert(doc["doc_id"], minhash(doc["text"]))
    build_theirs = time.perf_counter() - started
    started = time.perf_counter()
    found = sum(len(lsh.query(minhash(doc["text"]))) for doc in tonight)
    theirs = time.perf_counter() - started
    return {
        "history_documents": len(history),
        "tonight_documents": len(tonight),
        "band_tables": {"index_s": round(build_ours, 3), "lookup_s": round(ours, 3), "candidates": pairs},
        "datasketch_minhashlsh": {
            "index_s": round(build_theirs, 3),
            "lookup_s": round(theirs, 3),
            "candidates": found,
        },  # fmt: skip
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 nights instead of 7")
    parser.add_argument("--nights", type=int, help="how many nights (default 7, --quick 3)")
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--home", help="LMFORGE_HOME to use (default: a new temporary directory)")
    parser.add_argument("--no-train", action="store_true", help="the data stages only")
    parser.add_argument("--tokens-per-night", type=int, default=131072, help="a continued night's token budget")
    parser.add_argument("--first-night-tokens", type=int, default=524288, help="night 1's (from scratch)")
    args = parser.parse_args()
    nights = args.nights or (3 if args.quick else 7)
    home = Path(args.home or tempfile.mkdtemp(prefix="lmforge-bench-nightly-"))
    os.environ["LMFORGE_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    from bench.nightly_site import ChangingSite, near_duplicate_pairs, urls_twice
    from bench.nightly_training import Chain
    from cli.runner import prepare_environment
    from lineage.settings import Settings

    prepare_environment(Settings.from_env())
    # About as many pages added as removed each night (~11 of ~370), so the site's size stays steady and the wall
    # time measures what the history costs, not a growing site.
    site = ChangingSite(seed=0, add_share=0.02, remove_share=0.03)
    rows = []
    chain = None if args.no_train else Chain(home / "bench-training", args.tokens_per_night, args.first_night_tokens)
    for number in range(1, nights + 1):
        rows.append(run_night(site, number))
        if chain is not None:
            rows[-1]["train"] = chain.night(number, rows[-1]["partition"])
        print_row(rows[-1], header=number == 1)
    docs = training_set()
    pairs = near_duplicate_pairs(docs)
    twice = urls_twice(docs)
    walls = [row["data_wall_s"] for row in rows]
    results = {
        "nights": rows,
        "home": str(home),
        "data_wall_s_per_night": walls,
        "tokens_tokenized_per_night": [row["tokens_tokenized"] for row in rows],
        "tokenizer_fingerprints": [row["tokenizer_fingerprint"] for row in rows],
        "urls_twice_in_training_set": len(twice),
        "urls_twice_examples": twice[:10],
        "near_duplicate_pairs_across_nights": len(pairs),
        "near_duplicate_examples": [
            {
                "a": docs[i]["url"],
                "a_night": docs[i]["night"],
                "b": docs[j]["url"],
                "b_night": docs[j]["night"],
                "jaccard": round(score, 3),
            }  # fmt: skip
            for i, j, score in pairs[:10]
        ],
        "training_set_documents": len(docs),
        "history_index_choice": index_choice(docs),
    }
    ratio = max(walls[2:], default=walls[-1]) / walls[1] if len(walls) > 1 else 1.0
    results["wall_ratio_to_night_2"] = round(ratio, 2)
    results["goals"] = {
        "urls_twice_is_0": results["urls_twice_in_training_set"] == 0,
        "near_duplicate_pairs_is_0": results["near_duplicate_pairs_across_nights"] == 0,
        "one_tokenizer_fingerprint": len(set(results["tokenizer_fingerprints"])) == 1,
        f"wall_per_night_le_{GOAL_WALL_RATIO}x_night_2": ratio <= GOAL_WALL_RATIO,
    }
    if chain is not None:
        results.update(training_results(rows, chain))
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_summary(results)


def training_results(rows: list[dict], chain) -> dict:
    """The training half's JSON fields and goals (see the module docstring)."""
    trains = [row["train"] for row in rows]
    scratch = chain.scratch_reference()
    continued = next((t["heldout_ppl"] for t in reversed(trains) if "heldout_ppl" in t), None)
    walls = [t["train_wall_s"] for t in trains]
    later = [wall for wall in walls[2:] if wall]
    ratio = max(later) / walls[1] if later and len(walls) > 1 and walls[1] else 1.0
    over = round(continued / scratch["heldout_ppl"], 4) if continued else None
    forgetting = chain.forgetting_pct()
    return {
        "train_wall_s_per_night": walls,
        "tokens_trained_per_night": [t["tokens_trained"] for t in trains],
        "continued_ppl_per_night": [t.get("heldout_ppl") for t in trains],
        "continued_ppl": continued,
        "scratch_ppl": scratch["heldout_ppl"],
        "scratch": scratch,
        "continued_over_scratch_ppl": over,
        "forgetting_pct": forgetting,
        "train_wall_ratio_to_night_2": round(ratio, 2),
        "training_goals": {
            f"continued_over_scratch_ppl_le_{GOAL_CONTINUED_OVER_SCRATCH}": over is not None
            and over <= GOAL_CONTINUED_OVER_SCRATCH,
            f"train_wall_per_night_le_{GOAL_WALL_RATIO}x_night_2": ratio <= GOAL_WALL_RATIO,
            f"forgetting_pct_le_{GOAL_FORGETTING_PCT:g}": forgetting <= GOAL_FORGETTING_PCT,
        },
    }


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'night':>5} {'wall s':>7} {'docs in':>7} {'new':>5} {'unchg':>5} {'supers':>6} {'hist dup':>8} "
              f"{'tokens':>8} {'train s':>7} {'trained':>8} {'ppl':>8}  tokenizer")  # fmt: skip
    train = row.get("train") or {}
    print(
        f"{row['night']:>5} {row['data_wall_s']:>7.1f} {row['documents_in']:>7} {row['new']:>5} {row['unchanged']:>5} "
        f"{row['superseding']:>6} {row['deduped_against_history']:>8} {row['tokens_tokenized']:>8} "
        f"{train.get('train_wall_s', 0):>7.1f} {train.get('tokens_trained', 0):>8} "
        f"{train.get('heldout_ppl', 0):>8.2f}  "
        f"{row['tokenizer_fingerprint'][:12]} ({row['tokenizer_event']})"
    )


def print_summary(results: dict) -> None:
    choice = results["history_index_choice"]
    print(f"\ntraining set: {results['training_set_documents']} documents")
    print(f"URLs twice in the training set: {results['urls_twice_in_training_set']}")
    print(
        f"near-duplicate pairs across nights (5-gram Jaccard >= 0.8): {results['near_duplicate_pairs_across_nights']}"
    )
    print(f"tokenizer fingerprints: {len(set(results['tokenizer_fingerprints']))} distinct")
    print(f"worst later night / night 2 wall time: {results['wall_ratio_to_night_2']}x (goal <= {GOAL_WALL_RATIO}x)")
    print(
        f"history lookup, {choice['tonight_documents']} documents against {choice['history_documents']}: band tables "
        f"{choice['band_tables']['index_s']} s index + {choice['band_tables']['lookup_s']} s lookup, datasketch "
        f"MinHashLSH {choice['datasketch_minhashlsh']['index_s']} s + {choice['datasketch_minhashlsh']['lookup_s']} s"
    )
    if "continued_ppl" in results:
        print(
            f"continued chain: held-out ppl {results['continued_ppl']}, from scratch on the union with the same "
            f"{results['scratch']['tokens_trained']} tokens: {results['scratch_ppl']} "
            f"(ratio {results['continued_over_scratch_ppl']}, goal <= {GOAL_CONTINUED_OVER_SCRATCH}); "
            f"forgetting {results['forgetting_pct']} % (goal <= {GOAL_FORGETTING_PCT:g}); "
            f"training wall, worst later night / night 2: {results['train_wall_ratio_to_night_2']}x"
        )
    goals = {**results["goals"], **results.get("training_goals", {})}
    print("goals: " + ", ".join(f"{name} {'met' if met else 'NOT met'}" for name, met in goals.items()))


if __name__ == "__main__":
    main()
