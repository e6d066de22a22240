"""The GGUF model against its HF parent: same tokens, same greedy text (F32), quantization costs that order right."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bench.corpus import TRICKY_TEXTS, corpus_texts
from model_code.export.gguf import write_gguf
from model_code.export.llama import Llama
from model_code.export.quality import (
    first_tokenization_mismatch,
    quantization_quality,
    tokenization_matches,
    validation_windows,
)

pytestmark = pytest.mark.slow  # the session fixture trains a tiny model first
NEW_TOKENS = 32


def probe_texts() -> list[str]:
    chat = "<|im_start|>user\nWhat does os.path.join do?<|im_end|>\n<|im_start|>assistant\n"
    return [text for text in TRICKY_TEXTS if text] + corpus_texts()[:40] + [chat, "  leading and  double  spaces "]


def test_llama_cpp_tokenizes_like_the_hf_tokenizer(hf_dir, gguf_files):
    assert first_tokenization_mismatch(hf_dir, gguf_files["Q8_0"], probe_texts()) is None
    assert tokenization_matches(hf_dir, gguf_files["F32"], probe_texts())


def test_a_tokenizer_with_other_merges_is_detected(hf_dir, tmp_path):
    other = shutil.copytree(hf_dir, tmp_path / "model")
    spec = json.loads((other / "tokenizer.json").read_text())
    spec["model"]["merges"] = spec["model"]["merges"][: len(spec["model"]["merges"]) // 2]
    (other / "tokenizer.json").write_text(json.dumps(spec))
    write_gguf(other, tmp_path / "other.gguf", "F32")
    assert not tokenization_matches(hf_dir, tmp_path / "other.gguf", probe_texts())


def hf_greedy(model, ids: list[int], new_tokens: int) -> list[int]:
    """Greedy continuation by transformers, recomputing the whole sequence each step and never stopping at EOS."""
    sequence = list(ids)
    with torch.no_grad():
        for _ in range(new_tokens):
            sequence.append(int(model(input_ids=torch.tensor([sequence])).logits[0, -1].argmax()))
    return sequence[len(ids) :]


def test_f32_greedy_decode_equals_transformers_token_for_token(hf_dir, gguf_files):
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with Llama(gguf_files["F32"], n_ctx=128) as llm:
        for prompt in ("The module provides", "Return a new list of"):
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            expected = hf_greedy(model, ids, NEW_TOKENS)
            assert llm.greedy(ids, NEW_TOKENS) == expected, prompt
            assert expected == [int(t) for t in llm.logits(ids + expected[:-1])[len(ids) - 1 :].argmax(-1)]
            assert len(set(expected)) > 5  # varied tokens, not one repeated: equality is not luck


def test_quality_is_exact_for_f32_and_worse_for_q4_than_q8(hf_dir, gguf_files, shards_dir):
    results = {
        q: quantization_quality(hf_dir, path, shards_dir, max_tokens=512, seq_len=64) for q, path in gguf_files.items()
    }
    f32, q8, q4 = results["F32"], results["Q8_0"], results["Q4_0"]
    assert f32["tokens"] == 512 and f32["windows"] == 8
    assert abs(f32["ppl_delta_pct"]) < 0.01 and f32["mean_kl"] < 1e-6 and f32["top1_agreement"] > 0.99
    assert f32["parent_ppl"] == q8["parent_ppl"] == q4["parent_ppl"]
    assert abs(q8["ppl_delta_pct"]) < 1.0
    assert f32["mean_kl"] < q8["mean_kl"] < q4["mean_kl"]
    assert q4["top1_agreement"] <= q8["top1_agreement"]


def test_validation_windows_are_consecutive_tokens_of_the_validation_split(shards_dir, tokenizer_dir):
    from data_code.tokenizer.fingerprint import tokenizer_fingerprint

    windows = validation_windows(shards_dir, 300, 64, tokenizer_fingerprint(tokenizer_dir))
    assert windows.shape == (4, 65)
    np.testing.assert_array_equal(windows[0, -1], windows[1, 0])  # neighbours share their boundary token
    with pytest.raises(ValueError, match="made with tokenizer"):
        validation_windows(shards_dir, 300, 64, "0" * 64)
