"""PII redaction: e-mail addresses, phone numbers, public IP addresses, credit-card numbers and secrets become
typed placeholders (<EMAIL>, <PHONE>, <IP_ADDRESS>, <CREDIT_CARD>, <SECRET>). Never drops a document.

Follows the regex-based approach of BigCode's StarCoder PII pipeline and of datatrove's PIIFormatter, which also
replace e-mails and public IPs with placeholders. Choices:
- IP addresses are redacted only when `ipaddress` calls them global: private (10/8, 192.168/16 ...), loopback,
  link-local, multicast and documentation ranges (192.0.2.0/24, 2001:db8::/32 ...) identify no one and are common
  in technical text, so they stay.
- Card numbers (13-19 digits, optionally grouped by spaces or dashes) are redacted only when the Luhn checksum
  holds; a failing digit run is left alone and is not re-read as a phone number.
- Phone numbers need a separator pattern or a leading '+' (bare digit runs are more often ids or counts).
- Secrets: AWS access key ids (AKIA/ASIA...), GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), PEM
  private-key blocks, and values of `api_key=` / `secret:` / `token=`-style assignments with >= 3 bits/char entropy.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator

import numpy as np

from data_code.filters.base import Decision, DocumentFilter
from data_code.filters.kernels import pii_candidates

PLACEHOLDERS = {
    "secret": "<SECRET>",
    "email": "<EMAIL>",
    "credit_card": "<CREDIT_CARD>",
    "ip_address": "<IP_ADDRESS>",
    "phone": "<PHONE>",
}
PII_TYPES = tuple(PLACEHOLDERS)  # also the order in which spans are claimed

_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----", re.DOTALL)
_TOKEN = re.compile(r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,90})\b")
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|token|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9_\-+/=.]{16,})"
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w-])"
    r"|(?<![\w+])\+\d{1,3}[ .-]?\d{6,12}(?!\w)"
)


def find_pii(text: str) -> dict[str, int]:
    """PII found in `text`, type -> occurrences (for the data-contract check that none is left after redaction)."""
    return dict(Counter(kind for _, _, kind in _spans(text) if kind))


def redact_pii(text: str, types: tuple[str, ...] = PII_TYPES) -> tuple[str, dict[str, int]]:
    """`text` with PII of `types` replaced by placeholders, and type -> replacements made."""
    return redact_spans(text, _spans(text), types)


def redact_spans(text: str, spans: list[tuple[int, int, str | None]], types: tuple[str, ...]):
    """`text` with the `spans` of `types` replaced by their placeholders, and type -> replacements made."""
    pieces, counts, position = [], Counter(), 0
    for start, end, kind in spans:
        if kind in types:
            pieces += [text[position:start], PLACEHOLDERS[kind]]
            counts[kind] += 1
            position = end
    pieces.append(text[position:])
    return "".join(pieces), dict(counts)


def _spans(text: str) -> list[tuple[int, int, str | None]]:
    """Non-overlapping (start, end, type) spans, claimed in PII_TYPES order; type None marks text left alone.

    Each pattern is tried only where one of its matches can start (kernels.pii_candidates), with
    `pattern.match(text, start)`: a match sees the whole text around it (lookbehinds, lookaheads, word boundaries),
    so the matches are exactly those of `pattern.finditer(text)`, found without scanning the text per pattern.
    """
    claimed: list[tuple[int, int, str | None]] = []  # sorted by start, never overlapping

    def claim(start: int, end: int, kind: str | None) -> None:
        i = bisect.bisect_left(claimed, (start,))
        if (i == 0 or claimed[i - 1][1] <= start) and (i == len(claimed) or claimed[i][0] >= end):
            claimed.insert(i, (start, end, kind))

    starts = pii_candidates(text)
    for match in _matches(_PEM, text, starts.pem):
        claim(match.start(), match.end(), "secret")
    for match in _matches(_TOKEN, text, starts.token):
        claim(match.start(), match.end(), "secret")
    for match in _matches(_ASSIGNED_SECRET, text, starts.secret):
        if _entropy(match.group("value")) >= 3.0:
            claim(match.start("value"), match.end("value"), "secret")
    for match in _matches(_EMAIL, text, starts.email):
        claim(match.start(), match.end(), "email")
    for match in _matches(_CARD, text, starts.card):  # digit runs failing Luhn: claimed as None, read no more
        claim(match.start(), match.end(), "credit_card" if luhn_valid(match.group()) else None)
    for pattern, candidates in ((_IPV4, starts.ipv4), (_IPV6, starts.ipv6)):
        for match in _matches(pattern, text, candidates):
            claim(match.start(), match.end(), "ip_address" if _is_public_ip(match.group()) else None)
    for match in _matches(_PHONE, text, starts.phone):
        claim(match.start(), match.end(), "phone")
    return claimed


def _matches(pattern: re.Pattern, text: str, starts: np.ndarray) -> Iterator[re.Match]:
    """pattern.finditer(text), given every position where a match can start (ascending)."""
    end = 0
    for start in starts.tolist():
        if start >= end and (match := pattern.match(text, start)):
            yield match
            end = match.end()


def luhn_valid(number: str) -> bool:
    """The Luhn checksum of the digits in `number` (ISO/IEC 7812 card numbers satisfy it)."""
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return len(digits) >= 13 and total % 10 == 0


def _is_public_ip(candidate: str) -> bool:
    try:
        return ipaddress.ip_address(candidate).is_global
    except ValueError:  # looks like an address, is not one (999.1.1.1, a:b:c)
        return False


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


class PIIRedactionFilter(DocumentFilter):
    """Replaces PII with placeholders; counts replacements by type and documents holding each type."""

    name = "pii"

    def __init__(self, types: tuple[str, ...] = PII_TYPES):
        super().__init__()
        unknown = set(types) - set(PII_TYPES)
        assert not unknown, f"unknown PII types {sorted(unknown)}; known: {PII_TYPES}"
        self.types = tuple(types)

    def filter(self, doc: dict) -> Decision:
        return True

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        return redact_pii(text, self.types)

    def transform(self, doc: dict) -> dict:
        text, counts = self.redact(doc["text"])
        if not counts:
            return doc
        for kind, found in counts.items():
            self.count(f"{kind}", found)
            self.count(f"documents_with_{kind}")
        self.count("documents_redacted")
        return {**doc, "text": text}
