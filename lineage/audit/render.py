"""One small document model rendered two ways: Markdown and self-contained HTML (inline CSS, no scripts, no
external resources), so report.md and report.html always say the same thing.

A document is a list of blocks: ("h", level, text), ("p", text), ("list", [items]), ("table", headers, rows).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

Block = tuple
MAX_CELL_CHARS = 300  # longer values are cut in tables (the JSON report holds them whole)

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1b1f24; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f6f8fa; padding: 0 .2rem; border-radius: 3px; }
.fail { color: #b42318; font-weight: 600; } .pass { color: #067647; font-weight: 600; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; padding: .4rem 1rem; display: inline-block; }
nav.toc ol { margin: .3rem 0; padding-left: 1.4rem; }
details { margin: .2rem 0 .4rem; } summary { cursor: pointer; } summary h3 { display: inline; font-size: 1rem; }
"""


def cell(value: Any) -> str:
    """A value as table text: None as '-', containers as compact JSON, long text cut."""
    if value is None:
        return "-"
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, default=str, sort_keys=True)
        if isinstance(value, (dict, list))
        else str(value)
    )
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"{'#' * block[1]} {block[2]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]) or "- (none)")
        elif kind == "table":
            out.append(_markdown_table(block[1], block[2]))
        else:
            raise AssertionError(f"unknown block kind {kind!r}")
    return "\n\n".join(out) + "\n"


def _markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "(none)"
    escape = lambda value: cell(value).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def to_html(blocks: list[Block], title: str) -> str:
    """The document as one HTML page: a table of contents (every level-2 heading) after its title, and every
    level-3 section folded (<details>: its title shows, one click opens it; open when it holds a failure), so that
    the page is a readable outline, not tens of thousands of pixels of tables. Find in page opens folded ones."""
    body: list[str] = []
    sections = [block[2] for block in blocks if block[0] == "h" and block[1] == 2]
    anchors = {text: f"s{number}" for number, text in enumerate(sections, start=1)}
    folded: list[str] | None = None  # the open level-3 section: its summary line, then its content

    def fold() -> None:
        nonlocal folded
        if folded is not None:
            opened = " open" if 'class="fail"' in "".join(folded) else ""
            body.append(f"<details{opened}>{folded[0]}{''.join(folded[1:])}</details>")
        folded = None

    for block in blocks:
        kind = block[0]
        out = body if folded is None else folded
        if kind == "h" and block[1] <= 3:
            fold()
            if block[1] == 3:
                folded = [f"<summary><h3>{html.escape(block[2])}</h3></summary>"]
                continue
            anchor = f' id="{anchors[block[2]]}"' if block[1] == 2 else ""
            body.append(f"<h{block[1]}{anchor}>{html.escape(block[2])}</h{block[1]}>")
            if block[1] == 1 and sections:
                links = "".join(f'<li><a href="#{anchors[text]}">{html.escape(text)}</a></li>' for text in sections)
                body.append(f'<nav class="toc"><strong>Contents</strong><ol>{links}</ol></nav>')
        elif kind == "h":
            out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            items = "".join(f"<li>{_inline(str(item))}</li>" for item in block[1]) or "<li>(none)</li>"
            out.append(f"<ul>{items}</ul>")
        elif kind == "table":
            out.append(_html_table(block[1], block[2]))
        else:
            raise AssertionError(f"unknown block kind {kind!r}")
    fold()
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in headers)
    lines = ["<tr>" + "".join(f"<td>{_inline(cell(value))}</td>" for value in row) + "</tr>" for row in rows]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


URL = re.compile(r"\bhttps?://[^\s<>\"'`]+")


def _inline(text: str) -> str:
    """Escaped text; `code` spans become <code>, http(s) addresses links, PASS/FAIL markers get a colour."""
    parts = html.escape(text).split("`")
    out = "".join(f"<code>{part}</code>" if i % 2 else _links(part) for i, part in enumerate(parts))
    return out.replace("**FAIL**", '<span class="fail">FAIL</span>').replace(
        "**PASS**", '<span class="pass">PASS</span>'
    )


def _links(escaped: str) -> str:
    """http(s) addresses in already-escaped text as links (the crawled URLs, the MLflow runs)."""
    return URL.sub(lambda match: f'<a href="{match.group(0)}">{match.group(0)}</a>', escaped)
