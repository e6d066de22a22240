"""URL and domain blocklist, in the spirit of the UT1 blocklist used by RefinedWeb (Penedo et al. 2023) and
datatrove's URLFilter: one entry per line of a text file, `#` starts a comment.

- `example.com` (or `*.example.com`) blocks that domain and every subdomain: reason `blocked_domain:example.com`;
- `https://example.org/private/` (any entry with a scheme) blocks URLs starting with it: reason `blocked_url`.
A line that is neither raises ValueError naming the file and the line number.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from data_code.filters.base import Decision, DocumentFilter

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class Blocklist:
    """Blocked domains and URL prefixes, parsed from lines of text."""

    def __init__(self, domains: frozenset[str] = frozenset(), url_prefixes: tuple[str, ...] = ()):
        self.domains, self.url_prefixes = domains, url_prefixes

    @classmethod
    def from_file(cls, path: str | Path) -> Blocklist:
        """Parse a blocklist file; FileNotFoundError if missing, ValueError '<file>:<line>: ...' if malformed."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"blocklist file not found: {path}")
        return cls.from_lines(path.read_text(encoding="utf-8").splitlines(), source=str(path))

    @classmethod
    def from_lines(cls, lines: list[str], source: str = "<blocklist>") -> Blocklist:
        domains, prefixes = set(), []
        for number, raw in enumerate(lines, start=1):
            entry = raw.split("#", 1)[0].strip()  # '#' starts a comment, on its own line or after an entry
            if not entry:
                continue
            if "://" in entry:
                prefixes.append(_parse_url_prefix(entry, f"{source}:{number}"))
            else:
                domains.add(_parse_domain(entry, f"{source}:{number}"))
        return cls(frozenset(domains), tuple(prefixes))

    def match(self, url: str, domain: str) -> tuple[str, str] | None:
        """(reason, matched entry) when the URL is blocked, else None."""
        host = (domain or urlsplit(url).hostname or "").lower().rstrip(".")
        labels = host.split(".")
        for i in range(len(labels)):  # the host itself, then each parent domain
            if (candidate := ".".join(labels[i:])) in self.domains:
                return f"blocked_domain:{candidate}", candidate
        normalized = _normalize_url(url)
        for prefix in self.url_prefixes:
            if normalized.startswith(prefix):
                return "blocked_url", prefix
        return None


def _parse_domain(entry: str, where: str) -> str:
    domain = entry.lower().removeprefix("*.").rstrip(".")
    if not _DOMAIN.match(domain):
        raise ValueError(f"{where}: not a domain or URL prefix: {entry!r}")
    return domain


def _parse_url_prefix(entry: str, where: str) -> str:
    try:
        parts = urlsplit(entry)
        parts.port  # noqa: B018 - parses the port: raises on a non-numeric or out-of-range one
    except ValueError as error:  # e.g. an unclosed IPv6 bracket
        raise ValueError(f"{where}: not an http(s) URL prefix: {entry!r} ({error})") from error
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in entry:
        raise ValueError(f"{where}: not an http(s) URL prefix: {entry!r}")
    return _normalize_url(entry)


def _normalize_url(url: str) -> str:
    """Lower-cased scheme and host (paths stay case-sensitive), so prefixes compare like browsers do."""
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :] if "://" in url else url
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{rest}"


class BlocklistFilter(DocumentFilter):
    """Drops documents whose URL is on the blocklist (an empty list blocks nothing)."""

    name = "blocklist"

    def __init__(self, blocklist: Blocklist | str | Path | None = None):
        super().__init__()
        if isinstance(blocklist, (str, Path)):
            blocklist = Blocklist.from_file(blocklist)
        self.blocklist = blocklist or Blocklist()

    def filter(self, doc: dict) -> Decision:
        matched = self.blocklist.match(doc.get("url") or "", doc.get("domain") or "")
        if matched is None:
            return True
        reason, entry = matched
        return False, reason, None, f"blocklist entry {entry}"


class OptOutFilter(BlocklistFilter):
    """Drops documents whose owners opted out after the crawl (the opt-out list, same format as a blocklist).

    Reasons `opted_out_domain:<domain>` / `opted_out_url`, so an audit tells an owner's request from our own
    blocklist.
    """

    name = "optout"

    def filter(self, doc: dict) -> Decision:
        matched = self.blocklist.match(doc.get("url") or "", doc.get("domain") or "")
        if matched is None:
            return True
        reason, entry = matched
        return False, reason.replace("blocked_", "opted_out_"), None, f"opt-out entry {entry}"
