"""Per-host politeness: a cap on simultaneous requests and a minimum interval between request starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _HostState:
    semaphore: asyncio.Semaphore
    interval_s: float  # minimum seconds between two request starts
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_start: float = 0.0  # time.monotonic() before which no request may start


class HostThrottle:
    """Limits each host to `per_host_concurrency` requests at once and `requests_per_second` starts per second."""

    def __init__(self, requests_per_second: float, per_host_concurrency: int):
        self._interval_s = 1.0 / requests_per_second
        self._concurrency = per_host_concurrency
        self._hosts: dict[str, _HostState] = {}

    def _state(self, host: str) -> _HostState:
        if host not in self._hosts:
            self._hosts[host] = _HostState(asyncio.Semaphore(self._concurrency), self._interval_s)
        return self._hosts[host]

    def slow_down(self, host: str, interval_s: float) -> None:
        """Raise the host's interval (robots.txt Crawl-delay / Request-rate); never speeds it up."""
        state = self._state(host)
        state.interval_s = max(state.interval_s, interval_s)

    def pause(self, host: str, seconds: float) -> None:
        """Start no request to `host` for `seconds` (a 429 Retry-After applies to the whole host)."""
        state = self._state(host)
        state.next_start = max(state.next_start, time.monotonic() + seconds)

    def interval_s(self, host: str) -> float:
        """Current minimum interval between request starts to `host`, seconds."""
        return self._state(host).interval_s

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Wait for a free concurrency slot and the host's next start time, then hold the slot."""
        state = self._state(host)
        async with state.semaphore:
            async with state.lock:  # serializes start times so the interval holds across concurrent requests
                now = time.monotonic()
                start = max(now, state.next_start)
                if start > now:
                    await asyncio.sleep(start - now)
                state.next_start = start + state.interval_s
            yield
