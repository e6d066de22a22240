"""Rule sets per language: how the Gopher, FineWeb, C4 and quality filters judge a document of each language.

English is the filter config itself. Every other language has two files in a rules directory (the shipped one is
data_code/filters/rules/; FilterConfig.rules_dir adds or replaces languages):

    <lang>.rules       one `key = value` per line; # starts a comment
    <lang>.stopwords   one stop word per line; # starts a comment

A .rules file sets the segmenter (`segmenter = jieba`), the filters that do not apply to the language
(`skip = c4 quality`: C4's phrases and the quality classifier are English), FineWeb's line-ending characters
(`fineweb_stop_chars = . ! ? 。`) and any threshold of FilterConfig (`gopher_min_mean_word_length = 1`, n-gram
fractions as `5:0.198 6:0.182`, `off` for a check the language does not use). The shipped thresholds and stop
words are FineWeb-2's (github.com/huggingface/fineweb-2, configs/<lang>_<Script>.yml; the mapping to lmforge's
names is in docs/filters-research.md). A bad line raises ValueError naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from data_code.filters.base import Decision, DocumentFilter
from data_code.filters.config import OPTIONAL_THRESHOLDS, ROUTED_FILTERS, FilterConfig
from data_code.filters.fineweb import STOP_CHARS
from data_code.filters.gopher import STOP_WORDS
from data_code.filters.segment import SEGMENTERS

SHIPPED_RULES = Path(__file__).with_name("rules")
_OWN_KEYS = ("segmenter", "skip", "fineweb_stop_chars")
_THRESHOLD_PREFIXES = ("gopher_", "fineweb_", "c4_", "quality_")


@dataclass(frozen=True)
class LanguageRules:
    """How documents of one language are judged: the config they see, their words and the filters that apply."""

    language: str
    config: FilterConfig  # the filter config with this language's thresholds
    segmenter: str = "whitespace"
    stop_words: frozenset[str] = STOP_WORDS
    fineweb_stop_chars: tuple[str, ...] = STOP_CHARS
    skip: frozenset[str] = frozenset()  # filters that let this language's documents through unjudged
    unicode_words: bool = False  # strip Unicode punctuation and symbols from words (English: ASCII punctuation)
    source: str = "filter config"  # where the rules come from


def english_rules(config: FilterConfig) -> LanguageRules:
    """English: the filter config's own thresholds, Gopher's stop words, whitespace words."""
    return LanguageRules("en", config)


def load_rule_sets(config: FilterConfig) -> dict[str, LanguageRules]:
    """language -> rules: English, the shipped languages, then config.rules_dir's (which may replace them)."""
    rule_sets = {"en": english_rules(config)}
    for language, path in sorted(_rule_files(config).items()):
        rule_sets[language] = load_language_rules(path, config)
    return rule_sets


def _rule_files(config: FilterConfig) -> dict[str, Path]:
    """language -> its .rules file in effect: the shipped ones, replaced or added to by config.rules_dir's."""
    directories = [SHIPPED_RULES]
    if config.rules_dir is not None:
        directories.append(Path(config.rules_dir))
        if not directories[-1].is_dir():
            raise FileNotFoundError(f"rules_dir is not a directory: {directories[-1]}")
    return {path.stem: path for directory in directories for path in directory.glob("*.rules")}


def rules_digest(config: FilterConfig) -> str:
    """sha256 of the rule files in effect (shipped, then rules_dir's): changing one changes the artifact."""
    digest = hashlib.sha256()
    for language, path in sorted(_rule_files(config).items()):
        stop_words = path.with_suffix(".stopwords")
        for each in (path, stop_words):
            digest.update(f"{language}/{each.suffix}\n".encode())
            digest.update(each.read_bytes() if each.is_file() else b"")
    return digest.hexdigest()[:16]


