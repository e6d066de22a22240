"""A quality classifier trained once per session on the offline demo defaults (~3 s)."""

from __future__ import annotations

import pytest

from data_code.filters.quality_classifier import (
    QualityClassifierConfig,
    default_training_examples,
    train_quality_classifier,
)


@pytest.fixture(scope="session")
def quality_model(tmp_path_factory) -> tuple[str, dict]:
    """(model directory, training stats) of a classifier trained on default_training_examples()."""
    out_dir = tmp_path_factory.mktemp("quality")
    positives, negatives = default_training_examples(seed=0)
    stats = train_quality_classifier(positives, negatives, out_dir, QualityClassifierConfig())
    return str(out_dir), stats
