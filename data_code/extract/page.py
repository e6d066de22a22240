"""One HTML page: its signals (licence, opt-outs, language, title) and its main text, by either engine.

Signals are read from the resiliparse DOM rather than with data_code.signals.page_signals: the DOM is parsed for
extraction anyway, and page_signals' pure-Python parser costs 2-10x more than resiliparse's whole extraction.
The rules are the same as page_signals' (tests/extract compare both on the same pages).
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from data_code.signals import _CC_LICENSE, PageSignals, parse_directives

_ROBOTS_META_NAMES = ("robots", "ai", "googlebot")  # as in data_code.signals
_LICENSE_LINKS = 'a[rel~="license" i][href], link[rel~="license" i][href], area[rel~="license" i][href]'
_CC_LINKS = (
    'a[href*="creativecommons.org" i], link[href*="creativecommons.org" i], area[href*="creativecommons.org" i]'
)
_BLANK_RUNS = re.compile(r"\n{3,}")


def parse_html(html: str) -> HTMLTree:
    return HTMLTree.parse(html)


def read_page_signals(tree: HTMLTree, url: str, x_robots_tag: str | None = None) -> PageSignals:
    """Licence, opt-out directives, declared language and title of a parsed page (links are left empty)."""
    document = tree.document
    signals = PageSignals()
    base = document.query_selector("base[href]")
    base_url = urljoin(url, base.getattr("href").strip()) if base is not None else url
    root = document.query_selector("html")
    signals.language = ((root.getattr("lang") or "").strip().lower() or None) if root is not None else None
    signals.title = " ".join((tree.title or "").split()) or None
    for meta in document.query_selector_all("meta[name]"):
        if (meta.getattr("name") or "").strip().lower() in _ROBOTS_META_NAMES:
            signals.robots_meta |= parse_directives(meta.getattr("content") or "")
    if x_robots_tag:
        signals.robots_meta |= parse_directives(x_robots_tag)
    signals.license = _first_link(document.query_selector_all(_LICENSE_LINKS), base_url, _CC_LICENSE.match)
    if signals.license is None:
        signals.license = _first_link(document.query_selector_all(_CC_LINKS), base_url, _CC_LICENSE.match)
    return signals


def _first_link(elements, base_url: str, cc_match) -> str | None:
    """First element's absolute http(s) href (fragment removed); CC links must also match the licence pattern."""
    for element in elements:
        absolute = urljoin(base_url, (element.getattr("href") or "").strip()).split("#", 1)[0]
        if urlsplit(absolute).scheme not in ("http", "https"):
            continue
        rel = (element.getattr("rel") or "").lower().split()
        if "license" in rel or cc_match(absolute):
            return absolute
    return None


def extract_text(html: str, url: str, engine: str, *, include_tables: bool = True) -> tuple[str | None, str]:
    """(title, main text) of one HTML page by `engine` ('trafilatura' | 'resiliparse'); text is '' when none."""
    tree = parse_html(html)
    return " ".join((tree.title or "").split()) or None, main_text(tree, html, url, engine, include_tables)


def main_text(tree: HTMLTree, html: str, url: str, engine: str, include_tables: bool) -> str:
    """Main content of a page, boilerplate (navigation, headers, footers) removed, blank runs collapsed."""
    if engine == "resiliparse":
        text = _resiliparse_text(tree, include_tables)
    elif engine == "trafilatura":
        text = _trafilatura_text(html, url, include_tables)
    else:
        raise ValueError(f"engine must be 'trafilatura' or 'resiliparse', got {engine!r}")
    return tidy_text(text)


def _resiliparse_text(tree: HTMLTree, include_tables: bool) -> str:
    return extract_plain_text(
        tree,
        main_content=True,
        preserve_formatting=True,
        list_bullets=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=False,
        skip_elements=None if include_tables else ["table"],
    )


def _trafilatura_text(html: str, url: str, include_tables: bool) -> str:
    import trafilatura  # imported here: ~0.5 s, and only the trafilatura engine needs it

    document = trafilatura.bare_extraction(
        html, url=url, include_comments=False, include_tables=include_tables, with_metadata=False
    )
    return (document.text or "") if document is not None else ""


def tidy_text(text: str) -> str:
    """Strip trailing spaces from each line and collapse runs of blank lines, so engines compare fairly."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(line if line.strip() else "" for line in lines)).strip()