def load_language_rules(path: Path, config: FilterConfig) -> LanguageRules:
    """One language's rules from `path` (<lang>.rules) and the <lang>.stopwords beside it."""
    language = path.stem
    values, lines = _read_rules(path)
    stop_path = path.with_suffix(".stopwords")
    if not stop_path.is_file():
        raise FileNotFoundError(f"{path}: the stop words of {language!r} are missing: {stop_path}")
    own = {key: values.pop(key) for key in _OWN_KEYS if key in values}
    try:
        language_config = dataclasses.replace(config, **values)
    except ValueError as error:  # FilterConfig names the field; say which line set it
        key = next((key for key in values if key in str(error)), None)
        raise ValueError(f"{path}:{lines.get(key, '?')}: {error}") from error
    return LanguageRules(
        language,
        language_config,
        segmenter=own.get("segmenter", "whitespace"),
        stop_words=read_stop_words(stop_path),
        fineweb_stop_chars=own.get("fineweb_stop_chars", STOP_CHARS),
        skip=own.get("skip", frozenset()),
        unicode_words=True,
        source=f"shipped:{path.name}" if path.parent == SHIPPED_RULES else str(path),
    )


def _read_rules(path: Path) -> tuple[dict, dict[str, int]]:
    values, lines = {}, {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue

        def fail(message: str, number=number):
            raise ValueError(f"{path}:{number}: {message}")

        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not key or not value:
            fail(f"expected 'key = value', got {raw.strip()!r}")
        if key in values:
            fail(f"{key} is set twice (first on line {lines[key]})")
        values[key], lines[key] = _parse_value(key, value, fail), number
    return values, lines


@cache
def _threshold_types() -> dict[str, object]:
    hints = typing.get_type_hints(FilterConfig)
    return {
        each.name: hints[each.name]
        for each in dataclasses.fields(FilterConfig)
        if each.name.startswith(_THRESHOLD_PREFIXES)
    }


def _parse_value(key: str, value: str, fail):
    if key == "segmenter":
        if value not in SEGMENTERS:
            fail(f"unknown segmenter {value!r}: use one of {', '.join(SEGMENTERS)}")
        return value
    if key == "skip":
        names = frozenset(value.split())
        if unknown := sorted(names - set(ROUTED_FILTERS)):
            fail(f"skip names filters that are judged per language ({', '.join(ROUTED_FILTERS)}), got {unknown}")
        return names
    if key == "fineweb_stop_chars":
        return tuple(value.split())
    types = _threshold_types()
    if key not in types:
        known = ", ".join((*_OWN_KEYS, *sorted(types)))
        fail(f"unknown key {key!r} (known: {known})")
    kind = types[key]
    if value == "off":
        if key not in OPTIONAL_THRESHOLDS:
            fail(f"{key} cannot be off (only {', '.join(sorted(OPTIONAL_THRESHOLDS))} can)")
        return None
    try:
        if kind is int:
            return int(value)
        if kind in (float, float | None):
            return float(value)
        pairs = [item.split(":") for item in value.split()]
        return tuple((int(n), float(fraction)) for n, fraction in pairs)
    except ValueError:
        shape = {int: "an integer", float: "a number"}.get(kind, "pairs like '5:0.15 6:0.14'")
        fail(f"{key} must be {shape}, got {value!r}")


def read_stop_words(path: Path) -> frozenset[str]:
    """The stop words of `path`, one per line (ValueError naming the file and line of a bad one)."""
    words = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1:
            raise ValueError(f"{path}:{number}: one stop word per line, got {raw.strip()!r}")
        words.add(line.lower())
    if not words:
        raise ValueError(f"{path}: no stop words (one per line)")
    return frozenset(words)


class ByLanguage(DocumentFilter):
    """One filter with a copy per rule set, each document judged by its language's copy.

    A document whose language has no copy (the language skips this filter, or has no rule set and the policy
    keeps it) passes unjudged, counted as `unjudged:<lang>`. Without the language filter every document is
    judged by the English rules, as before there were rule sets.
    """

    def __init__(self, name: str, filters: dict[str, DocumentFilter], by_language: bool = True):
        super().__init__()
        self.name, self.filters, self.by_language = name, filters, by_language
        for each in filters.values():
            each.counters = self.counters  # one set of counts for the filter, whatever the language

    def _judge(self, doc: dict) -> tuple[str, DocumentFilter | None]:
        language = (doc.get("language") or "") if self.by_language else "en"
        return language, self.filters.get(language)

    def filter(self, doc: dict) -> Decision:
        language, judge = self._judge(doc)
        if judge is None:
            self.count(f"unjudged:{language}")
            return True
        return judge.filter(doc)

    def transform(self, doc: dict) -> dict:
        judge = self._judge(doc)[1]
        return doc if judge is None else judge.transform(doc)
