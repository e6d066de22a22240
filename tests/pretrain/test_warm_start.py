"""Continued pretraining: a run starts from its parent checkpoint's weights and optimizer state, re-warms and
re-decays its learning rate; a bad optimizer state falls back to a fresh optimizer, bad weights are refused."""

import shutil
from pathlib import Path

import pytest

from model_code.checkpoint import MODEL_FILE, OPTIMIZER_FILE, list_checkpoints
from model_code.optim import learning_rate_at
from model_code.pretrain import train
from tests.pretrain.conftest import read_metrics


def first_loss(stats) -> float:
    return next(r["loss"] for r in read_metrics(stats["metrics_path"]) if "loss" in r)


@pytest.fixture
def parent(make_config):
    """A parent run of 60 steps and its last checkpoint."""
    stats = train(make_config("parent", max_steps=60, learning_rate=1e-2, checkpoint_every=60, log_every=1))
    return stats, list_checkpoints(Path(stats["model_dir"]).parent)[-1]


def test_a_continued_run_starts_where_its_parent_ended(make_config, parent):
    parent_stats, checkpoint = parent
    fresh = train(make_config("fresh", max_steps=5, log_every=1, learning_rate=1e-2))
    continued = train(make_config("child", max_steps=5, log_every=1, learning_rate=1e-2, init_from=str(checkpoint)))
    assert continued["warm_start"]["optimizer"] == "loaded" and continued["warm_start"]["parent_step"] == 60
    assert first_loss(continued) < first_loss(fresh) - 0.5  # it learned from where the parent was
    assert abs(first_loss(continued) - parent_stats["final_loss"]) < 0.5
    rates = [r["lr"] for r in read_metrics(continued["metrics_path"]) if "lr" in r]
    assert rates[0] < rates[1]  # re-warmed from its own step 0


def test_a_corrupt_optimizer_state_falls_back_to_a_fresh_optimizer(make_config, parent, tmp_path):
    _, checkpoint = parent
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    (copy / OPTIMIZER_FILE).write_bytes(b"not a torch file")
    continued = train(make_config("child", max_steps=3, log_every=1, init_from=str(copy)))
    assert continued["warm_start"]["optimizer"].startswith("fresh (optimizer.bin")


def test_weights_that_do_not_load_are_refused_naming_the_file(make_config, parent, tmp_path):
    _, checkpoint = parent
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    (copy / MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=f"parent checkpoint .*copy: its weights {MODEL_FILE} do not load"):
        train(make_config("child", max_steps=3, init_from=str(copy)))


def test_warmup_stable_decay_holds_the_peak_then_decays_over_the_last_fraction():
    rates = [learning_rate_at(s, peak=1.0, warmup_steps=10, total_steps=100, min_ratio=0.1, schedule="wsd",
                              decay_fraction=0.2) for s in range(100)]  # fmt: skip
    assert rates[9] == 1.0 and rates[10:80] == [1.0] * 70
    assert rates[80] < 1.0 and all(a > b for a, b in zip(rates[80:], rates[81:], strict=False))
    assert rates[-1] == pytest.approx(0.1)


@pytest.mark.parametrize(("field", "value"), [("schedule", "linear"), ("decay_fraction", 0.0)])
def test_bad_schedule_settings_name_the_field(make_config, field, value):
    with pytest.raises(ValueError, match=field):
        make_config(**{field: value})
