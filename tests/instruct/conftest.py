"""A tiny untrained Llama on the tokenizer tests/pretrain trains, and one SFT run and one DPO run on easy data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model_code.instruct import DpoConfig, SftConfig, train_dpo, train_sft
from model_code.model import build_model
from model_code.outputs import save_hf_model
from model_code.presets import tiny
from tests.pretrain.conftest import corpus_path, tokenizer_dir  # noqa: F401  (session fixtures reused)

COLOURS = ("red", "green", "blue", "yellow", "black", "white", "orange", "purple")
FRUITS = ("apple", "pear", "plum", "cherry", "grape", "lemon", "melon", "peach", "mango", "kiwi", "lime", "fig")


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory, tokenizer_dir) -> Path:  # noqa: F811
    """hidden 64, 2 layers, freshly initialized (seed 0), saved with the tokenizer's files."""
    fingerprint = json.loads((tokenizer_dir / "fingerprint.json").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    preset = tiny().with_vocab(fingerprint["vocab_size"])
    model = build_model(preset, eos_id=fingerprint["eos_id"], pad_id=fingerprint["pad_id"])
    return save_hf_model(model, tokenizer_dir, tmp_path_factory.mktemp("base") / "model")


def chat_rows() -> list[dict]:
    """Short conversations with one fixed answer pattern: easy to fit in a few steps."""
    return [
        {
            "example_id": f"c{i}",
            "messages": [
                {"role": "user", "content": f"What colour is the {colour} box?"},
                {"role": "assistant", "content": f"The box is {colour}."},
            ],
        }
        for i, colour in enumerate(COLOURS)
    ]


def preference_rows(fruits) -> list[dict]:
    """Easy pairs: chosen repeats the fruit politely, rejected is noise."""
    return [
        {"prompt": f"Name the fruit: {fruit}.", "chosen": f"The fruit is {fruit}.", "rejected": "zzz qqq xxx"}
        for fruit in fruits
    ]


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory, base_model_dir) -> dict:
    out_dir = tmp_path_factory.mktemp("sft")
    logged = []
    config = SftConfig(
        lora_r=8,
        lora_alpha=16,
        learning_rate=1e-2,
        max_steps=16,
        per_device_batch_size=8,
        max_length=64,
        logging_steps=2,
    )
    stats = train_sft(config, base_model_dir, chat_rows(), out_dir, on_log=logged.append)
    return {"out_dir": out_dir, "stats": stats, "logged": logged}


@pytest.fixture(scope="session")
def dpo_run(tmp_path_factory, sft_run) -> dict:
    out_dir = tmp_path_factory.mktemp("dpo")
    config = DpoConfig(
        lora_r=8,
        lora_alpha=16,
        learning_rate=1e-2,
        beta=0.1,
        max_steps=12,
        per_device_batch_size=4,
        max_length=64,
        logging_steps=2,
    )
    train, validation = preference_rows(FRUITS[:8]), preference_rows(FRUITS[8:])
    stats = train_dpo(config, sft_run["out_dir"] / "model", train, validation, out_dir)
    return {"out_dir": out_dir, "stats": stats}
