"""model_code.pretrain.train on the tiny preset: learning, outputs, refusals, presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_code.tokenizer import TokenizerConfig, train_tokenizer
from model_code.config import PretrainConfig
from model_code.model import build_model
from model_code.presets import PRESETS, ModelPreset, tiny
from model_code.pretrain import train
from model_code.steps import out_of_memory_explained
from tests.pretrain.conftest import read_metrics


def test_tiny_run_learns_and_leaves_a_loadable_model(make_config, tokenizer_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    received = []
    stats = train(make_config(max_steps=150, learning_rate=1e-2), on_metrics=received.append)
    records = read_metrics(stats["metrics_path"])
    assert records == received and [r["step"] for r in records if "loss" in r] == list(range(5, 151, 5))
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] - 1.0, losses  # from ~ln(1024) = 6.9 nats: past the unigram plateau (~6)
    assert stats["val_loss"] < 6.0 and 0 < stats["val_bpb"] < 3.5 and stats["mfu"] is None
    output = stats["model_dir"].rsplit("/", 1)[0]
    for name in ("loss_curve.png", "data_order.json", "model/model.safetensors", "model/tokenizer.json"):
        assert (tmp := Path(output) / name).is_file(), tmp
    order = json.loads((Path(output) / "data_order.json").read_text())
    assert order["tokens_seen"] == 150 * 8 * 64 and order["epochs"][0]["shards"][0].startswith("train/")
    generation = json.loads((Path(stats["model_dir"]) / "generation_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(stats["model_dir"])
    assert (
        generation["eos_token_id"] == tokenizer.eos_token_id and generation["pad_token_id"] == tokenizer.pad_token_id
    )
    model = AutoModelForCausalLM.from_pretrained(stats["model_dir"])
    ids = tokenizer("The module provides", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=5, min_new_tokens=5, do_sample=False).shape[1] == ids.shape[1] + 5


def test_shards_of_another_tokenizer_are_refused(make_config, corpus_path, tmp_path):
    other = tmp_path / "other_tokenizer"
    train_tokenizer(str(corpus_path), other, TokenizerConfig(vocab_size=1100))
    with pytest.raises(ValueError, match="were made with tokenizer"):
        train(make_config(tokenizer_dir=str(other)))


def test_shards_longer_than_the_model_context_are_refused(make_config):
    with pytest.raises(ValueError, match=r"seq_len \(64.*max positions \(seq_len 32"):
        train(make_config(model_overrides={"seq_len": 32}))


def test_tokens_per_step_must_be_whole_micro_batches(make_config):
    with pytest.raises(ValueError, match="tokens_per_step"):
        train(make_config(tokens_per_step=1000))


def test_gradient_accumulation_matches_one_big_batch(make_config):
    """2 micro-batches of 8 rows per update follow the same losses as one 16-row micro-batch."""
    accumulated = train(make_config("accumulated", max_steps=10, log_every=1, tokens_per_step=16 * 64))
    whole = train(make_config("whole", max_steps=10, log_every=1, micro_batch_size=16))
    assert accumulated["accumulation_steps"] == 2 and whole["accumulation_steps"] == 1
    a, b = read_metrics(accumulated["metrics_path"]), read_metrics(whole["metrics_path"])
    np.testing.assert_allclose([r["loss"] for r in a], [r["loss"] for r in b], rtol=1e-5)


def test_moe_preset_trains(make_config):
    stats = train(make_config(preset="tiny_moe", max_steps=10, log_every=5))
    config = json.loads((Path(stats["model_dir"]) / "config.json").read_text())
    assert config["architectures"] == ["MixtralForCausalLM"] and config["num_experts_per_tok"] == 2
    assert stats["final_loss"] < 7.0


@pytest.mark.parametrize(("field", "value"), [("num_kv_heads", 3), ("hidden_size", 0), ("experts_per_token", 9)])
def test_invalid_preset_values_name_the_field(field, value):
    values = {"num_experts": 4} if field == "experts_per_token" else {}
    with pytest.raises(ValueError, match=field):
        ModelPreset(**{**tiny().__dict__, **values, field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("micro_batch_size", 0),
        ("learning_rate", -1.0),
        ("preset", "huge"),
        ("mixed_precision", "fp8"),
        ("model_overrides", {"layers": 2}),
    ],
)
def test_invalid_config_values_name_the_field(make_config, field, value):
    with pytest.raises(ValueError, match=field if field != "preset" else "preset must be one of"):
        make_config(**{field: value})


def test_presets_build_stock_models_of_their_size():
    sizes = {}
    for name, make in PRESETS.items():
        with torch.device("meta"):  # shapes only: no memory for the billion-parameter preset
            sizes[name] = sum(p.numel() for p in build_model(make(), eos_id=0, pad_id=3).parameters())
    assert 1e5 < sizes["tiny"] < 1e6 and 1e6 < sizes["small"] < 1e7 and 1.2e8 < sizes["gpt2_124m"] < 1.3e8
    assert 3e8 < sizes["m350"] < 4e8 and 1e9 < sizes["b1"] < 1.2e9 and sizes["tiny_moe"] > sizes["tiny"]


def test_out_of_memory_is_explained():
    with pytest.raises(MemoryError, match="lower micro_batch_size"):
        with out_of_memory_explained((64, 2049)):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    with pytest.raises(RuntimeError, match="unrelated"), out_of_memory_explained((64, 2049)):
        raise RuntimeError("unrelated")


def test_config_round_trips_through_json(make_config, tmp_path):
    config = make_config(model_overrides={"num_layers": 3})
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config.to_dict()))
    assert PretrainConfig.from_json(path) == config
