"""Extraction throughput and quality of trafilatura vs resiliparse, on the same crawled pages, on one core.

    python -m bench.extract --json bench-extract.json [--pages 300] [--warc URI ...] [--site DIR] [--save-warc PATH]

Without --warc, a real linked site is served on 127.0.0.1 and crawled with urllib into a temporary WARC
(WarcFileWriter), then read back exactly as the extract stage reads crawls: by default `python -m pydoc -p 0`
(documentation of every installed module); with --site DIR, a directory served by http.server, e.g. Debian's
Python manual (`apt-get install python3.11-doc`, then --site /usr/share/doc/python3.11/html).

Measured per engine, in one process (one core): extract_text docs/s (parse + main text), the whole extract
pipeline docs/s with workers=1 (decode, signals, extraction, Parquet), mean characters, and quality proxies,
all compared as lower-cased words: content kept (share of the page's own lines >= 12 chars found in the text),
boilerplate kept (share of navigation lines found in the text: lines inside nav/header/footer/sidebar markup, or
repeated on >= half the pages), heading kept (first <h1>/<h2> found in the text), and agreement between engines
(token-set Jaccard).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from urllib.parse import urlsplit

ENGINES = ("resiliparse", "trafilatura")
_WORD = re.compile(r"\w+")
_PORT = re.compile(r"(?:port |:)(\d{2,5})\b")
_MIN_LINE = 12  # chars: shorter lines ("index", "|") are too ambiguous to count as content or boilerplate
_NAVIGATION = (
    'nav, header, footer, aside, [role="navigation"], [role="banner"], [role="contentinfo"], [class*="sidebar"], '
    '[class*="footer"], [class*="related"], [class*="breadcrumb"], [class*="menu"], [id*="sidebar"], [id*="footer"]'
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, help="where to write the results as JSON")
    parser.add_argument("--pages", type=int, default=300, help="pages to crawl (without --warc)")
    parser.add_argument("--warc", nargs="*", default=[], help="measure on these WARC files instead of a crawl")
    parser.add_argument("--site", help="serve this directory with http.server instead of pydoc")
    parser.add_argument("--save-warc", help="keep the crawled WARC here (to rerun with --warc)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        crawl_path = args.save_warc or os.path.join(workdir, "bench.warc.gz")
        warcs = args.warc or [crawl_local_site(args.site, args.pages, crawl_path)]
        report = run_bench(warcs, workdir)
    report["source"] = "warc" if args.warc else (args.site or "pydoc")
    print_table(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump(report, out, indent=2)
    print(f"wrote {args.json}")


def crawl_local_site(site: str | None, pages: int, warc_path: str) -> str:
    """Serve pydoc (or `site`) on 127.0.0.1, fetch up to `pages` HTML pages breadth-first into `warc_path`."""
    command = [sys.executable, "-m", "pydoc", "-n", "127.0.0.1", "-p", "0"]
    if site:
        command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", site, "0"]
    # pydoc's server quits when its stdin closes, so stdin stays an open pipe until we stop it.
    server = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = _read_port(server)
        fetched = _crawl(f"http://127.0.0.1:{port}/", pages, warc_path)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"crawled {fetched} pages from {'pydoc' if not site else site} into {warc_path}")
    return warc_path


def _read_port(server: subprocess.Popen) -> int:
    for _ in range(5):
        line = server.stdout.readline()
        match = _PORT.search(line)
        if match:
            return int(match.group(1))
    raise RuntimeError(f"the page server printed no port: {line!r}")


def _crawl(start: str, pages: int, warc_path: str) -> int:
    from data_code.signals import page_signals
    from data_code.warc import WarcFileWriter

    host, queue, seen, fetched = urlsplit(start).netloc, deque([(start, 0)]), {start}, 0
    with open(warc_path, "wb") as stream:
        writer = WarcFileWriter(stream, filename=os.path.basename(warc_path), software="lmforge bench.extract")
        while queue and fetched < pages:
            url, depth = queue.popleft()
            with urllib.request.urlopen(url, timeout=30) as response:
                body, headers = response.read(), list(response.headers.items())
                status = f"{response.status} {response.reason}"
            if "html" not in response.headers.get("Content-Type", ""):
                continue
            writer.write_exchange(
                url,
                request_headers=[("Host", host)],
                status_line=status,
                response_headers=headers,
                body=body,
                metadata={"depth": str(depth)},
            )
            fetched += 1
            for link in page_signals(body.decode("utf-8", errors="replace"), url).links:
                if urlsplit(link).netloc == host and "?" not in link and link not in seen:
                    seen.add(link)
                    queue.append((link, depth + 1))
    return fetched


def run_bench(warcs: list[str], workdir: str) -> dict:
    pages = load_pages(warcs)
    assert pages, f"no HTML pages with status 200 in {warcs}"
    reference = [_page_lines(html) for _url, html in pages]
    texts, results = {}, []
    for engine in ENGINES:
        seconds, texts[engine] = _time_engine(engine, pages)
        quality = _quality(texts[engine], reference, pages)
        pipeline = _time_pipeline(engine, warcs, workdir)
        results.append(
            {
                "engine": engine,
                "docs_per_s": round(len(pages) / seconds, 1),
                "seconds": round(seconds, 3),
                "mean_chars": round(sum(map(len, texts[engine])) / len(pages)),
                **quality,
                **pipeline,
            }
        )
    agreement = _mean(_jaccard(a, b) for a, b in zip(*texts.values(), strict=True))
    return {"pages": len(pages), "agreement": round(agreement, 3), "results": results, "machine": _machine()}


def load_pages(warcs: list[str]) -> list[tuple[str, str]]:
    """(url, decoded html) of every HTML response with status 200 in `warcs`."""
    from data_code.extract.decode import content_kind, decode_payload, parse_content_type
    from data_code.warc import iter_warc_records

    pages = []
    for uri in warcs:
        for record in iter_warc_records(uri, record_types=("response",)):
            media_type, charset = parse_content_type(record.header("Content-Type"))
            if record.http_status == 200 and content_kind(media_type, record.payload) == "html":
                pages.append((record.target_uri, decode_payload(record.payload, charset, is_html=True).text))
    return pages


def _time_engine(engine: str, pages: list[tuple[str, str]]) -> tuple[float, list[str]]:
    from data_code.extract import extract_text

    extract_text(pages[0][1], pages[0][0], engine)  # warm-up: imports and first-call caches are not throughput
    started = time.perf_counter()
    texts = [extract_text(html, url, engine)[1] for url, html in pages]
    return time.perf_counter() - started, texts


def _time_pipeline(engine: str, warcs: list[str], workdir: str) -> dict:
    from data_code.extract import ExtractConfig, extract_to_parquet

    documents, rejections = os.path.join(workdir, f"{engine}.parquet"), os.path.join(workdir, f"{engine}-rej.parquet")
    stats = extract_to_parquet(warcs, documents, rejections, ExtractConfig(extractor=engine, workers=1))
    return {
        "pipeline_docs_per_s": round(stats.records_read / stats.elapsed_s, 1),
        "pipeline_documents": stats.documents,
        "pipeline_rejections": stats.rejections_by_reason,
    }


def _page_lines(html: str) -> tuple[list[str], set[str]]:
    """(every visible line, lines only inside navigation markup), whitespace-collapsed, >= _MIN_LINE chars.

    Navigation markup: nav/header/footer/aside, ARIA navigation roles, and sidebar/footer/menu/breadcrumb/related
    classes. A line that also appears outside such markup (a heading repeated in a sidebar TOC) is not counted.
    """
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    def lines_of(markup: str) -> list[str]:
        lines = (_words(line) for line in extract_plain_text(markup, main_content=False).splitlines())
        return [line for line in lines if len(line) >= _MIN_LINE]

    everywhere = Counter(lines_of(html))
    in_navigation = Counter()
    for element in HTMLTree.parse(html).document.query_selector_all(_NAVIGATION):
        in_navigation.update(lines_of(element.html))
    only_navigation = {line for line, count in in_navigation.items() if everywhere[line] <= count}
    return list(everywhere), only_navigation


def _repeated_lines(pages_lines: list[list[str]]) -> set[str]:
    """Lines on at least half of the pages: site navigation, headers and footers without semantic markup."""
    counts = Counter(line for lines in pages_lines for line in lines)
    return {line for line, count in counts.items() if count >= max(2, len(pages_lines) / 2)}


def _quality(texts: list[str], reference: list[tuple[list[str], set[str]]], pages) -> dict:
    repeated = _repeated_lines([lines for lines, _nav in reference])
    content, boilerplate, headings = [], [], []
    for text, (lines, navigation), (_url, html) in zip(texts, reference, pages, strict=True):
        flat = _words(text)
        noise = [line for line in lines if line in repeated or line in navigation]
        own = [line for line in lines if line not in repeated and line not in navigation]
        if own:
            content.append(sum(line in flat for line in own) / len(own))
        if noise:
            boilerplate.append(sum(line in flat for line in noise) / len(noise))
        heading = _first_heading(html)
        if heading:
            headings.append(heading in flat)
    return {
        "content_kept": round(_mean(content), 3),
        "boilerplate_kept": round(_mean(boilerplate), 3),
        "heading_kept": round(_mean(headings), 3) if headings else None,
        "pages_with_heading": len(headings),
    }


def _first_heading(html: str) -> str | None:
    from resiliparse.parse.html import HTMLTree

    element = HTMLTree.parse(html).document.query_selector("h1, h2")
    text = _words(element.text) if element is not None else ""
    return text or None


def _words(text: str) -> str:
    """Lower-cased words only, so punctuation and permalink signs (Sphinx's ¶) do not decide a comparison."""
    return " ".join(_WORD.findall(text.lower()))


def _jaccard(a: str, b: str) -> float:
    left, right = set(a.lower().split()), set(b.lower().split())
    return len(left & right) / len(left | right) if left | right else 1.0


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), None)
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processes": 1,
    }


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as info:
            return info.read().splitlines()
    except OSError:
        return []


def print_table(report: dict) -> None:
    print(
        f"\n{report['pages']} pages from {report.get('source')}, one process; engine agreement "
        f"(token Jaccard) {report['agreement']}"
    )
    header = (
        "engine",
        "pages",
        "docs/s",
        "pipeline docs/s",
        "mean chars",
        "content kept",
        "boilerplate kept",
        "heading kept",
    )
    rows = [
        (
            r["engine"],
            report["pages"],
            r["docs_per_s"],
            r["pipeline_docs_per_s"],
            r["mean_chars"],
            r["content_kept"],
            r["boilerplate_kept"],
            r["heading_kept"],
        )
        for r in report["results"]
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
