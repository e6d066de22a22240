"""Distilling a drafter: a quarter-size student, the KL loss, acceptance, and teachers that must be refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_code.distill import greedy_acceptance, parameters_of, preset_of, student_overrides
from model_code.export.quality import held_out_prompts
from model_code.presets import gpt2_124m, tiny
from model_code.pretrain import train

pytestmark = pytest.mark.slow  # trains a teacher and two students (~50 s)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, shards_dir, tokenizer_dir):
    from model_code.config import PretrainConfig
    from tests.pretrain.conftest import TINY

    out = tmp_path_factory.mktemp("teacher")
    # Trained well past its unigram stage: a drafter can only learn what the teacher has learnt.
    fields = dict(max_steps=300, eval_every=0, checkpoint_every=0, model_overrides={"num_layers": 4})
    dirs = {"shards_dir": str(shards_dir), "tokenizer_dir": str(tokenizer_dir), "output_dir": str(out)}
    config = PretrainConfig(**{**TINY, **fields, **dirs})
    return Path(train(config)["model_dir"])


def test_a_student_has_about_a_quarter_of_the_teachers_parameters():
    for teacher in (gpt2_124m().with_vocab(8192), tiny().with_vocab(1024)):
        fields = student_overrides(teacher, 0.25)
        student = parameters_of(teacher.__class__(**{**teacher.__dict__, **fields}))
        assert 0.18 < student / parameters_of(teacher) < 0.32, (teacher.name, fields)
    fixed = student_overrides(gpt2_124m().with_vocab(8192), 0.25, num_layers=3)
    assert fixed["num_layers"] == 3


def test_bad_student_shapes_name_the_field():
    with pytest.raises(ValueError, match="draft_fraction"):
        student_overrides(tiny(), 0)
    with pytest.raises(ValueError, match="draft_layers"):
        student_overrides(tiny(), 0.25, num_layers=99)


def test_distillation_beats_training_from_scratch_on_acceptance(make_config, teacher_dir, shards_dir):
    teacher = Path(teacher_dir)
    overrides = student_overrides(preset_of(json.loads((teacher / "config.json").read_text())), 0.25)
    common = dict(max_steps=150, model_overrides=overrides, seed=1, eval_every=0, checkpoint_every=0)
    distilled = train(make_config("distilled", teacher_dir=str(teacher), distill_temperature=1.0, **common))
    scratch = train(make_config("scratch", **common))
    assert (
        distilled["parameters"]
        == scratch["parameters"]
        < 0.5 * parameters_of(preset_of(json.loads((teacher / "config.json").read_text())))
    )
    prompts = held_out_prompts(shards_dir, teacher, 8, 16, window=63)
    ours = greedy_acceptance(teacher, distilled["model_dir"], prompts, new_tokens=16)
    theirs = greedy_acceptance(teacher, scratch["model_dir"], prompts, new_tokens=16)
    assert ours["positions"] == theirs["positions"] == 8 * 16
    assert ours["acceptance"] > theirs["acceptance"], (ours, theirs)
    assert 0 < ours["acceptance"] <= 1 and np.isfinite(distilled["final_loss"])


def test_a_teacher_with_another_tokenizer_is_refused(make_config, teacher_dir, tmp_path):
    other = shutil.copytree(teacher_dir, tmp_path / "other_teacher")
    spec = json.loads((other / "tokenizer.json").read_text())
    spec["model"]["merges"] = spec["model"]["merges"][:-50]
    (other / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="other_teacher.*fingerprint"):
        train(make_config("refused", teacher_dir=str(other), max_steps=2))


def test_bad_distillation_fields_name_the_field(make_config):
    with pytest.raises(ValueError, match="distill_temperature"):
        make_config(distill_temperature=0)
    with pytest.raises(ValueError, match="distill_ce_weight"):
        make_config(distill_ce_weight=-1)
