"""Page signals: outgoing links, opt-out directives and licence, read from one HTML page and its headers.

Shared by the crawler (which follows the links and logs the signals per fetch) and by extraction (which
records them on each Document, including for WARC files lmforge did not crawl itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# Directives that express an opt-out from indexing or AI training (robots meta tag / X-Robots-Tag).
OPT_OUT_DIRECTIVES = ("noindex", "nofollow", "none", "noai", "noimageai", "noarchive")
_CC_LICENSE = re.compile(r"^https?://(www\.)?creativecommons\.org/(licenses|publicdomain)/", re.IGNORECASE)


@dataclass
class PageSignals:
    """What one page says about itself."""

    links: list[str] = field(default_factory=list)  # absolute http(s) URLs, in page order, fragments removed
    robots_meta: set[str] = field(default_factory=set)  # opt-out directives from <meta name=robots> + header
    license: str | None = None  # rel=license target, else first Creative Commons licence link
    language: str | None = None  # <html lang>
    title: str | None = None


class _SignalParser(HTMLParser):
    def __init__(self, base_url: str):
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.signals = PageSignals()
        self._cc_link: str | None = None
        self._in_title = False
        self._title_seen = False  # only the document's first <title>: an inline <svg><title> is not the page's
        self._title_parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and attributes.get("href"):
            self.base_url = urljoin(self.base_url, attributes["href"].strip())
        elif tag == "html" and attributes.get("lang"):
            self.signals.language = attributes["lang"].strip().lower() or None
        elif tag == "title" and not self._title_seen:
            self._in_title = True
        elif tag == "meta" and attributes.get("name", "").lower() in ("robots", "ai", "googlebot"):
            self.signals.robots_meta |= parse_directives(attributes.get("content", ""))
        elif tag in ("a", "link", "area") and attributes.get("href"):
            self._handle_link(tag, attributes)

    def _handle_link(self, tag: str, attributes: dict[str, str]) -> None:
        absolute = urljoin(self.base_url, attributes["href"].strip())
        absolute = absolute.split("#", 1)[0]
        if urlsplit(absolute).scheme not in ("http", "https"):
            return
        rel = attributes.get("rel", "").lower().split()
        if "license" in rel and self.signals.license is None:
            self.signals.license = absolute
        if self._cc_link is None and _CC_LICENSE.match(absolute):
            self._cc_link = absolute
        if "nofollow" not in rel and attributes.get("href") and not _is_resource_link(tag, rel):
            self.signals.links.append(absolute)

    def handle_endtag(self, tag):
        if tag == "title" and self._in_title:
            self._in_title, self._title_seen = False, True

    def handle_data(self, data):
        if self._in_title and self.signals.title is None:
            self._title_parts.append(data)

    def close(self):
        super().close()
        if self._title_parts:
            self.signals.title = " ".join("".join(self._title_parts).split()) or None
        if self.signals.license is None:
            self.signals.license = self._cc_link


def _is_resource_link(tag: str, rel: list[str]) -> bool:
    """<link rel=stylesheet|icon|...> points at a resource, not a page to crawl. Only <link> can: an <a> with
    rel=noopener/noreferrer/external is an ordinary link."""
    return tag == "link" and bool(rel) and not set(rel) & {"next", "prev", "alternate", "canonical", "license"}


def parse_directives(value: str) -> set[str]:
    """Opt-out directives in a robots meta content / X-Robots-Tag value ('googlebot: noindex' counts too)."""
    directives = set()
    for part in re.split(r"[,\s]+", value.lower()):
        part = part.rsplit(":", 1)[-1].strip()
        if part in OPT_OUT_DIRECTIVES:
            directives.add(part)
    return directives


def page_signals(html: str, base_url: str, x_robots_tag: str | None = None) -> PageSignals:
    """Links, opt-out directives, licence, language and title of one HTML page. Never raises on bad HTML."""
    parser = _SignalParser(base_url)
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser's reaction to some malformed markup: keep what was read
        pass
    signals = parser.signals
    if parser._title_parts and signals.title is None:
        signals.title = " ".join("".join(parser._title_parts).split()) or None
    if x_robots_tag:
        signals.robots_meta |= parse_directives(x_robots_tag)
    return signals
