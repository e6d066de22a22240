"""bench.nightly_site: the changing Python manual (determinism, edits, bookkeeping, HTTP), near-duplicate scoring."""

from __future__ import annotations

import random
import re
import urllib.error
import urllib.request
from email.message import Message
from html.parser import HTMLParser

import pytest

from bench.nightly_site import (
    EDIT_MARK,
    INDEX,
    ChangingSite,
    edit_page,
    jaccard,
    near_duplicate_pairs,
    shingles,
    urls_twice,
)
from cli.demo_site import PYTHON_MANUAL

TEST_PORT = 18651  # not the benchmark's 18650
BIG_PAGE = "library/functions.html"  # ~20,000 words of prose
needs_manual = pytest.mark.skipif(not (PYTHON_MANUAL / INDEX).exists(), reason="python3.11-doc is not installed")


class _Text(HTMLParser):
    """Visible text of a page: every text node outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: bytes) -> str:
    parser = _Text()
    parser.feed(html.decode("utf-8"))
    return " ".join(parser.parts)


def paragraph_texts(html: bytes) -> list[str]:
    """Visible text of each <p> of the page."""
    return [re.sub(r"<[^>]*>", "", p) for p in re.findall(r"<p(?:\s[^>]*)?>(.*?)</p>", html.decode(), re.DOTALL)]


@pytest.fixture(scope="module")
def site() -> ChangingSite:
    return ChangingSite(seed=0)


# -- edits on synthetic HTML (no manual needed) ----------------------------------------------------------------------

SYNTHETIC = (
    '<html><body><div class="body" role="main"><h1>Title</h1>'
    "<p>The first sentence of this paragraph is long enough to edit. The second sentence is also long enough to "
    'edit here. A <a href="x.html">link</a> sits in the third.</p>'
    '</div><div class="sphinxsidebar"><p>Sidebar text that is long enough to be a sentence for sure.</p></div>'
    "</body></html>"
)


def test_edit_replaces_a_sentence_of_the_main_text_and_keeps_earlier_edits():
    once = edit_page(SYNTHETIC, 2, random.Random(1))
    assert once.count(f"{EDIT_MARK} 2:") == 1
    assert "Sidebar text that is long enough" in once  # the sidebar is not main text
    assert once.count("long enough to edit") == 1  # exactly one of the two sentences went
    twice = edit_page(once, 3, random.Random(2))
    assert f"{EDIT_MARK} 2:" in twice and f"{EDIT_MARK} 3:" in twice
    assert "long enough to edit" not in twice
    thrice = edit_page(twice, 4, random.Random(3))  # no sentence left: a new paragraph, the old edits stay
    assert all(f"{EDIT_MARK} {n}:" in thrice for n in (2, 3, 4))
    assert f'role="main">\n<p>{EDIT_MARK} 4:' in thrice


def test_edit_is_deterministic_in_its_rng():
    assert edit_page(SYNTHETIC, 2, random.Random(7)) == edit_page(SYNTHETIC, 2, random.Random(7))


# -- the changing manual ---------------------------------------------------------------------------------------------


@needs_manual
def test_same_seed_same_nights_and_bytes_whatever_was_asked_before(site):
    fresh = ChangingSite(seed=0)
    assert fresh.night(4) == site.night(4)  # night 4 first, without nights 1-3 asked for
    assert [fresh.night(n) for n in range(1, 5)] == [site.night(n) for n in range(1, 5)]
    for page in site.night(4).edited[:5]:
        assert fresh.page_bytes(4, page) == site.page_bytes(4, page)
    other = ChangingSite(seed=1)
    assert other.night(1).present != site.night(1).present
    assert other.night(2).edited != site.night(2).edited


@needs_manual
def test_bookkeeping_of_added_removed_edited_unchanged(site):
    total = len(site.pages)
    first = site.night(1)
    assert INDEX in first.present and len(first.present) == round(0.7 * total)
    assert first.added == first.present and not (first.removed or first.edited or first.unchanged)
    for n in range(2, 7):
        last, tonight = set(site.night(n - 1).present), site.night(n)
        present, added, removed = set(tonight.present), set(tonight.added), set(tonight.removed)
        edited, unchanged = set(tonight.edited), set(tonight.unchanged)
        assert present == (last - removed) | added
        assert not added & last and removed <= last and INDEX not in removed
        assert edited | unchanged == last - removed and not edited & unchanged
        assert len(edited) == round(0.1 * len(last))
        assert len(removed) == round(0.03 * len(last))
        assert len(added) == round(0.05 * total)
    night = site.night(3)
    absent = sorted(set(site.pages) - set(night.present))
    assert absent and site.page_bytes(3, absent[0]) is None
    assert site.page_bytes(3, night.unchanged[0]) == site.page_bytes(2, night.unchanged[0])


@needs_manual
def test_edits_change_visible_paragraph_text_but_keep_jaccard_high(site):
    page = BIG_PAGE
    nights = site.edit_nights(8, page)
    assert nights, "the big page is edited by night 8 with seed 0"
    n = nights[0]
    before, after = site.page_bytes(n - 1, page), site.page_bytes(n, page)
    assert before is not None and after is not None and before != after
    marks = [p for p in paragraph_texts(after) if f"{EDIT_MARK} {n}:" in p]
    assert len(marks) == 1  # the new sentence is visible, inside a <p>
    old_text, new_text = visible_text(before), visible_text(after)
    assert old_text != new_text
    assert 0.85 <= jaccard(shingles(old_text), shingles(new_text)) < 1.0
    for n in (2, 3):  # a sample: every edited page with plenty of text stays above 0.85
        for page in site.night(n).edited:
            old_text, new_text = visible_text(site.page_bytes(n - 1, page)), visible_text(site.page_bytes(n, page))
            if len(old_text.split()) >= 2000:
                assert 0.85 <= jaccard(shingles(old_text), shingles(new_text)) < 1.0, page


@needs_manual
def test_edits_accumulate(site):
    n = 6
    twice = [p for p in site.night(n).present if len(site.edit_nights(n, p)) >= 2]
    assert twice
    html = site.page_bytes(n, twice[0]).decode()
    assert all(f"{EDIT_MARK} {k}:" in html for k in site.edit_nights(n, twice[0]))


def _get(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """(status, headers (case-insensitive), body) of one request."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, b""


