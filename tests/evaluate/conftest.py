"""Fixtures of the evaluation tests: the pretrain tests' corpus, tokenizer and shards, and tiny models on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model_code.metrics import token_byte_lengths
from model_code.model import build_model
from model_code.outputs import save_hf_model
from model_code.presets import tiny
from tests.pretrain.conftest import corpus_path, shards_dir, tokenizer_dir  # noqa: F401 (fixtures, reused)


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory, tokenizer_dir) -> Path:  # noqa: F811 (the imported fixture)
    """A freshly initialized tiny Llama (seed 0) saved in HF format with the test tokenizer."""
    torch.manual_seed(0)
    model = build_model(tiny().with_vocab(len(token_byte_lengths(tokenizer_dir))), eos_id=0, pad_id=3)
    return save_hf_model(model, tokenizer_dir, tmp_path_factory.mktemp("untrained") / "model")
