"""model_code.evaluate.perplexity: equal to a direct torch loss over the same tokens; bits per byte consistent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from model_code.evaluate.perplexity import validation_perplexity


def validation_rows(shards_dir: Path) -> np.ndarray:
    """Every validation row, (rows, T + 1), read straight from the shard files (no ShardReader)."""
    index = json.loads((shards_dir / "index.json").read_text())
    files = [np.fromfile(shards_dir / entry["file"], dtype=index["dtype"]) for entry in index["splits"]["validation"]]
    return np.concatenate(files).reshape(-1, index["row_tokens"]).astype(np.int64)


@torch.no_grad()
def direct_loss(model_dir: Path, rows: np.ndarray, pad_id: int) -> tuple[float, int]:
    """(summed loss in nats, scored targets): one row per forward, pad targets left out."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total, count = 0.0, 0
    for row in torch.from_numpy(rows):
        logits = model(input_ids=row[None, :-1]).logits[0]  # (T, V)
        keep = row[1:] != pad_id
        total += F.cross_entropy(logits.float(), row[1:], reduction="none")[keep].double().sum().item()
        count += int(keep.sum())
    return total, count


def test_perplexity_equals_a_direct_loss_over_the_same_tokens(untrained_model_dir, shards_dir):
    rows = validation_rows(shards_dir)
    pad_id = json.loads((shards_dir / "index.json").read_text())["pad_id"]
    assert (rows[:, 1:] == pad_id).any()  # the padded tail of the split is there, and must be left out
    loss_sum, targets = direct_loss(untrained_model_dir, rows, pad_id)
    stats = validation_perplexity(untrained_model_dir, shards_dir, max_tokens=None, batch_size=1)
    assert stats["rows"] == len(rows) and stats["tokens"] == targets and stats["split"] == "validation"
    assert stats["loss"] == pytest.approx(loss_sum / targets, rel=1e-12)  # the same sums, in another row order
    assert stats["perplexity"] == pytest.approx(math.exp(loss_sum / targets), rel=1e-12)


def test_bits_per_byte_counts_the_utf8_bytes_of_the_scored_tokens(untrained_model_dir, shards_dir):
    stats = validation_perplexity(untrained_model_dir, shards_dir, max_tokens=None, batch_size=16)
    assert stats["bits_per_byte"] == pytest.approx(
        stats["loss"] * stats["tokens"] / (stats["bytes"] * math.log(2)), rel=1e-12
    )
    tokenizer = AutoTokenizer.from_pretrained(untrained_model_dir)
    pad_id = tokenizer.pad_token_id
    texts = [
        tokenizer.decode([t for t in row[1:] if t != pad_id], skip_special_tokens=True)
        for row in validation_rows(shards_dir)
    ]
    assert not any("\ufffd" in text for text in texts)  # no character split between rows: bytes add up per row
    assert stats["bytes"] == sum(len(text.encode("utf-8")) for text in texts)


def test_max_tokens_takes_whole_rows_until_reached(untrained_model_dir, shards_dir):
    stats = validation_perplexity(untrained_model_dir, shards_dir, max_tokens=100, batch_size=8)
    assert 100 <= stats["tokens"] < 100 + 64  # rows of at most 64 targets: the last one taken reaches 100
    whole = validation_perplexity(untrained_model_dir, shards_dir, max_tokens=None, batch_size=8)
    assert stats["rows"] < whole["rows"] and stats["loss"] != whole["loss"]


@pytest.mark.parametrize(("argument", "value"), [("max_tokens", 0), ("batch_size", 0)])
def test_bad_arguments_name_themselves(untrained_model_dir, shards_dir, argument, value):
    with pytest.raises(ValueError, match=argument):
        validation_perplexity(untrained_model_dir, shards_dir, **{argument: value})


def test_shards_of_another_tokenizer_are_refused(untrained_model_dir, shards_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for path in untrained_model_dir.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    (other / "chat_template.jinja").write_text("{{ messages }}")  # another rendering: another fingerprint
    with pytest.raises(ValueError, match="were made with tokenizer"):
        validation_perplexity(other, shards_dir)


def test_a_missing_model_directory_is_named(shards_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json in model directory"):
        validation_perplexity(tmp_path / "nowhere", shards_dir)


def test_perplexity_by_night_scores_each_night_of_a_shard_set(
    untrained_model_dir, corpus_path, tokenizer_dir, tmp_path
):
    """Two nights' shards read as one set: one perplexity per night; a plain shard directory has no nights."""
    from data_code.shards import ShardConfig, build_shards
    from data_code.shards.shard_set import DayShards, build_shard_set
    from data_code.tokenizer.fingerprint import tokenizer_fingerprint
    from model_code.evaluate.perplexity import perplexity_by_night

    lake = tmp_path / "lake"
    days = []
    for number, day in enumerate(("2026-01-01", "2026-01-02")):
        directory = lake / "token_shards" / f"v{number}"
        build_shards(str(corpus_path), str(tokenizer_dir), directory, ShardConfig(seq_len=64, seed=number,
                     validation_fraction=0.3))  # fmt: skip
        days.append(DayShards(day, f"v{number}", directory))
    the_set = lake / "shard_set" / "s"
    the_set.mkdir(parents=True)
    build_shard_set(days, {}, the_set, the_set, tokenizer_fingerprint(tokenizer_dir))
    nights = perplexity_by_night(untrained_model_dir, the_set, max_tokens=256)
    assert [n["day"] for n in nights] == ["2026-01-01", "2026-01-02"]
    assert all(n["perplexity"] > 1 and n["tokens"] >= 256 for n in nights)
    assert perplexity_by_night(untrained_model_dir, days[0].directory) == []
