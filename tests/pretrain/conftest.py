"""A real-prose corpus, a tiny tokenizer and token shards built once per session, and a tiny-run config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.corpus import corpus_texts, write_corpus
from data_code.shards import ShardConfig, build_shards
from data_code.tokenizer import TokenizerConfig, train_tokenizer
from model_code.config import PretrainConfig

SEQ_LEN = 64  # short rows: a step of the tiny model takes milliseconds
SHARDS = ShardConfig(seq_len=SEQ_LEN, shard_tokens=20_000, validation_fraction=0.1, shuffle_buffer=256)
# The tiny preset, narrowed to this context; 8 rows x 64 tokens per micro-batch.
TINY = dict(
    preset="tiny",
    micro_batch_size=8,
    learning_rate=3e-3,
    warmup_steps=5,
    log_every=5,
    eval_every=20,
    eval_batches=2,
    checkpoint_every=20,
)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "documents.parquet", corpus_texts())


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus_path) -> Path:
    out_dir = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(str(corpus_path), out_dir, TokenizerConfig(vocab_size=1024))
    return out_dir


@pytest.fixture(scope="session")
def shards_dir(tmp_path_factory, corpus_path, tokenizer_dir) -> Path:
    out_dir = tmp_path_factory.mktemp("shards")
    build_shards(str(corpus_path), str(tokenizer_dir), out_dir, SHARDS)
    return out_dir


@pytest.fixture
def make_config(tmp_path, shards_dir, tokenizer_dir):
    """PretrainConfig for the tiny run with field overrides; output in tmp_path/<name>."""

    def make(name: str = "run", **overrides) -> PretrainConfig:
        values = {
            **TINY,
            "shards_dir": str(shards_dir),
            "tokenizer_dir": str(tokenizer_dir),
            "output_dir": str(tmp_path / name),
            **overrides,
        }
        return PretrainConfig(**values)

    return make


def write_config(config: PretrainConfig, path: Path) -> Path:
    path.write_text(json.dumps(config.to_dict()), encoding="utf-8")
    return path


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir)
    lines = (path if path.name == "metrics.jsonl" else path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
