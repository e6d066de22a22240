"""Tiny real WARC files and pages for the extract tests."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from data_code.warc import WarcFileWriter

ARTICLE = (
    "The river otter returned to the valley this spring after forty years away. Volunteers counted eleven "
    "animals along the northern bank, and the local school now keeps a diary of every sighting. "
    "Biologists credit the cleaner water and the new fish ladders built below the old mill."
)
SECOND_PARAGRAPH = (
    "Farmers who once saw otters as a threat to their ponds now help to record tracks in the mud. "
    "The survey will continue every month until the end of next year, and the results will be published."
)
NAV_LINKS = ("Home page of Example News", "World affairs section", "Subscribe to our newsletter today")
FOOTER = "Copyright 2024 Example News Corporation. All rights reserved. Privacy policy and terms."


def realistic_page(title="Otters return to the valley", lang="en", head_extra="", footer_extra="", body=None) -> str:
    """A news-like page: header + nav + sidebar + footer boilerplate around one article."""
    nav = "".join(f'<li><a href="/section/{i}">{text}</a></li>' for i, text in enumerate(NAV_LINKS))
    article = body if body is not None else f"<h1>{title}</h1><p>{ARTICLE}</p><p>{SECOND_PARAGRAPH}</p>"
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>{head_extra}</head>
<body>
<header class="site-header"><div class="logo">Example News</div><nav class="main-nav"><ul>{nav}</ul></nav></header>
<div class="layout">
<main><article>{article}</article></main>
<aside class="sidebar"><h3>Related stories</h3><ul><li><a href="/a">Beavers build a dam near the school</a></li>
<li><a href="/b">Herons nest on the island again</a></li></ul></aside>
</div>
<footer class="site-footer"><p>{FOOTER}</p>{footer_extra}</footer>
</body></html>"""


@dataclass
class Exchange:
    """One fetch to write with WarcFileWriter."""

    url: str
    body: bytes
    content_type: str | None = "text/html; charset=utf-8"
    status: str = "200 OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    metadata: dict[str, str] | None = field(default_factory=lambda: {"robots": "allowed", "depth": "0"})


def write_crawl_warc(path, exchanges: list[Exchange]) -> list[tuple[int, str]]:
    """Write `exchanges` as a crawl WARC (gzip, with metadata records); return each (response offset, record id)."""
    written = []
    with open(path, "wb") as stream:
        writer = WarcFileWriter(stream, filename=path.name)
        for exchange in exchanges:
            headers = ([("Content-Type", exchange.content_type)] if exchange.content_type else []) + exchange.headers
            written.append(
                writer.write_exchange(
                    exchange.url,
                    request_headers=[("Host", exchange.url.split("/")[2])],
                    status_line=exchange.status,
                    response_headers=headers,
                    body=exchange.body,
                    metadata=exchange.metadata,
                )
            )
    return written


def foreign_response_record(url: str, date: str, http_head: str, body: bytes) -> bytes:
    """An uncompressed WARC/1.0 response record as another crawler writes it: no payload digest, no metadata."""
    block = http_head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body
    header = (
        f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{hashlib.md5(url.encode()).hexdigest()}>\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: {date}\r\nContent-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(block)}\r\n\r\n"
    )
    return header.encode() + block + b"\r\n\r\n"


def sha1_digest(payload: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode()
