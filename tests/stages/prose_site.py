"""A local site of real English prose (standard-library docstrings) with planted duplicates and an opt-out page."""

from __future__ import annotations

import html
from pathlib import Path

from data_code.filters.quality_examples import stdlib_paragraphs

PAGES = 8
PARAGRAPHS_PER_PAGE = 12


def article(index: int) -> list[str]:
    """The paragraphs of page `index`: consecutive, distinct, well-written stdlib prose."""
    prose = [p for p in stdlib_paragraphs() if len(p.split()) >= 25]
    start = index * PARAGRAPHS_PER_PAGE
    return prose[start : start + PARAGRAPHS_PER_PAGE]


def page(title: str, paragraphs: list[str], head_extra: str = "") -> str:
    body = "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    links = "".join(f'<a href="page{i}.html">page {i}</a> ' for i in range(PAGES))
    return (
        f"<html lang='en'><head><title>{html.escape(title)}</title>{head_extra}</head><body>"
        f"<nav>{links}<a href='copy.html'>copy</a> <a href='near.html'>near</a> <a href='noai.html'>noai</a></nav>"
        f"<article><h1>{html.escape(title)}</h1>{body}</article></body></html>"
    )


def write_prose_site(root: Path) -> dict[str, str]:
    """Pages page0..page7, copy.html (same text as page1), near.html (page0 with a few words changed),
    noai.html (opts out of AI training). Returns {role: file name}."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(PAGES):
        (root / f"page{index}.html").write_text(page(f"Topic {index}", article(index)))
    (root / "index.html").write_text(page("Index", article(PAGES)))
    (root / "copy.html").write_text(page("Topic 1", article(1)))
    near = article(0)
    near[3] = near[3].replace(" the ", " a ", 2)
    (root / "near.html").write_text(page("Topic 0 (mirror)", near))
    opt_out = '<meta name="robots" content="noai">'
    (root / "noai.html").write_text(page("Private notes", article(PAGES + 1), head_extra=opt_out))
    return {"exact": "copy.html", "near": "near.html", "noai": "noai.html"}
