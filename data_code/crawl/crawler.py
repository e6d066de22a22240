"""The crawler: breadth-first from seeds, polite (robots.txt, per-host rate limits), safe (address checks on
every hop) and honest (one fetch-log row per URL attempted, success or failure).

The pages a crawl fetches do not depend on timing: a depth's frontier is its parents' links in the order the
parents were queued (not the order their fetches finished), and URLs are taken from it in that order until
max_pages pages succeeded. A slow or loaded machine therefore fetches the same pages as an idle one.

    from data_code.crawl import CrawlConfig, crawl
    summary = crawl(CrawlConfig(seeds=("https://example.com/",)), out_dir)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path

from data_code.crawl.body import decode_text, media_type
from data_code.crawl.config import CrawlConfig
from data_code.crawl.errors import FetchFailure
from data_code.crawl.fetch import Exchange, Fetcher, Trace, make_client
from data_code.crawl.records import CrawlSummary, FetchRow, WarcSink, summarize, write_fetch_log
from data_code.crawl.robots import RobotsCache
from data_code.crawl.safety import is_ip_literal
from data_code.crawl.throttle import HostThrottle
from data_code.crawl.urls import InvalidUrlError, host_of, in_domains, normalize_url, origin_of
from data_code.signals import PageSignals, page_signals

log = logging.getLogger(__name__)
_HTML_TYPES = ("text/html", "application/xhtml+xml", "")  # "" = no Content-Type: treated as HTML
_NO_FOLLOW = {"nofollow", "none"}


def crawl(config: CrawlConfig, out_dir: Path, *, warc_prefix: str = "crawl") -> CrawlSummary:
    """Crawl from config's seeds into `out_dir` (which must exist): warc/<prefix>-NNNNN.warc.gz + fetches.parquet.

    Every URL attempted gets one fetch-log row, with outcome "ok" or a failure reason; failures never raise.
    Raises ValueError / FileNotFoundError only for bad configuration (seeds), before any request.
    """
    started = time.monotonic()
    rows, warc_files = crawl_rows(config, Path(out_dir), warc_prefix=warc_prefix)
    write_fetch_log(rows, Path(out_dir))
    return summarize(rows, warc_files, time.monotonic() - started)


def crawl_rows(config: CrawlConfig, out_dir: Path, *, warc_prefix: str) -> tuple[list[FetchRow], list[str]]:
    """Crawl into out_dir/warc/ and return (fetch-log rows, WARC files relative to out_dir), writing no log."""
    seeds = config.load_seeds()
    return asyncio.run(_Crawl(config, out_dir, warc_prefix, seeds).run())


class _Crawl:
    """State of one crawl run: the frontier, what was seen, the budget of pages, and the outputs."""

    def __init__(self, config: CrawlConfig, out_dir: Path, warc_prefix: str, seeds: tuple[str, ...]):
        self.config, self.out_dir, self.seeds = config, out_dir, seeds
        self.domains = config.crawl_domains(seeds)
        self.rows: list[FetchRow] = []
        self.seen: set[str] = set(seeds)  # every URL queued, fetched or reached by redirect
        self.pages_ok = 0
        self.in_flight = 0
        self.sink = WarcSink(out_dir, warc_prefix, config.warc_max_bytes)
        self.throttle = HostThrottle(config.requests_per_second_per_host, config.per_host_concurrency)

    async def run(self) -> tuple[list[FetchRow], list[str]]:
        self.budget = asyncio.Condition()
        try:
            async with make_client(self.config) as client:
                self.fetcher = Fetcher(self.config, client, self.throttle)
                self.robots = RobotsCache(self._fetch_robots, self.config.user_agent)
                frontier = list(self.seeds)
                try:
                    for depth in range(self.config.max_depth + 1):
                        if not frontier or self.pages_ok >= self.config.max_pages:
                            break
                        frontier = await self._crawl_level(frontier, depth)
                finally:
                    await self.fetcher.aclose()
        finally:
            self.sink.close()
        return self.rows, self.sink.files

    async def _crawl_level(self, frontier: list[str], depth: int) -> list[str]:
        """Fetch every URL of one depth with `concurrency` workers; return the next depth's URLs, in frontier order
        of the pages that link to them (each URL under its first such page), whatever order the fetches ended in."""
        queue = deque(enumerate(frontier))
        links: dict[int, list[str]] = {}  # frontier position of a fetched page -> the links it lets us follow

        async def worker():
            while queue and await self._reserve_page():
                if not queue:
                    await self._release_page(ok=False)
                    return
                ok = False
                try:
                    position, url = queue.popleft()
                    ok = await self._visit(url, depth, links.setdefault(position, []))
                finally:
                    await self._release_page(ok=ok)

        await asyncio.gather(*(worker() for _ in range(self.config.concurrency)))
        next_frontier: list[str] = []
        for position in sorted(links):
            self._queue_links(links[position], depth + 1, next_frontier)
        return next_frontier

    async def _reserve_page(self) -> bool:
        """Wait until a fetch could still count towards max_pages; False once max_pages pages succeeded."""
        limit = self.config.max_pages
        async with self.budget:
            await self.budget.wait_for(lambda: self.pages_ok >= limit or self.pages_ok + self.in_flight < limit)
            if self.pages_ok >= limit:
                return False
            self.in_flight += 1
            return True

    async def _release_page(self, ok: bool) -> None:
        async with self.budget:
            self.in_flight -= 1
            self.pages_ok += ok
            self.budget.notify_all()

    async def _visit(self, url: str, depth: int, links: list[str]) -> bool:
        """Fetch one URL, store it and collect its links; record its row whatever happens. True when ok."""
        row, trace, started = FetchRow(url=url, depth=depth), Trace(), time.monotonic()
        try:
            exchange = await self.fetcher.fetch_with_redirects(url, trace, before_hop=self._hop_check(row))
            await self._store_page(row, exchange, links)
        except FetchFailure as failure:
            row.outcome, row.detail = failure.reason, failure.detail
            trace.http_status = failure.http_status or trace.http_status
        except Exception as error:  # a bug must not end a long crawl: log it, record it, go on
            log.exception("internal error while crawling %s", url)
            row.outcome, row.detail = "internal_error", f"{type(error).__name__}: {error}"
        row.attempts, row.ip, row.http_status = trace.attempts, trace.ip, trace.http_status
        row.redirects = trace.redirects
        row.final_url = trace.redirects[-1] if trace.redirects else url
        row.elapsed_s = round(time.monotonic() - started, 4)
        self.rows.append(row)
        return row.outcome == "ok"

    def _hop_check(self, row: FetchRow):
        """The check every hop of `row`'s redirect chain passes before it is fetched (a redirect target is seen)."""

        async def check(url: str) -> None:
            self.seen.add(url)
            await self._check_target(url, row)

        return check

    async def _check_target(self, url: str, row: FetchRow) -> None:
        """Raise FetchFailure unless `url` is safe (IP literals), on an allowed domain and allowed by robots.txt."""
        host = host_of(url)
        if is_ip_literal(host) and not self.fetcher.policy.is_allowed(host, host):
            raise FetchFailure("blocked_address", f"{host} is a blocked address (checked before connecting)")
        if not in_domains(host, self.domains):
            raise FetchFailure("off_domain", f"{host} is not within allowed domains {list(self.domains)}")
        rules = await self.robots.rules(origin_of(url))
        row.robots_decision = rules.decide(url, self.config.user_agent)
        if row.robots_decision == "disallowed":
            raise FetchFailure("disallowed_by_robots", f"robots.txt of {origin_of(url)} disallows {url}")
        if rules.failure is not None:  # 5xx (robots_unavailable) or a network failure: RFC 9309 disallows all
            reason = "robots_unavailable" if rules.status == "unavailable" else rules.failure.reason
            raise FetchFailure(reason, f"robots.txt of {origin_of(url)}: {rules.failure.detail}")
        delay = rules.delay_s(self.config.user_agent)
        if delay:
            self.throttle.slow_down(host, delay)

    async def _fetch_robots(self, url: str) -> tuple[int, bytes]:
        """GET a robots.txt, following up to 5 redirects (RFC 9309) with the same address checks."""
        trace, current = Trace(), url
        for _ in range(6):
            exchange = await self.fetcher.fetch(current, trace, any_content_type=True)
            location = exchange.header("location") if 300 <= exchange.status < 400 else None
            if location is None:
                return exchange.status, exchange.decoded
            try:
                current = normalize_url(location, base=current)
            except InvalidUrlError:
                return 404, b""  # nowhere to go: no robots.txt
        raise FetchFailure("too_many_redirects", f"{url}: more than 5 redirects")

    async def _store_page(self, row: FetchRow, exchange: Exchange, links: list[str]) -> None:
        """Write the exchange to the WARC, fill the row, add the links to follow to `links`."""
        content_type = exchange.header("content-type")
        # Parsing a multi-MB page takes a while: do it off the event loop so other fetches keep their timing.
        signals = await asyncio.to_thread(_signals, exchange, content_type)
        robots_meta = ",".join(sorted(signals.robots_meta))
        metadata = {
            "robots": "allowed",
            "robots-meta": robots_meta,
            "license": signals.license or "",
            "depth": str(row.depth),
            "fetch-outcome": "ok",
        }
        row.warc_file, row.warc_offset = self.sink.write(
            exchange.url,
            request_headers=exchange.request_headers,
            status_line=f"{exchange.status} {exchange.reason}".strip(),
            response_headers=exchange.headers,
            body=exchange.body,
            metadata=metadata,
            ip=exchange.ip,
            date=exchange.fetched_at,
        )
        row.content_type, row.fetched_at = content_type, exchange.fetched_at
        row.bytes_raw, row.bytes_decoded = len(exchange.body), len(exchange.decoded)
        row.robots_meta, row.license = robots_meta or None, signals.license
        if row.depth < self.config.max_depth and not signals.robots_meta & _NO_FOLLOW:
            links.extend(signals.links)

    def _queue_links(self, links: list[str], depth: int, next_frontier: list[str]) -> None:
        for link in links:
            try:
                url = normalize_url(link)
            except InvalidUrlError as error:
                if link not in self.seen:
                    self.seen.add(link)
                    self.rows.append(FetchRow(url=link, depth=depth, outcome="invalid_url", detail=str(error)))
                continue
            if url not in self.seen and in_domains(host_of(url), self.domains):
                self.seen.add(url)
                next_frontier.append(url)


def _signals(exchange: Exchange, content_type: str | None) -> PageSignals:
    """Links and opt-out signals of an HTML page (only the X-Robots-Tag header for text/plain)."""
    if media_type(content_type) not in _HTML_TYPES:
        return page_signals("", exchange.url, exchange.header("x-robots-tag"))
    text, _charset = decode_text(exchange.decoded, content_type)
    return page_signals(text, exchange.url, exchange.header("x-robots-tag"))
