"""The one failure type of a fetch: a reason slug (recorded in the fetch log) and human detail."""

from __future__ import annotations

# Every outcome a fetch log row can have besides "ok"; each is documented in data_code/crawl/__init__.py.
FAILURE_REASONS = (
    "connect_error",
    "connection_reset",
    "timeout",
    "http_error",
    "server_error",
    "rate_limited",
    "too_many_redirects",
    "redirect_loop",
    "blocked_address",
    "disallowed_by_robots",
    "robots_unavailable",
    "too_large",
    "decompression_bomb",
    "content_decoding_error",
    "unsupported_content_type",
    "binary_content",
    "off_domain",
    "invalid_url",
    "corrupt_warc",
    "internal_error",
)


class FetchFailure(Exception):
    """A URL could not be fetched, for `reason` (one of FAILURE_REASONS)."""

    def __init__(self, reason: str, detail: str, http_status: int | None = None):
        assert reason in FAILURE_REASONS, f"unknown failure reason {reason!r}"
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.http_status = reason, detail, http_status
