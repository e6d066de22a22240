"""A real-prose corpus, its tokenizer, and token shards built from them once per session."""

from __future__ import annotations

import pytest

from bench.corpus import corpus_texts, write_corpus
from data_code.shards import ShardConfig, build_shards
from data_code.tokenizer import TokenizerConfig, train_tokenizer

# Small rows and shards so that documents cross row and shard boundaries, and a buffer smaller than the corpus.
SMALL = ShardConfig(seq_len=32, shard_tokens=4000, validation_fraction=0.1, shuffle_buffer=64, batch_documents=100)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "documents.parquet", corpus_texts())


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus_path):
    out_dir = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(str(corpus_path), out_dir, TokenizerConfig(vocab_size=2048))
    return out_dir


@pytest.fixture(scope="session")
def shards(tmp_path_factory, corpus_path, tokenizer_dir):
    """(shard directory, build stats)."""
    out_dir = tmp_path_factory.mktemp("shards")
    return out_dir, build_shards(str(corpus_path), str(tokenizer_dir), out_dir, SMALL)
