"""A small, real artifact lake for the audit tests: manifests written by ArtifactStore.commit, real Parquet files,
versions computed the way assets/common.py artifact_version() computes them (versioned config fields + extra
identity + partition, upstream keys).

    raw_crawl[2026-11-28] ── training_corpus A (a.example/1, a.example/2, b.example/1) ── tokenizer
    raw_crawl[2026-11-29] ── training_corpus B (sub.c.example/1, b.example/1)
    token_shards A = corpus A + tokenizer (train: a1, b1; validation: a2) → base_model A → serving_model
    token_shards B = corpus B + tokenizer (train: c1, b1)                  → base_model B
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_code.crawl.config import CrawlConfig
from data_code.shards.config import ShardConfig
from data_code.tokenizer.config import TokenizerConfig
from lineage.identity import compute_version, config_fields, versioned_fields
from lineage.manifest import Manifest, UpstreamRef
from lineage.store import ArtifactStore
from model_code.config import PretrainConfig

DAY, DAY_2 = "2026-11-28", "2026-11-29"
FETCHED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DOCS = {  # doc_id -> (url, licence, robots_meta)
    "a1": ("https://a.example/1", "https://creativecommons.org/licenses/by/4.0/", ""),
    "a2": ("https://a.example/2", None, "noai"),
    "b1": ("https://b.example/1", None, ""),
    "c1": ("https://sub.c.example/1", None, "noindex,noai"),
}
PLACEHOLDER = "set-by-the-asset"  # what assets/pretrain.py records for the run-time paths


@dataclass
class Lake:
    store: ArtifactStore
    versions: dict[str, str] = field(default_factory=dict)  # short name -> version

    def path(self, asset: str, name: str) -> Path:
        return self.store.local_path(asset, self.versions[name])


def publish(store, asset, config, upstream, files, *, partition=None, extra_identity=None, stats=None) -> Manifest:
    """Commit one artifact with `files` {relative path: bytes | pa.Table | JSON-able}; returns its manifest."""
    refs = [UpstreamRef(up.asset, up.version, up.uri, up.partition) for up in upstream]
    identity = {**versioned_fields(config), **(extra_identity or {})}
    if partition:
        identity["partition"] = partition
    version = compute_version(asset, f"{asset}-1", identity, {ref.key: ref.version for ref in refs})
    with store.stage(asset, version) as staging:
        for relative, content in files.items():
            target = staging.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, pa.Table):
                pq.write_table(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(json.dumps(content))
        manifest = Manifest(
            asset=asset,
            version=version,
            config=config_fields(config),
            code_version=f"{asset}-1",
            upstream=refs,
            files=[],
            stats=stats or {},
            git_commit="0" * 40,
            packages={"lmforge": "0.1.0"},
            partition=partition,
            dagster_run_id="dagster-run",
            mlflow_run_id="mlflow-run",
            identity=identity,
        )
        return store.commit(staging, manifest)


def documents_table(doc_ids: list[str]) -> pa.Table:
    rows = [
        {
            "doc_id": doc_id,
            "url": DOCS[doc_id][0],
            "domain": DOCS[doc_id][0].split("/")[2],
            "fetch_time": FETCHED,
            "http_status": 200,
            "license": DOCS[doc_id][1],
            "robots": "allowed",
            "robots_meta": DOCS[doc_id][2],
            "text": f"text of {doc_id}",
        }
        for doc_id in doc_ids
    ]
    return pa.Table.from_pylist(rows)


def fetches_table() -> pa.Table:
    rows = [
        {
            "url": url,
            "final_url": url,
            "fetched_at": FETCHED,
            "http_status": 200,
            "outcome": "ok",
            "robots_decision": "allowed",
            "robots_meta": meta,
            "license": licence,
            "detail": None,
        }
        for url, licence, meta in DOCS.values()
    ]
    rows.append(
        {
            "url": "https://a.example/private/x",
            "final_url": None,
            "fetched_at": FETCHED,
            "http_status": None,
            "outcome": "disallowed_by_robots",
            "robots_decision": "disallowed",
            "robots_meta": None,
            "license": None,
            "detail": "robots.txt",
        }
    )
    return pa.Table.from_pylist(rows)


def spans(doc_ids: list[str]) -> pa.Table:
    starts = [10 * i for i in range(len(doc_ids))]
    return pa.table({"token_start": starts, "token_end": [s + 10 for s in starts], "doc_id": doc_ids})


def shard_files(train: list[str], validation: list[str]) -> dict[str, Any]:
    files: dict[str, Any] = {
        "shards.json": {
            "tokenizer_fingerprint": "f" * 64,
            "splits": {
                "train": {"documents": len(train), "tokens": 10 * len(train)},
                "validation": {"documents": len(validation), "tokens": 10 * len(validation)},
            },
        }
    }
    for split, doc_ids in (("train", train), ("validation", validation)):
        if doc_ids:
            files[f"{split}/00000.bin"] = bytes(range(20 * len(doc_ids)))
            files[f"{split}/00000.spans.parquet"] = spans(doc_ids)
    return files


def model_files(seed: int) -> dict[str, Any]:
    return {
        "model/config.json": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8},
        "model/model.safetensors": bytes([seed]) * 256,
        "data_order.json": {"epochs": [{"epoch": 0, "seed": seed, "shards": ["train/00000.bin"]}], "tokens_seen": 40},
    }


def build_lake(root: Path) -> Lake:
    lake = Lake(ArtifactStore(root))
    store = lake.store
    crawl = publish(
        store,
        "raw_crawl",
        CrawlConfig(seeds=("https://a.example/",)),
        [],
        {"fetches.parquet": fetches_table()},
        partition=DAY,
        stats={"pages_fetched": 4},
    )
    corpus_a = publish(
        store,
        "training_corpus",
        {},
        [crawl],
        {"documents.parquet": documents_table(["a1", "a2", "b1"])},
        stats={"documents": 3},
    )
    crawl_2 = publish(
        store,
        "raw_crawl",
        CrawlConfig(seeds=("https://c.example/",)),
        [],
        {"fetches.parquet": fetches_table()},
        partition=DAY_2,
        stats={"pages_fetched": 4},
    )
    corpus_b = publish(
        store,
        "training_corpus",
        {},
        [crawl_2],
        {"documents.parquet": documents_table(["c1", "b1"])},
        stats={"documents": 2},
    )
    tokenizer = publish(
        store, "tokenizer", TokenizerConfig(), [corpus_a], {"fingerprint.json": {"fingerprint": "f" * 64}}
    )
    shards_a = publish(store, "token_shards", ShardConfig(), [corpus_a, tokenizer], shard_files(["a1", "b1"], ["a2"]))
    shards_b = publish(
        store, "token_shards", ShardConfig(seed=1), [corpus_b, tokenizer], shard_files(["c1", "b1"], [])
    )
    pretrain = dict.fromkeys(("shards_dir", "tokenizer_dir", "output_dir"), PLACEHOLDER)
    model_a = publish(
        store,
        "base_model",
        PretrainConfig(**pretrain, max_steps=4),
        [shards_a, tokenizer],
        model_files(0),
        stats={"parameters": 1234, "val_loss": 5.5, "tokens_seen": 40},
    )
    model_b = publish(
        store,
        "base_model",
        PretrainConfig(**pretrain, max_steps=5),
        [shards_b, tokenizer],
        model_files(1),
        stats={"parameters": 1234, "val_loss": 5.7},
    )
    serving = publish(store, "serving_model", {"formats": ["hf"]}, [model_a], {"model.safetensors": b"weights"})
    published = {
        "crawl": crawl,
        "crawl_2": crawl_2,
        "corpus_a": corpus_a,
        "corpus_b": corpus_b,
        "tokenizer": tokenizer,
        "shards_a": shards_a,
        "shards_b": shards_b,
        "model_a": model_a,
        "model_b": model_b,
        "serving": serving,
    }
    lake.versions = {name: manifest.version for name, manifest in published.items()}
    return lake
