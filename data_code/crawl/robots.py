"""robots.txt per origin (RFC 9309), fetched once and cached, including Crawl-delay and Request-rate."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protego import Protego

from data_code.crawl.errors import FetchFailure

# RFC 9309 asks parsers to read at least 500 KiB; more than that is ignored.
MAX_ROBOTS_BYTES = 512_000
# A Crawl-delay above this (seconds) is capped, so one robots.txt cannot stall the crawl for hours.
MAX_CRAWL_DELAY_S = 60.0
NETWORK_FAILURES = ("connect_error", "connection_reset", "timeout", "blocked_address")

RobotsFetch = Callable[[str], Awaitable[tuple[int, bytes]]]


@dataclass
class RobotsRules:
    """What one origin's robots.txt allows."""

    status: str  # parsed | missing (4xx: allow all) | unavailable (5xx: disallow all) | unreachable
    parser: Protego | None = None
    failure: FetchFailure | None = None  # why robots.txt could not be fetched (unavailable / unreachable)

    def decide(self, url: str, user_agent: str) -> str:
        """allowed | disallowed | unavailable | unreachable for `url`."""
        if self.status == "missing":
            return "allowed"
        if self.parser is None:
            return self.status
        return "allowed" if self.parser.can_fetch(url, user_agent) else "disallowed"

    def delay_s(self, user_agent: str) -> float | None:
        """Seconds to wait between requests, from Crawl-delay or Request-rate, capped; None when unset."""
        if self.parser is None:
            return None
        delays = [self.parser.crawl_delay(user_agent)]
        rate = self.parser.request_rate(user_agent)
        if rate is not None and rate.requests:
            delays.append(rate.seconds / rate.requests)
        delays = [float(delay) for delay in delays if delay]
        return min(max(delays), MAX_CRAWL_DELAY_S) if delays else None


class RobotsCache:
    """Fetches each origin's robots.txt at most once, even when many URLs of it are in flight."""

    def __init__(self, fetch: RobotsFetch, user_agent: str):
        self._fetch = fetch
        self._user_agent = user_agent
        self._rules: dict[str, asyncio.Task[RobotsRules]] = {}

    async def rules(self, origin: str) -> RobotsRules:
        """Rules for `origin` (scheme://host[:port])."""
        if origin not in self._rules:
            self._rules[origin] = asyncio.ensure_future(self._load(origin))
        return await self._rules[origin]

    async def _load(self, origin: str) -> RobotsRules:
        try:
            status, body = await self._fetch(origin + "/robots.txt")
        except FetchFailure as failure:
            if failure.reason in ("http_error", "too_many_redirects", "redirect_loop"):
                return RobotsRules("missing")  # 4xx, or too many redirects: RFC 9309 says "unavailable": allow all
            if failure.reason in ("server_error", "rate_limited"):
                return RobotsRules("unavailable", failure=failure)  # 5xx: RFC 9309 says disallow all
            if failure.reason in NETWORK_FAILURES:
                return RobotsRules("unreachable", failure=failure)
            return RobotsRules("missing")  # e.g. robots.txt too large or not text: no usable rules
        if status >= 400:
            return RobotsRules("missing")
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return RobotsRules("parsed", parser=Protego.parse(text))
