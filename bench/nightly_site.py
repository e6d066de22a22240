"""A real website that changes night by night, and the near-duplicate arithmetic to measure recrawls of it.

Support code for the benchmark `bench.nightly`, which crawls N "nights" of one site and checks what a recrawl
fetches, keeps and deduplicates. The site is the Python 3.11 manual (Debian's python3.11-doc, static HTML under
`cli.demo_site.PYTHON_MANUAL`), changed by a deterministic, seeded simulation:

    Night 1     a seeded `initial_share` of the manual's *.html pages is present (index.html always); the rest
                answer 404. Every present page counts as added.
    Night n>=2  from the pages present on night n-1:
                  edited   round(edit_share * present) pages get one sentence of their main text replaced by a new
                           one ("Changed on night n: ..."); a page without a usable sentence (an index page) gets a
                           new paragraph at the top of its main text instead. The visible text changes a little:
                           one sentence among many, so a page with plenty of text (a few thousand words) keeps a
                           word 5-gram Jaccard well over 0.9 to its previous version; a short page (~100 words)
                           may drop to ~0.5-0.8, as a real short page would.
                  removed  round(remove_share * present) other pages (never index.html) become absent;
                  added    round(add_share * all pages) absent pages (never seen, or removed earlier) become present;
                           a page that comes back comes back as it was, with its earlier edits;
                  unchanged the rest of the previous night's pages.
                Edits accumulate: a page edited on nights 2 and 5 carries both sentences from night 5 on (a new edit
                never replaces an earlier "Changed on night" sentence).

Every draw comes from `random.Random` seeded by strings built from (seed, night, page), so two instances with the
same arguments serve the same bytes, and night(n) is the same whether or not earlier nights were asked for (the
bookkeeping is recomputed from night 1; it is cheap, only sets of paths). Page versions are built when served:
serve(n) reads unedited pages from disk and keeps only the edited ones in memory, for that night.

    site = ChangingSite(seed=0)
    site.night(3)                 -> Night(number, present, added, removed, edited, unchanged): sorted paths
    site.page_bytes(3, "a.html")  -> the page as served on night 3, or None if absent
    with site.serve(3) as base:   -> "http://127.0.0.1:18650/" (a fixed port: URLs stay the same across nights)

near_duplicate_pairs(docs) and urls_twice(docs) score what a crawler kept across nights: pairs of documents from
different nights whose true word 5-gram Jaccard is at least a threshold, and URLs stored more than once.
"""

from __future__ import annotations

import functools
import http.server
import io
import posixpath
import random
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.demo_site import PYTHON_MANUAL

