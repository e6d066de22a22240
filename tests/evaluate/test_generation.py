"""model_code.evaluate.generation: greedy chat samples equal transformers' own, and llama.cpp serving latency."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from model_code.evaluate.generation import generation_samples, serving_latency
from model_code.export.gguf import write_gguf

PROMPTS = ["What does the json module do?", "Repeat exactly: a list holds items"]


def test_samples_are_greedy_completions_of_the_chat_rendered_prompt(untrained_model_dir):
    samples = generation_samples(untrained_model_dir, PROMPTS, max_new_tokens=6)
    tokenizer = AutoTokenizer.from_pretrained(untrained_model_dir)
    model = AutoModelForCausalLM.from_pretrained(untrained_model_dir)
    for sample, prompt in zip(samples, PROMPTS, strict=True):
        text = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"  # the template, rendered by hand
        ids = tokenizer(text, return_tensors="pt").input_ids
        greedy = []
        for _ in range(sample["completion_tokens"]):  # greedy by hand: argmax, append, repeat
            with torch.no_grad():
                greedy.append(int(model(input_ids=ids).logits[0, -1].argmax()))
            ids = torch.cat([ids, torch.tensor([[greedy[-1]]])], dim=1)
        assert sample["prompt"] == prompt and sample["prompt_tokens"] == len(tokenizer(text).input_ids)
        assert sample["completion"] == tokenizer.decode(greedy, skip_special_tokens=True)
        assert sample["completion_tokens"] == 6 or sample["stopped"]


def test_bad_arguments_are_named(untrained_model_dir):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generation_samples(untrained_model_dir, PROMPTS, max_new_tokens=0)
    with pytest.raises(ValueError, match="prompts"):
        generation_samples(untrained_model_dir, "one prompt", max_new_tokens=4)


def test_serving_latency_streams_from_the_gguf_file(untrained_model_dir, tmp_path):
    gguf = write_gguf(untrained_model_dir, tmp_path / "model-Q8_0.gguf", "Q8_0")["path"]
    latency = serving_latency(gguf, PROMPTS, max_new_tokens=8, n_ctx=128)
    assert latency["prompts"] == 2 and 2 <= latency["generated_tokens"] <= 16 and latency["threads"] >= 1
    assert latency["ttft_ms_median"] > 0 and latency["ttft_ms_mean"] > 0
    assert latency["decode_tokens_per_s"] is None or latency["decode_tokens_per_s"] > 0
    with pytest.raises(ValueError, match="exceed n_ctx 128"):
        serving_latency(gguf, ["word " * 200], max_new_tokens=8, n_ctx=128)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        serving_latency(tmp_path / "missing.gguf", PROMPTS)
