"""The compiled filters decide exactly as the plain-Python rules (data_code.filters.reference): same keep or drop,
reason, score, cleaned or redacted text and counters, for every document of a real corpus (the demo site's pages,
and each of their paragraphs as a document of its own) and of a seeded random corpus built to hit the edge cases
(Unicode whitespace and line breaks, re.IGNORECASE's non-ASCII letters, digits of other scripts, PII look-alikes)."""

from __future__ import annotations

import random

import pytest

from cli.demo_site import site_pages
from data_code.extract.page import extract_text
from data_code.filters import reference
from data_code.filters.base import FilterPipeline, NonEmptyFilter
from data_code.filters.c4 import C4QualityFilter
from data_code.filters.fineweb import FineWebQualityFilter
from data_code.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from data_code.filters.kernels import word_count
from data_code.filters.pii import PIIRedactionFilter, _spans, redact_pii

PAIRS = {  # compiled filter, its reference; loose thresholds where the defaults would drop nearly every short text
    "gopher_quality": (GopherQualityFilter, reference.GopherQualityReference, {}),
    "gopher_quality_short": (GopherQualityFilter, reference.GopherQualityReference, {"min_words": 3}),
    "gopher_repetition": (GopherRepetitionFilter, reference.GopherRepetitionReference, {}),
    "c4": (C4QualityFilter, reference.C4QualityReference, {}),
    "c4_one_sentence": (C4QualityFilter, reference.C4QualityReference, {"min_sentences": 1}),
    "fineweb": (FineWebQualityFilter, reference.FineWebQualityReference, {}),
    "pii": (PIIRedactionFilter, reference.PIIRedactionReference, {}),
}

PIECES = [
    "4111 1111 1111 1111", "4111-1111-1111-1112", "378282246310005", "+1 (555) 123-4567", "+44 20 7946 0958",
    "555.123.4567", "(555) 123-4567", "+4915112345678", "8.8.8.8", "192.168.1.1", "999.1.1.1", "1.2.3.4.5", "3.11",
    "2001:4860:4860::8888", "fe80::1", "::1", "a:b:c", "dead:beef::", "x.::1", "john.doe@example.com", "a%b@x.org",
    "x@y", "@decorator", "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1" * 18, "github_pat_" + "b2" * 35,
    "api_key=Zx9Kq2LmN8pR4tV7wY1s", "PASSWORD: 'aB3$dE5fG7hJ9kL1mN3p'", "paſſword=Qw3Er5Ty7Ui9Op1As3Df",
    "apı_key=Qw3Er5Ty7Ui9Op1As3Df", "to\u212aen = abcdefghijklmnopqrstuv", "İapi_key=1234567890abcdefghij",
    "secret_key: aaaaaaaaaaaaaaaaaaaa", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN ", "١٢٣٤٥٦٧٨٩٠١٢٣٤", "٨.٨.٨.٨", "+", "(", ")", "-", ".", " ", "\n", "\n\n", "\n\n\n", "\t", "\xa0",
    "\u2028", "\u3000", "\x1c", "\x1f", "\x85", "\r\n", "\r", "\v", "İ", "ı", "ſ", "\u212a", "Σ", "...", "…", "•",
    "* ", "- ", "#", "[1]", "[edit]", "[Citation needed]", "{", "}", "the", "and", "of", "with", "The", "THE", "be",
    "to",
    "lorem ipsum", "JavaScript", "privacy policy", "uses cookies", "word", "sentence.", "Ends here.", "'quoted'",
    '"quote"', 'He said "stop."', "x" * 1001, "😀", "🎉🎉", "!!!", "?!", "中文文本", "日本語の文章。", "ภาษาไทย",
    "Straße", "naïve", "\ud800", "a", "b", "c", "d", "e", "a b c d e",
]  # fmt: skip


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """The demo site's pages as the extract stage makes them, then every paragraph of them as a text of its own."""
    pages = [extract_text(html, f"http://127.0.0.1/{path}", "resiliparse")[1] for path, html in site_pages()]
    pages = [text for text in pages if text]
    assert len(pages) >= 100, "the demo site should give a real corpus"
    return pages + [paragraph for text in pages for paragraph in text.split("\n\n")]


