"""One WARC response record (plus its crawl metadata) -> one Document row or one rejection row; a revisit record
-> one revisit outcome (never a Document).

This is the per-record work that runs in the worker processes; it must stay picklable and free of shared state.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import urljoin

import ftfy

from data_code.document import domain_of, make_doc_id, rejection
from data_code.extract.config import ExtractConfig
from data_code.extract.decode import content_kind, decode_payload, is_binary, parse_content_type
from data_code.extract.page import main_text, parse_html, read_page_signals, tidy_text
from data_code.signals import PageSignals, parse_directives
from data_code.warc import WarcRecord

STAGE = "extract"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LINK_LICENSE = re.compile(r"""<([^>]+)>[^,]*?\brel\s*=\s*"?[^",]*\blicense\b""", re.IGNORECASE)
_ABSENT = ("", "none", "null", "unknown")  # metadata values that carry no licence
# UTF-8 read as latin-1/windows-1252 (the mojibake seen on the web) always leaves a lead character in Â..ô followed
# by a continuation character shown as U+0080..U+00BF or a windows-1252 punctuation sign: "Ã©", "â€™".
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def extract_batch(items: list[tuple], config: ExtractConfig) -> list[tuple[str, dict]]:
    """Process one batch in order. Items are ('record', WarcRecord, metadata fields) or ('row', kind, row)."""
    results = []
    for item in items:
        if item[0] == "record":
            results.append(extract_record(item[1], item[2], config))
        else:  # a row made by the reader (a corrupt file), passed through so output order stays the input order
            results.append((item[1], item[2]))
    return results


def extract_record(record: WarcRecord, fields: dict[str, str], config: ExtractConfig) -> tuple[str, dict]:
    """('document', DOCUMENT_SCHEMA row) or ('rejection', REJECTION_SCHEMA row) for one response record;
    ('revisit', revisit_outcome(record, url)) for a revisit record, whatever HTTP headers and body it carries."""
    url = (record.target_uri or "").strip("<>")
    if record.record_type == "revisit":
        # The page is unchanged since the capture the revisit refers to: a body some tools copy into the revisit
        # is that capture's, already extracted from there (or due to be), so extracting it again would duplicate it.
        return "revisit", revisit_outcome(record, url)
    if record.http_status != 200:
        return _reject(url, "non_200", f"HTTP status {record.http_status}")
    media_type, charset = parse_content_type(record.header("Content-Type"))
    kind = content_kind(media_type, record.payload)
    if kind is None:
        return _reject(url, "not_html", f"content type {media_type}")
    if is_binary(record.payload, charset):
        return _reject(url, "binary_content", f"binary payload declared as {media_type}")
    decoded = decode_payload(record.payload, charset, is_html=kind == "html")
    if decoded.replacement_ratio > config.max_replacement_char_ratio:
        detail = f"{decoded.replacement_ratio:.1%} replacement characters after trying {', '.join(decoded.tried)}"
        return _reject(url, "undecodable", detail, score=decoded.replacement_ratio)
    try:
        title, text, signals = _title_text_signals(decoded.text, kind, url, record, config)
    except Exception as error:  # an engine can raise on any odd page; one page must not stop the run
        return _reject(url, "extraction_failed", f"{config.extractor}: {type(error).__name__}: {error}")
    if not text:
        return _reject(url, "empty_text", "no main text extracted", score=0.0)
    if len(text) < config.min_text_chars:
        detail = f"{len(text)} chars < min_text_chars={config.min_text_chars}"
        return _reject(url, "too_short", detail, score=float(len(text)))
    return "document", _document_row(record, url, media_type, fields, signals, title, text)


def revisit_outcome(record: WarcRecord, url: str) -> dict:
    """{'url', 'profile'} of a revisit record; profile is one of config.REVISIT_PROFILES.

    WarcRecord does not carry WARC-Profile, so the profile is told from the HTTP status, which separates the two
    standard profiles: server-not-modified records a 304 answer to a conditional request; identical-payload-digest
    records a full answer (or none) whose payload digest matched an earlier capture.
    """
    profile = "server-not-modified" if record.http_status == 304 else "identical-payload-digest"
    return {"url": url or None, "profile": profile}


def _title_text_signals(html: str, kind: str, url: str, record: WarcRecord, config: ExtractConfig):
    x_robots_tag = record.header("X-Robots-Tag")
    if kind == "text":
        return None, _repair(tidy_text(html)), PageSignals(robots_meta=parse_directives(x_robots_tag or ""))
    tree = parse_html(html)
    signals = read_page_signals(tree, url, x_robots_tag)
    text = main_text(tree, html, url, config.extractor, config.include_tables)
    return _repair(signals.title), _repair(text), signals


def _repair(text: str | None) -> str | None:
    # ftfy's own check costs as much as extraction itself; the hint regex is ~50x cheaper and rules out most pages.
    return ftfy.fix_encoding(text) if text and _MOJIBAKE_HINT.search(text) else text


def _document_row(record, url, media_type, fields, signals, title, text) -> dict:
    robots = fields.get("robots", "").strip().lower() or "unknown"
    robots_meta = signals.robots_meta | parse_directives(fields.get("robots-meta", ""))
    return {
        "doc_id": make_doc_id(url, record.payload_digest or _payload_digest(record.payload)),
        "url": url,
        "domain": domain_of(url),
        "fetch_time": _fetch_time(record.date),
        "warc_file": record.uri,
        "warc_offset": record.offset,
        "warc_record_id": record.record_id,
        "http_status": record.http_status,
        "content_type": media_type,
        "license": _license(fields, signals, record.header("Link"), url),
        "robots": robots,
        "robots_meta": ",".join(sorted(robots_meta)),  # '' = the page states no opt-out
        "source": "crawl" if fields.get("source") == "crawl" or robots == "allowed" else "warc",
        "title": title,
        "text": text,
        "language": declared_language(signals.language, record.header("Content-Language")),
        "language_score": None,
        "quality_score": None,
    }


def _payload_digest(payload: bytes) -> str:
    """The digest a WARC writer would have recorded (sha1, base32) for a record that carries none."""
    return "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode("ascii")


def _fetch_time(warc_date: str | None) -> datetime | None:
    if not warc_date:
        return None
    moment = datetime.fromisoformat(warc_date)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _license(fields: dict[str, str], signals: PageSignals, link_header: str | None, url: str) -> str | None:
    """The crawler's recorded licence wins; else the page's rel=license / CC link; else a Link: rel=license."""
    recorded = fields.get("license", "").strip()
    if recorded.lower() not in _ABSENT:
        return recorded
    if signals.license:
        return signals.license
    match = _LINK_LICENSE.search(link_header or "")
    return urljoin(url, match.group(1).strip()) if match else None


def declared_language(html_lang: str | None, content_language: str | None) -> str | None:
    """Primary language subtag declared by <html lang> or else Content-Language: 'en-US, fr' -> 'en'."""
    for value in (html_lang, content_language):
        primary = (value or "").split(",")[0].strip().lower().replace("_", "-").split("-")[0]
        if _LANGUAGE.match(primary):
            return primary
    return None


def _reject(url: str, reason: str, detail: str, *, score: float | None = None) -> tuple[str, dict]:
    # doc_id stays null: the record never became a document (REJECTION_SCHEMA); the url identifies it.
    return "rejection", rejection(STAGE, reason, url=url or None, score=score, detail=detail)
