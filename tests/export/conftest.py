"""A tiny model over the pretrain tests' tokenizer, and its GGUF files, built once per session.

The model is not trained (training even briefly takes a minute on the shared 2 cores): its weights are drawn with
a wide initializer instead, so that its logits have clear winners and greedy decoding produces varied tokens
whose equality across implementations means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_code.export.gguf import write_gguf
from tests.pretrain.conftest import corpus_path, shards_dir, tokenizer_dir  # noqa: F401 - shared fixtures

INIT_STD = 0.15  # weight init std: wide enough that next-token logits have clear winners


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory, tokenizer_dir) -> Path:  # noqa: F811
    """The HF model directory of the tiny Llama preset (tied embeddings, GQA, the ChatML template), untrained."""
    import dataclasses

    import torch
    from tokenizers import Tokenizer

    from model_code.model import build_model
    from model_code.outputs import save_hf_model
    from model_code.presets import tiny

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    preset = dataclasses.replace(tiny().with_vocab(tokenizer.get_vocab_size()), initializer_range=INIT_STD)
    torch.manual_seed(0)
    model = build_model(preset, eos_id=tokenizer.token_to_id("<|endoftext|>"), pad_id=tokenizer.token_to_id("<|pad|>"))
    return save_hf_model(model, tokenizer_dir, tmp_path_factory.mktemp("tiny_model") / "model")


@pytest.fixture(scope="session")
def gguf_files(tmp_path_factory, hf_dir) -> dict[str, Path]:
    """qtype -> GGUF file of the tiny model, for F32, Q8_0 and Q4_0; the stats of each in gguf_files.stats."""
    out_dir = tmp_path_factory.mktemp("gguf")
    files = {}
    for qtype in ("F32", "Q8_0", "Q4_0"):
        path = out_dir / f"model-{qtype}.gguf"
        write_gguf(hf_dir, path, qtype)
        files[qtype] = path
    return files