@needs_manual
def test_serve_over_http_on_127_0_0_1(site):
    n = 2
    night = site.night(n)
    edited, absent = night.edited[0], sorted(set(site.pages) - set(night.present))[0]
    with site.serve(n, port=TEST_PORT) as base:
        assert base == f"http://127.0.0.1:{TEST_PORT}/"
        status, headers, body = _get(base + edited)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert f"{EDIT_MARK} {n}:".encode() in body and body == site.page_bytes(n, edited)
        assert _get(base + absent)[0] == 404
        status, headers, body = _get(base + night.unchanged[0], method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        assert _get(base)[2] == site.page_bytes(n, INDEX)
        status, headers, body = _get(base + "_static/pygments.css")
        assert status == 200 and headers["Content-Type"] == "text/css" and body
        with pytest.raises(OSError, match=f"127.0.0.1:{TEST_PORT}"):
            with site.serve(n, port=TEST_PORT):
                pass
    with site.serve(n + 1, port=TEST_PORT) as base:  # the same port again, the next night
        assert _get(base + edited)[0] == (200 if edited in site.night(n + 1).present else 404)


# -- near duplicates -----------------------------------------------------------------------------------------------


def test_near_duplicate_pairs_on_synthetic_text():
    rng = random.Random(0)
    words = [f"w{k}" for k in range(500)]
    base = " ".join(rng.choice(words) for _ in range(600))
    edited = base.replace(base.split()[300], "changed sentence here", 1)
    other = " ".join(rng.choice(words) for _ in range(600))
    docs = [
        {"doc_id": "a", "url": "u/a", "night": 1, "text": base},
        {"doc_id": "b", "url": "u/b", "night": 1, "text": other},
        {"doc_id": "c", "url": "u/a", "night": 2, "text": edited},
        {"doc_id": "d", "url": "u/d", "night": 1, "text": base},  # same night as a: never a pair with a
        {"doc_id": "e", "url": "u/e", "night": 2, "text": ""},
        {"doc_id": "f", "url": "u/f", "night": 3, "text": "too short"},
        {"doc_id": "g", "url": "u/g", "night": 4, "text": "Too, SHORT!"},  # normalizes to f's text
    ]
    pairs = near_duplicate_pairs(docs)
    assert [(i, j) for i, j, _ in pairs] == [(0, 2), (2, 3), (5, 6)]
    assert all(0.8 <= score <= 1.0 for _, _, score in pairs) and pairs[2][2] == 1.0
    assert near_duplicate_pairs(docs, group="doc_id")[0][:2] == (0, 2)
    assert (0, 3, 1.0) in near_duplicate_pairs(docs, group="doc_id")
    assert urls_twice(docs) == ["u/a"]


def test_shingles():
    assert shingles("One two three") == frozenset([("one", "two", "three")])
    assert shingles("") == frozenset()
    assert len(shingles("a b c d e f g")) == 3


@needs_manual
def test_near_duplicate_pairs_finds_an_edited_page_and_no_unrelated_pair(site):
    edited = BIG_PAGE
    n = site.edit_nights(8, edited)[0]
    unrelated = ["library/os.html", "library/re.html", "tutorial/classes.html", "reference/datamodel.html"]
    docs = [{"doc_id": "orig", "url": edited, "night": n - 1, "text": visible_text(site.page_bytes(n - 1, edited))}]
    docs.append({"doc_id": "new", "url": edited, "night": n, "text": visible_text(site.page_bytes(n, edited))})
    for k, page in enumerate(unrelated):
        text = visible_text((PYTHON_MANUAL / page).read_bytes())
        docs.append({"doc_id": page, "url": page, "night": 1 + k % 2, "text": text})
    pairs = near_duplicate_pairs(docs)
    assert len(pairs) == 1 and pairs[0][:2] == (0, 1) and 0.85 <= pairs[0][2] < 1.0
    assert urls_twice(docs) == [edited]
