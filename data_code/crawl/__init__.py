"""Crawling and WARC ingest: the first stage of the lifecycle (pure Python; no dagster, no mlflow).

Public API:
    CrawlConfig                                   what to crawl and how politely (config.py)
    SourcePolicy                                  how a named file (WARC source, dataset) may be read (config.py)
    crawl(config, out_dir, *, warc_prefix)        -> CrawlSummary; writes warc/*.warc.gz + fetches.parquet
    ingest_warcs(uris, out_dir, *, warc_prefix)   -> CrawlSummary; the same outputs from existing WARC files
    crawl_and_ingest(config, out_dir)             -> CrawlSummary; both: seeds crawled + config.warc_sources
    FETCH_SCHEMA                                  one row per URL attempted (records.py documents each column)
    FAILURE_REASONS                               every outcome besides "ok"

Outcomes (fetches.parquet `outcome`):
    ok                        fetched, stored in the WARC, links followed
    connect_error             DNS failed, connection refused or another transport failure before a response
    connection_reset          the connection broke mid-response (reset, or closed before the full body)
    timeout                   connect/read timeout, or the whole request took longer than total_timeout_s
    http_error                4xx (detail has the status), or a 3xx without Location
    server_error              5xx after max_retries retries
    rate_limited              429 after max_retries retries
    too_many_redirects        more than max_redirects hops
    redirect_loop             a redirect back to a URL already in the chain
    blocked_address           the host is, or resolves to, a loopback/private/link-local/metadata address
    disallowed_by_robots      robots.txt disallows the URL for our user agent
    robots_unavailable        robots.txt answered 5xx: RFC 9309 says disallow the whole site
    too_large                 body larger than max_response_bytes as sent
    decompression_bomb        body larger than max_response_bytes after content-decoding
    content_decoding_error    Content-Encoding data is corrupt
    unsupported_content_type  not text/html, application/xhtml+xml or text/plain (or an unknown encoding)
    binary_content            served as text but the bytes look binary (NULs, control bytes, magic numbers)
    off_domain                the URL or a redirect leaves allowed_domains
    invalid_url               a link or Location that is not a fetchable http(s) URL
    corrupt_warc              (ingest) a WARC record or file is damaged (digest mismatch, bad gzip member,
                              truncation); detail names the file and the damaged record's byte offset
    internal_error            a bug in the crawler; logged with its traceback, the crawl goes on
"""

from data_code.crawl.config import CrawlConfig, SourcePolicy
from data_code.crawl.crawler import crawl
from data_code.crawl.errors import FAILURE_REASONS
from data_code.crawl.ingest import ingest_warcs
from data_code.crawl.records import FETCH_SCHEMA, CrawlSummary
from data_code.crawl.sources import crawl_and_ingest

__all__ = [
    "CrawlConfig",
    "CrawlSummary",
    "FAILURE_REASONS",
    "FETCH_SCHEMA",
    "SourcePolicy",
    "crawl",
    "crawl_and_ingest",
    "ingest_warcs",
]
