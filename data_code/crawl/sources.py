"""One crawl partition from every configured source: the live crawl (seeds) and existing WARC files.

from data_code.crawl import CrawlConfig, crawl_and_ingest
summary = crawl_and_ingest(CrawlConfig(seeds=("https://example.com/",), warc_sources=("cc.warc.gz",)), out_dir)
"""

from __future__ import annotations

import time
from pathlib import Path

from data_code.crawl.config import CrawlConfig
from data_code.crawl.crawler import crawl_rows
from data_code.crawl.ingest import check_warc_sources, ingest_rows
from data_code.crawl.records import CrawlSummary, summarize, write_fetch_log


def crawl_and_ingest(config: CrawlConfig, out_dir: Path) -> CrawlSummary:
    """Crawl config's seeds (if any) and ingest its warc_sources (if any) into one out_dir.

    Writes warc/crawl-NNNNN.warc.gz, warc/ingest-NNNNN.warc.gz and a single fetches.parquet covering both.
    Raises FileNotFoundError (missing seeds_file or WARC source) and ValueError (e.g. a WARC source whose scheme
    or address config.source_policy() refuses) before any work; ingest_warcs says what can fail later.
    """
    out_dir = Path(out_dir)
    policy = config.source_policy()
    check_warc_sources(list(config.warc_sources), policy)
    if config.crawls:
        config.load_seeds()  # fail on a bad seeds_file before ingesting anything
    started = time.monotonic()
    rows, warc_files, errors = [], [], []
    if config.crawls:
        rows, warc_files = crawl_rows(config, out_dir, warc_prefix="crawl")
    if config.warc_sources:
        ingested, ingested_files, errors = ingest_rows(
            list(config.warc_sources),
            out_dir,
            warc_prefix="ingest",
            warc_max_bytes=config.warc_max_bytes,
            policy=policy,
        )
        rows, warc_files = rows + ingested, warc_files + ingested_files
    write_fetch_log(rows, out_dir)
    return summarize(rows, warc_files, time.monotonic() - started, errors)
