"""The Document record that flows through every data stage, and the rejection record beside it.

Documents live on disk as Parquet with DOCUMENT_SCHEMA; every stage that drops a document writes a row of
REJECTION_SCHEMA saying which stage dropped it and why, so an audit can explain any absence.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import pyarrow as pa

# Every data stage's artifact holds its kept documents and its rejections under these names.
DOCUMENTS_FILE = "documents.parquet"
REJECTIONS_FILE = "rejections.parquet"
# The two splits, by one name each everywhere (shards, instruction and preference examples, evaluation).
TRAIN, VALIDATION = "train", "validation"
SPLITS = (TRAIN, VALIDATION)

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # stable: sha256(url, payload digest)[:24]
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),  # lower-cased host, without port
        pa.field("fetch_time", pa.timestamp("us", tz="UTC")),
        pa.field("warc_file", pa.string()),  # uri of the WARC file that holds the response record
        pa.field("warc_offset", pa.int64()),  # byte offset of that record in the WARC file
        pa.field("warc_record_id", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("license", pa.string()),  # licence signal: URL of rel=license / Creative Commons link, or null
        pa.field("robots", pa.string()),  # robots.txt decision at fetch time: allowed | unknown (ingested WARC)
        pa.field("robots_meta", pa.string()),  # opt-out directives, comma-separated: noindex,noai,noimageai...
        pa.field("source", pa.string()),  # crawl | warc
        pa.field("title", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("language", pa.string()),  # declared (html lang / Content-Language) until a filter sets it
        pa.field("language_score", pa.float32()),
        pa.field("quality_score", pa.float32()),
    ]
)

REJECTION_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string()),  # null when the record never became a document
        pa.field("url", pa.string()),
        pa.field("stage", pa.string(), nullable=False),  # extract | dedupe | quality | language | pii ...
        pa.field("reason", pa.string(), nullable=False),  # machine-readable, e.g. not_html, near_duplicate_of:<id>
        pa.field("score", pa.float64()),
        pa.field("detail", pa.string()),  # human-readable context (file, offset, exception text)
        # The document's language at the decision: declared (html lang) before the language filter, detected after.
        pa.field("language", pa.string()),
    ]
)


def make_doc_id(url: str, payload_digest: str) -> str:
    """Stable document id: the same URL with the same payload always gets the same id."""
    return hashlib.sha256(f"{url}\n{payload_digest}".encode()).hexdigest()[:24]


def domain_of(url: str) -> str:
    """Lower-cased host of `url` without port or credentials ('' when the URL has none)."""
    return (urlsplit(url).hostname or "").lower()


def rejection(stage: str, reason: str, *, doc_id=None, url=None, score=None, detail=None, language=None) -> dict:
    """One row of REJECTION_SCHEMA as a dict."""
    return {
        "doc_id": doc_id,
        "url": url,
        "stage": stage,
        "reason": reason,
        "score": score,
        "detail": detail,
        "language": language,
    }