def random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    joins = ["", " ", " ", "\n", ", ", ". ", "\n\n"]
    return [
        "".join(rng.choice(PIECES) + rng.choice(joins) for _ in range(rng.choice((2, 8, 40, 200))))
        for _ in range(count)
    ]


def outcome(each, text: str):
    """(decision, text after transform) of one filter on one text; a ZeroDivisionError is an outcome too."""
    doc = {"text": text}
    try:
        decision = each.filter(doc)
    except ZeroDivisionError:
        return "ZeroDivisionError", None
    return decision, (each.transform(doc)["text"] if decision is True else None)


def assert_same(texts: list[str], name: str) -> None:
    compiled_class, reference_class, options = PAIRS[name]
    compiled, plain = compiled_class(**options), reference_class(**options)
    differ = [text for text in texts if text.strip() and outcome(compiled, text) != outcome(plain, text)]
    assert not differ, f"{name}: {len(differ)} of {len(texts)} texts differ, first {differ[0][:300]!r}"
    assert compiled.counters == plain.counters


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.slow
def test_same_outcome_on_every_real_document(real_texts, name):
    assert_same(real_texts, name)


@pytest.mark.parametrize("name", PAIRS)
def test_same_outcome_on_edge_case_texts(name):
    assert_same(random_texts(seed=7, count=1500), name)


def test_same_pii_spans_everywhere(real_texts):
    for text in real_texts[:2000] + random_texts(seed=11, count=3000):
        assert _spans(text) == reference.reference_spans(text), text[:300]


def test_the_random_corpus_finds_pii_of_every_type():
    found = {}
    for text in random_texts(seed=11, count=3000):
        for kind, count in redact_pii(text)[1].items():
            found[kind] = found.get(kind, 0) + count
    assert set(found) == {"secret", "email", "credit_card", "ip_address", "phone"}, found


def test_word_count_is_split():
    for text in random_texts(seed=3, count=500) + ["", " ", "a\xa0b\u3000c\x1cd"]:
        assert word_count(text) == len(text.split())


def test_the_whole_chain_keeps_and_rejects_the_same(real_texts):
    def chain(module):
        names = ("GopherQuality", "GopherRepetition", "C4Quality", "FineWebQuality", "PIIRedaction")
        if module is reference:
            return [NonEmptyFilter(), *(getattr(reference, f"{n}Reference")() for n in names)]
        filters = (
            GopherQualityFilter,
            GopherRepetitionFilter,
            C4QualityFilter,
            FineWebQualityFilter,
            PIIRedactionFilter,
        )
        return [NonEmptyFilter(), *(each() for each in filters)]

    documents = [{"doc_id": str(i), "url": f"u{i}", "domain": "d", "text": t} for i, t in enumerate(real_texts[:600])]
    fast, plain = FilterPipeline(chain(None)).run(documents), FilterPipeline(chain(reference)).run(documents)
    assert fast.kept == plain.kept and fast.rejections == plain.rejections
    assert {k: v.as_dict() for k, v in fast.counts.items()} == {k: v.as_dict() for k, v in plain.counts.items()}
    assert 0 < len(fast.kept) < len(documents)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("!!! ??? ... --- *** ### ((( ))) ;;; ::: " * 20, "gopher_short_document"),  # pure punctuation: no words
        ("😀 🎉 🙈 🚀 " * 30, "gopher_mean_word_length_too_short"),  # emoji: one-character words
        ("中文文本和日本語の文章。" * 50, "gopher_short_document"),  # no spaces: one word, by English rules
        ("The 中文文本和日本語の文章 are mixed with English words and the rest of it " * 10, None),  # mixed: kept
        ("Ελληνικά и русский текст mixed 中文 with the words of a page and more " * 8, None),
    ],
)
def test_odd_documents_get_a_reason_without_a_crash(text, reason):
    for each in (GopherQualityFilter(), reference.GopherQualityReference()):
        decision = each.filter({"text": text})
        assert (decision is True) if reason is None else (decision[1] == reason)
    for name in PAIRS:
        assert_same([text], name)
