"""Training examples for the quality classifier: files of real examples, and offline demo defaults.

Demo positives are prose paragraphs from the docstrings of a fixed list of standard-library modules (edited
English that ships with every Python, so the defaults need no download; they differ slightly between Python
versions but are deterministic for one). Demo negatives are low-quality web patterns generated from the same
vocabulary with a seeded RNG. Production should point `load_examples` at real sources instead.
"""

from __future__ import annotations

import importlib
import inspect
import pydoc
import random
import re
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq

from data_code.files import iter_jsonl

STDLIB_MODULES = tuple(
    """
    abc argparse array asyncio base64 bisect calendar codecs collections concurrent.futures configparser
    contextlib copy csv dataclasses datetime decimal difflib email.message enum fractions functools gettext glob
    gzip hashlib heapq hmac html.parser http.client http.server imaplib inspect io ipaddress itertools json locale
    logging mailbox multiprocessing numbers operator optparse os pathlib pickle platform pprint queue random re
    sched secrets selectors shelve shlex shutil signal smtplib socket socketserver sqlite3 statistics string
    struct subprocess tarfile tempfile textwrap threading time timeit tokenize traceback types typing unittest
    urllib.parse urllib.request uuid warnings weakref xml.dom.minidom zipfile zlib
    """.split()
)  # well-documented modules that import without side effects
_MIN_WORDS, _MAX_WORDS = 12, 200  # a prose paragraph, not a one-line summary or a whole manual page
_NAVIGATION = "Home About Contact Blog Shop Login Register Cart Search Menu FAQ Careers Press Sitemap Help Deals News"
_SPAM = (
    "Click here to subscribe to our newsletter!",
    "This website uses cookies. Accept all cookies to continue.",
    "Buy now and get free shipping on all orders!!!",
    "Limited time offer - sign up today and save 50%",
    "Share on Facebook | Tweet | Pin it | Email this",
    "Copyright 2024 All rights reserved. Terms | Privacy",
    "Read more >> Next page >> Previous page",
    "Best price guaranteed!!! Call now, don't miss out",
)


def load_examples(path: str | Path) -> list[str]:
    """Examples from .txt (blocks separated by blank lines), .jsonl ({"text": ...} per line) or .parquet (text).

    Raises FileNotFoundError for a missing file and ValueError naming the file (and line) for a bad one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"examples file not found: {path}")
    if path.suffix == ".txt":
        blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
        return [block.strip() for block in blocks if block.strip()]
    if path.suffix == ".jsonl":
        return _jsonl_texts(path)
    if path.suffix == ".parquet":
        schema = pq.read_schema(path)
        if "text" not in schema.names:
            raise ValueError(f"{path}: no 'text' column (columns: {', '.join(schema.names)})")
        return [text for text in pq.read_table(path, columns=["text"]).column("text").to_pylist() if text]
    raise ValueError(f"{path}: unsupported examples format {path.suffix!r} (use .txt, .jsonl or .parquet)")


def _jsonl_texts(path: Path) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as lines:
        for number, record in iter_jsonl(lines, str(path)):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f'{path}: line {number}: expected an object with a string "text" field')
            texts.append(record["text"])
    return texts


@cache
def stdlib_paragraphs() -> tuple[str, ...]:
    """Prose paragraphs from the docstrings of STDLIB_MODULES and their public members, in a fixed order."""
    seen, paragraphs = set(), []
    for module_name in STDLIB_MODULES:
        module = importlib.import_module(module_name)
        members = [module] + [value for name, value in sorted(vars(module).items()) if not name.startswith("_")]
        for member in members:
            if member is not module and inspect.getmodule(member) is not module:
                continue  # re-exported from elsewhere: read it where it is defined
            for paragraph in re.split(r"\n\s*\n", pydoc.getdoc(member) or ""):
                text = " ".join(paragraph.split())
                if _is_prose(text) and text not in seen:
                    seen.add(text)
                    paragraphs.append(text)
    return tuple(paragraphs)


def _is_prose(text: str) -> bool:
    words = text.split()
    if not _MIN_WORDS <= len(words) <= _MAX_WORDS or not text.endswith("."):
        return False
    if ">>>" in text or "::" in text or text.count("(") > 4:
        return False  # doctest, reST directive or call signature: code, not prose
    return sum(word.isalpha() for word in words) / len(words) >= 0.6


def default_training_examples(
    corpus_texts: list[str] | None = None, seed: int = 0, max_positives: int = 2000
) -> tuple[list[str], list[str]]:
    """DEMO (positives, negatives): stdlib docstring prose vs. generated web spam, one negative per positive.

    `corpus_texts`, when given, lends its vocabulary to the negatives, so the classifier learns that shuffled or
    listed corpus words are spam rather than that the corpus's topics are.
    """
    rng = random.Random(seed)
    positives = list(stdlib_paragraphs())
    if len(positives) > max_positives:
        positives = rng.sample(positives, max_positives)
    vocabulary = sorted({word.strip(".,;:()'\"").lower() for text in positives for word in text.split()} - {""})
    if corpus_texts:
        corpus_words = {word.strip(".,;:()'\"").lower() for text in corpus_texts for word in text.split()[:500]}
        vocabulary = sorted(set(vocabulary) | corpus_words - {""})
    makers = (_word_salad, _keyword_list, _navigation_menu, _repeated_boilerplate, _spam)
    negatives = [makers[i % len(makers)](rng, positives[i], vocabulary) for i in range(len(positives))]
    return positives, negatives


def _word_salad(rng: random.Random, paragraph: str, vocabulary: list[str]) -> str:
    words = paragraph.split()
    rng.shuffle(words)
    return " ".join(words)


def _keyword_list(rng: random.Random, paragraph: str, vocabulary: list[str]) -> str:
    phrases = [" ".join(rng.sample(vocabulary, rng.randint(1, 3))) for _ in range(rng.randint(8, 25))]
    return rng.choice((", ", " | ", " - ", "\n")).join(phrases)


def _navigation_menu(rng: random.Random, paragraph: str, vocabulary: list[str]) -> str:
    items = _NAVIGATION.split() + [word.title() for word in rng.sample(vocabulary, 6)]
    rng.shuffle(items)
    return rng.choice((" | ", "\n", " > ", " ")).join(items[: rng.randint(6, len(items))])


def _repeated_boilerplate(rng: random.Random, paragraph: str, vocabulary: list[str]) -> str:
    line = rng.choice(_SPAM)
    return "\n".join([line] * rng.randint(3, 8) + [" ".join(paragraph.split()[:5])])


def _spam(rng: random.Random, paragraph: str, vocabulary: list[str]) -> str:
    lines = rng.sample(_SPAM, rng.randint(2, 4)) + [" ".join(rng.sample(vocabulary, 5)).title() + "!!!"]
    rng.shuffle(lines)
    return " ".join(lines)
