"""DCLM-style quality classifier (Li et al. 2024, "DataComp-LM", section 4.4): a fastText bigram classifier
trained to tell high-quality text (`__label__hq`) from low-quality web text (`__label__lq`); documents scoring
P(hq) below a threshold are dropped. DCLM trained on OpenHermes/ELI5 positives against RefinedWeb negatives and
kept the top ~10% of its pool; here the threshold is a probability (default 0.5).

The defaults in `default_training_examples` are DEMO defaults that work offline on any machine: positives are
prose paragraphs from the docstrings of standard-library modules, negatives are web-spam patterns generated from
those paragraphs (word salad, keyword lists, navigation menus, repeated boilerplate, click/subscribe/cookie spam).
They teach the classifier "edited prose vs. spam", not "good vs. mediocre web text". Production configures real
positive and negative sources: files read by `load_examples` (.txt, .jsonl, .parquet).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import fasttext

from data_code.filters.base import Decision, DocumentFilter
from data_code.filters.language import load_fasttext_model, predict_labels
from data_code.filters.quality_examples import default_training_examples, load_examples

__all__ = [
    "QualityClassifierConfig",
    "QualityClassifierFilter",
    "default_training_examples",
    "load_examples",
    "train_quality_classifier",
]

POSITIVE, NEGATIVE = "hq", "lq"


@dataclass(frozen=True)
class QualityClassifierConfig:
    """fastText supervised-training settings. Invalid values raise ValueError naming the field."""

    dim: int = 32  # embedding size; DCLM's classifier is small too, quality is mostly lexical
    epoch: int = 20
    lr: float = 0.5
    word_ngrams: int = 2  # bigrams, as DCLM
    min_count: int = 1  # words seen fewer times are ignored
    bucket: int = 200_000  # hashed n-gram buckets: model size ~ bucket * dim * 4 bytes (25 MB at the defaults)
    validation_fraction: float = 0.2  # share of examples held out for accuracy / precision / recall
    seed: int = 0  # shuffling and fastText's own seed (training uses one thread, so it is deterministic)
    quantize: bool = False  # save a quantized model.ftz (~100x smaller, slightly less accurate) instead of model.bin

    def __post_init__(self):
        for name in ("dim", "epoch", "word_ngrams", "min_count", "bucket"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be within (0, 1), got {self.validation_fraction}")


def train_quality_classifier(
    positives: list[str], negatives: list[str], out_dir: str | Path, config: QualityClassifierConfig
) -> dict:
    """Train on a held-in split, evaluate on the held-out split, save model + labels.json in `out_dir`.

    Returns stats: examples per split and class, accuracy, precision, recall and f1 of the hq class on the
    held-out split, and the model file name. Raises ValueError when either class has fewer than 2 examples.
    """
    if len(positives) < 2 or len(negatives) < 2:
        raise ValueError(f"need >= 2 examples per class, got {len(positives)} positives, {len(negatives)} negatives")
    examples = [(POSITIVE, text) for text in positives] + [(NEGATIVE, text) for text in negatives]
    random.Random(config.seed).shuffle(examples)
    held_out = max(2, round(len(examples) * config.validation_fraction))
    validation, train = examples[:held_out], examples[held_out:]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_file = "model.ftz" if config.quantize else "model.bin"
    with tempfile.TemporaryDirectory() as scratch:
        train_file = Path(scratch) / "train.txt"
        train_file.write_text("".join(f"__label__{label} {_one_line(text)}\n" for label, text in train))
        # fasttext 0.9.3 reads memory it never initialized while training: a second training in one process can
        # diverge (NaN) or differ. A fresh process per training is deterministic, and shields the caller from it.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(_train_and_save, str(train_file), str(out_dir / model_file), config).result()
    model = fasttext.load_model(str(out_dir / model_file))
    stats = {
        "model_file": model_file,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "positives": len(positives),
        "negatives": len(negatives),
        **_evaluate(model, validation),
    }
    labels = {"positive": POSITIVE, "negative": NEGATIVE, "config": asdict(config), "stats": stats}
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=2, sort_keys=True) + "\n")
    return stats


def _train_and_save(train_file: str, model_path: str, config: QualityClassifierConfig) -> None:
    model = fasttext.train_supervised(
        input=train_file,
        dim=config.dim,
        epoch=config.epoch,
        lr=config.lr,
        wordNgrams=config.word_ngrams,
        minCount=config.min_count,
        bucket=config.bucket,
        thread=1,  # one thread: Hogwild updates from several threads are not reproducible
        seed=config.seed,
        verbose=0,
    )
    if config.quantize:
        model.quantize(input=train_file, retrain=False)
    model.save_model(model_path)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _evaluate(model, examples: list[tuple[str, str]]) -> dict:
    """Accuracy, and precision / recall / f1 of the hq class, at P(hq) >= 0.5."""
    outcomes = [(label == POSITIVE, hq_probability(model, text) >= 0.5) for label, text in examples]
    true_positive = sum(truth and predicted for truth, predicted in outcomes)
    predicted_positive = sum(predicted for _, predicted in outcomes)
    actual_positive = sum(truth for truth, _ in outcomes)
    precision = true_positive / predicted_positive if predicted_positive else 0.0
    recall = true_positive / actual_positive if actual_positive else 0.0
    return {
        "accuracy": round(sum(truth == predicted for truth, predicted in outcomes) / len(outcomes), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
    }


def hq_probability(model, text: str) -> float:
    """P(hq | text) from a two-label model (0.0 for text with no words)."""
    scores = dict(predict_labels(model, text, k=2))
    if not scores:
        return 0.0
    return scores.get(POSITIVE, 1.0 - scores.get(NEGATIVE, 1.0))


def resolve_model_path(model_path: str | Path) -> Path:
    """A model file, or a directory written by train_quality_classifier (FileNotFoundError if neither)."""
    path = Path(model_path)
    if path.is_dir():
        for name in ("model.bin", "model.ftz"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"no model.bin or model.ftz in quality classifier directory {path}")
    if not path.is_file():
        raise FileNotFoundError(f"quality classifier model not found: {path}")
    return path


class QualityClassifierFilter(DocumentFilter):
    """Sets `quality_score` = P(hq) on each document; drops documents scoring below `threshold`."""

    name = "quality"

    def __init__(self, model_path: str | Path, threshold: float = 0.5):
        super().__init__()
        self.model_path, self.threshold = str(resolve_model_path(model_path)), threshold

    def filter(self, doc: dict) -> Decision:
        score = hq_probability(load_fasttext_model(self.model_path), doc["text"])
        doc["quality_score"] = score
        if score < self.threshold:
            return False, "quality_below_threshold", score
        return True
