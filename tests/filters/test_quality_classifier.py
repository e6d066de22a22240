"""The DCLM-style fastText quality classifier: demo defaults, training, scoring, example files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.filters.quality_classifier import (
    QualityClassifierConfig,
    QualityClassifierFilter,
    default_training_examples,
    load_examples,
    train_quality_classifier,
)
from tests.filters.texts import GOOD_TEXT, GOOD_TEXT_2, make_doc


def test_trained_on_demo_defaults_well_above_chance(quality_model):
    model_dir, stats = quality_model
    assert stats["positives"] == stats["negatives"] > 500
    assert stats["validation_examples"] == round(0.2 * (stats["positives"] + stats["negatives"]))
    assert stats["accuracy"] >= 0.85 and stats["recall"] >= 0.85 and stats["precision"] >= 0.75
    labels = json.loads((Path(model_dir) / "labels.json").read_text())
    assert labels["positive"] == "hq" and labels["stats"] == stats


def test_prose_scores_above_word_salad_and_spam(quality_model):
    model_dir, _ = quality_model
    words = GOOD_TEXT.split()
    random.Random(1).shuffle(words)
    classifier = QualityClassifierFilter(model_dir)
    prose, salad = make_doc(GOOD_TEXT_2), make_doc(" ".join(words))
    spam = make_doc("Home | About | Contact | Shop | Login | Cart\nClick here to subscribe to our newsletter!")
    assert classifier.filter(prose) is True
    classifier.filter(salad)
    assert prose["quality_score"] > salad["quality_score"]
    decision = classifier.filter(spam)
    assert decision == (False, "quality_below_threshold", spam["quality_score"]) and spam["quality_score"] < 0.1


def test_default_examples_are_deterministic_and_use_the_corpus():
    first, second = default_training_examples(seed=3), default_training_examples(seed=3)
    assert first == second
    corpus = ["Zygomorphic orchids bloom beside the riverbank every spring."]
    _, negatives = default_training_examples(corpus, seed=3)
    assert any("zygomorphic" in text.lower() for text in negatives)


def test_training_is_deterministic(tmp_path):
    positives, negatives = default_training_examples(seed=0, max_positives=200)
    config = QualityClassifierConfig(epoch=5, bucket=10_000)
    assert train_quality_classifier(positives, negatives, tmp_path / "a", config) == train_quality_classifier(
        positives, negatives, tmp_path / "b", config
    )
    assert (tmp_path / "a" / "model.bin").read_bytes() == (tmp_path / "b" / "model.bin").read_bytes()


def test_bad_training_input():
    with pytest.raises(ValueError, match="need >= 2 examples per class"):
        train_quality_classifier(["one"], ["two", "three"], "/unused", QualityClassifierConfig())
    with pytest.raises(ValueError, match="validation_fraction"):
        QualityClassifierConfig(validation_fraction=1.0)
    with pytest.raises(FileNotFoundError, match="no model.bin"):
        QualityClassifierFilter("/")


def test_load_examples_from_txt_jsonl_parquet(tmp_path):
    (tmp_path / "a.txt").write_text("First example,\nstill first.\n\n\nSecond example.\n")
    (tmp_path / "b.jsonl").write_text('{"text": "one"}\n\n{"text": "two", "id": 2}\n')
    pq.write_table(pa.table({"text": ["x", None, "y"], "id": [1, 2, 3]}), tmp_path / "c.parquet")
    assert load_examples(tmp_path / "a.txt") == ["First example,\nstill first.", "Second example."]
    assert load_examples(tmp_path / "b.jsonl") == ["one", "two"]
    assert load_examples(tmp_path / "c.parquet") == ["x", "y"]


def test_load_examples_errors_name_the_file(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    (tmp_path / "broken.jsonl").write_text('{"text": \n')
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"bad\.jsonl: line 2: expected an object"):
        load_examples(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match=r"broken\.jsonl: line 1: invalid JSON"):
        load_examples(tmp_path / "broken.jsonl")
    with pytest.raises(ValueError, match=r"d\.parquet: no 'text' column"):
        load_examples(tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"e\.csv: unsupported"):
        (tmp_path / "e.csv").write_text("text\n")
        load_examples(tmp_path / "e.csv")
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        load_examples(tmp_path / "absent.txt")