NIGHTLY_PORT = 18650
INDEX = "index.html"
EDIT_MARK = "Changed on night"
_MAIN_START = 'role="main"'
_MAIN_END = 'class="sphinxsidebar"'
_PARAGRAPH = re.compile(r"<p(?:\s[^>]*)?>(.*?)</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
# A whole sentence inside one run of text (no markup in it): capital start, 30-300 characters, end mark.
_SENTENCE = re.compile(r"(?<![\w.&#;])[A-Z][^.!?<>]{30,300}?[.!?](?=\s|$)")
_VOCABULARY = (
    "the a new old value list object module function method class returns accepts raises argument default "
    "option string number file path buffer stream handler parser result error warning record event signal "
    "thread process queue socket server client request response header field table index key item entry "
    "limit size length offset count time date zone locale encoding format pattern match group name type "
    "now also still only never always often quietly safely faster slower earlier later again instead "
    "changed added removed renamed deprecated documented clarified fixed updated extended simplified"
).split()


@dataclass(frozen=True)
class Night:
    """What night `number` serves: relative paths of the manual's pages, each tuple sorted."""

    number: int
    present: tuple[str, ...]
    added: tuple[str, ...]  # present tonight, absent last night (night 1: every present page)
    removed: tuple[str, ...]  # present last night, absent tonight
    edited: tuple[str, ...]  # present last night and tonight, given a new sentence tonight
    unchanged: tuple[str, ...]  # present last night and tonight, same bytes


@dataclass(frozen=True)
class _State:
    night: Night
    edits: Mapping[str, tuple[int, ...]]  # page -> the nights it was edited, up to this night


class ChangingSite:
    """The Python manual changing night by night (see the module docstring); deterministic in `seed`."""

    def __init__(
        self,
        root: Path = PYTHON_MANUAL,
        seed: int = 0,
        initial_share: float = 0.7,
        edit_share: float = 0.1,
        add_share: float = 0.05,
        remove_share: float = 0.03,
    ) -> None:
        shares = {"initial_share": initial_share, "edit_share": edit_share, "add_share": add_share}
        for name, share in {**shares, "remove_share": remove_share}.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {share}")
        self.root = Path(root)
        self.seed = seed
        self.shares = (initial_share, edit_share, add_share, remove_share)
        self.pages: tuple[str, ...] = _sorted({p.relative_to(self.root).as_posix() for p in self.root.rglob("*.html")})
        if not self.pages:
            raise FileNotFoundError(f"no *.html pages under {self.root}")
        self._states: list[_State] = []  # memo of nights 1..k: the same whatever order nights are asked in

    # -- bookkeeping ---------------------------------------------------------------------------------------------

    def night(self, n: int) -> Night:
        """Night n's pages (n >= 1)."""
        return self._state(n).night

    def edit_nights(self, n: int, page: str) -> tuple[int, ...]:
        """The nights (<= n) on which `page` was edited."""
        return self._state(n).edits.get(page, ())

    def _state(self, n: int) -> _State:
        if n < 1:
            raise ValueError(f"nights count from 1, got {n}")
        while len(self._states) < n:
            self._states.append(self._next_state(self._states[-1] if self._states else None))
        return self._states[n - 1]

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("/".join(map(str, ("nightly-site", self.seed, *parts))))

    def _next_state(self, previous: _State | None) -> _State:
        initial_share, edit_share, add_share, remove_share = self.shares
        if previous is None:
            others = [p for p in self.pages if p != INDEX]
            count = min(len(others), round(initial_share * len(self.pages)) - (INDEX in self.pages))
            present = set(self._rng("initial").sample(others, max(0, count))) | ({INDEX} & set(self.pages))
            return _State(Night(1, _sorted(present), _sorted(present), (), (), ()), {})
        number, last = previous.night.number + 1, previous.night.present
        rng = self._rng("night", number)
        edited = set(rng.sample(last, round(edit_share * len(last))))
        removable = [p for p in last if p != INDEX and p not in edited]
        removed = set(rng.sample(removable, min(len(removable), round(remove_share * len(last)))))
        absent = [p for p in self.pages if p not in set(last)]
        added = set(rng.sample(absent, min(len(absent), round(add_share * len(self.pages)))))
        present = (set(last) - removed) | added
        unchanged = set(last) - removed - edited
        edits = dict(previous.edits)
        for page in edited:
            edits[page] = edits.get(page, ()) + (number,)
        night = Night(number, _sorted(present), _sorted(added), _sorted(removed), _sorted(edited), _sorted(unchanged))
        return _State(night, edits)

    # -- page versions -------------------------------------------------------------------------------------------

    def page_bytes(self, n: int, page: str) -> bytes | None:
        """`page` as served on night n (its edits up to n applied), or None if it is absent that night."""
        state = self._state(n)
        if page not in set(state.night.present):
            return None
        original = (self.root / page).read_bytes()
        nights = state.edits.get(page, ())
        if not nights:
            return original
        html = original.decode("utf-8")
        for edit_night in nights:
            html = edit_page(html, edit_night, self._rng("edit", edit_night, page))
        return html.encode("utf-8")

    # -- serving -------------------------------------------------------------------------------------------------

    @contextmanager
    def serve(self, n: int, port: int = NIGHTLY_PORT) -> Iterator[str]:
        """Serve night n on 127.0.0.1:`port` (fixed, so URLs match across nights); yield the base URL."""
        served = _ServedNight(self, n)
        handler = functools.partial(_NightHandler, directory=str(self.root), served=served)
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as error:
            raise OSError(f"cannot serve night {n} on 127.0.0.1:{port} (port taken?): {error}") from error
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class _ServedNight:
    """Night n's pages for the handler threads: present set, and the edited pages built once, kept in memory."""

    def __init__(self, site: ChangingSite, n: int) -> None:
        self.site, self.n = site, n
        self.present = frozenset(site.night(n).present)
        self.edited = frozenset(p for p in self.present if site.edit_nights(n, p))
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def page(self, page: str) -> bytes | None:
        if page not in self.present:
            return None
        if page not in self.edited:
            return (self.site.root / page).read_bytes()
        with self._lock:
            if page not in self._cache:
                self._cache[page] = self.site.page_bytes(self.n, page) or b""
            return self._cache[page]


class _NightHandler(http.server.SimpleHTTPRequestHandler):
    """GET/HEAD: present pages (edited ones from memory), static assets from disk, 404 for absent pages."""

    def __init__(self, *args: Any, served: _ServedNight, **kwargs: Any) -> None:
        self.served = served  # set before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass

    def send_head(self) -> io.BufferedIOBase | None:
        page = _relative_path(self.path)
        if page is None:
            self.send_error(404)
            return None
        if page == "" or page.endswith("/"):
            page += INDEX
        if page.endswith(".html"):
            return self._send_page(page)
        if (self.served.site.root / page).is_dir():  # no listings: a directory means its index page
            self.send_response(301)
            self.send_header("Location", "/" + page + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()

    def _send_page(self, page: str) -> io.BufferedIOBase | None:
        body = self.served.page(page)
        if body is None:
            self.send_error(404)
            return None
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


def _relative_path(request_path: str) -> str | None:
    """The site-relative path of a request ('' for the root), or None if it climbs out of the site."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(request_path).path)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    relative = posixpath.join(*parts) if parts else ""
    return relative + "/" if relative and path.endswith("/") else relative


def _sorted(pages: set[str] | frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(pages))


# -- edits ---------------------------------------------------------------------------------------------------------


def new_sentence(night: int, rng: random.Random) -> str:
    """A fresh sentence marked with its night: 'Changed on night 3: ...' and 10 to 16 words of vocabulary."""
    words = [rng.choice(_VOCABULARY) for _ in range(rng.randint(10, 16))]
    return f"{EDIT_MARK} {night}: {' '.join(words)}."


def edit_page(html: str, night: int, rng: random.Random) -> str:
    """Replace one sentence of a paragraph in the page's main text with new_sentence(night); with no such sentence,
    insert it as a new paragraph at the top of the main text. Earlier edits' sentences are never replaced."""
    start, end = _main_region(html)
    sentence = new_sentence(night, rng)
    spans = _sentence_spans(html, start, end)
    if spans:
        left, right = rng.choice(spans)
        return html[:left] + sentence + html[right:]
    insert_at = html.index(">", start) + 1 if start > 0 else 0
    return html[:insert_at] + f"\n<p>{sentence}</p>\n" + html[insert_at:]


def _main_region(html: str) -> tuple[int, int]:
    """(start, end) offsets of the page's main text: Sphinx's role="main" div up to the sidebar, else <body>."""
    start = html.find(_MAIN_START)
    if start < 0:
        start = max(html.find("<body"), 0)
    end = html.find(_MAIN_END, start)
    return start, end if end >= 0 else len(html)


def _sentence_spans(html: str, start: int, end: int) -> list[tuple[int, int]]:
    """Offsets of every replaceable sentence: whole, inside one text run of a <p> of the main region."""
    spans = []
    for paragraph in _PARAGRAPH.finditer(html, start, end):
        inner_start, inner = paragraph.start(1), paragraph.group(1)
        position = 0
        for run in [*_TAG.finditer(inner), None]:
            run_end = run.start() if run else len(inner)
            for sentence in _SENTENCE.finditer(inner, position, run_end):
                if EDIT_MARK not in sentence.group():
                    spans.append((inner_start + sentence.start(), inner_start + sentence.end()))
            position = run.end() if run else len(inner)
    return spans


# -- scoring what a crawler kept -----------------------------------------------------------------------------------

LSH_NUM_PERM = 128
LSH_BANDS, LSH_ROWS = 32, 4  # candidate S-curve 1 - (1 - J^4)^32: midpoint J ~ (1/32)^(1/4) ~ 0.42


def shingles(text: str, ngram: int = 5) -> frozenset[tuple[str, ...]]:
    """Word n-grams of normalize_text(text); a text of fewer than n words is one shingle; no words, none."""
    from data_code.dedupe.core import normalize_text

    words = normalize_text(text).split()
    if len(words) < ngram:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[k : k + ngram]) for k in range(len(words) - ngram + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """True Jaccard of two sets (0.0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def near_duplicate_pairs(
    docs: Sequence[Mapping[str, Any]], threshold: float = 0.8, ngram: int = 5, group: str = "night"
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, J), i < j indexes into `docs`, of documents with different `group` values (default "night")
    whose TRUE word n-gram Jaccard J is >= threshold, sorted by (i, j). Documents without words pair with none.

    Candidates come from MinHash LSH (datasketch, 128 permutations, 32 bands x 4 rows), then every candidate is
    verified by exact Jaccard of the shingle sets, so no reported pair is false. A pair with true Jaccard J shares
    a band with probability 1 - (1 - J^4)^32, so it is missed with probability (1 - J^4)^32: 4.7e-8 at J = 0.8,
    5.5e-11 at J = 0.85, 0 at J = 1 (equal sets have equal signatures). Over even 10^4 true pairs at J >= 0.8 the
    expected number missed is below 5e-4: negligible. (datasketch's own choice for threshold 0.5, 25 x 5, would
    miss 4.9e-5 of them.) The S-curve's midpoint is J ~ 0.42, so candidates are cheap: manual pages that are not
    versions of one another share almost no 5-grams.
    """
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(str(doc["text"]), ngram) for doc in docs]
    lsh = MinHashLSH(num_perm=LSH_NUM_PERM, params=(LSH_BANDS, LSH_ROWS))
    pairs = set()
    for j, shingle_set in enumerate(sets):
        if not shingle_set:
            continue
        minhash = MinHash(num_perm=LSH_NUM_PERM, seed=1)
        minhash.update_batch(["\x1f".join(s).encode("utf-8") for s in shingle_set])
        pairs.update((i, j) for i in lsh.query(minhash) if docs[i][group] != docs[j][group])
        lsh.insert(j, minhash)
    scored = ((i, j, jaccard(sets[i], sets[j])) for i, j in sorted(pairs))
    return [(i, j, score) for i, j, score in scored if score >= threshold]


def urls_twice(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    """URLs that more than one document has, sorted."""
    counts = Counter(str(doc["url"]) for doc in docs)
    return sorted(url for url, count in counts.items() if count > 1)
