"""A real-prose corpus and a tokenizer trained on it once per session (~0.2 s)."""

from __future__ import annotations

import pytest

from bench.corpus import corpus_texts, write_corpus
from data_code.tokenizer import TokenizerConfig, train_tokenizer


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "documents.parquet", corpus_texts())


@pytest.fixture(scope="session")
def trained(tmp_path_factory, corpus_path):
    """(tokenizer directory, training stats)."""
    out_dir = tmp_path_factory.mktemp("tokenizer")
    return out_dir, train_tokenizer(str(corpus_path), out_dir, TokenizerConfig(vocab_size=2048))
