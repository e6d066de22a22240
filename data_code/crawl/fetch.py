"""One HTTP hop: resolve and check the address, connect to that pinned IP, stream the body under caps, retry;
and the redirect loop around it, which checks every hop like a new URL (the crawler adds domain and robots
checks per hop, a guarded download only the address policy).
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from data_code.crawl.body import (
    ACCEPT_ENCODING,
    TEXT_CONTENT_TYPES,
    CappedDecoder,
    CorruptEncodingError,
    DecodeLimitError,
    UnsupportedEncodingError,
    binary_reason,
    media_type,
)
from data_code.crawl.config import CrawlConfig, SourcePolicy
from data_code.crawl.errors import FetchFailure
from data_code.crawl.safety import AddressPolicy, BlockedAddressError, ResolutionError
from data_code.crawl.throttle import HostThrottle
from data_code.crawl.urls import InvalidUrlError, normalize_url
from data_code.files import excerpt

ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1"
# Hop-by-hop framing that httpx has already undone: stored bodies are de-chunked, so the header must go.
_DROP_FROM_WARC = {"transfer-encoding"}
# The timeouts, caps, retries, user agent and address allow-list of a crawl or of a guarded download.
FetchSettings = CrawlConfig | SourcePolicy


@dataclass
class Trace:
    """What the fetch of one URL went through, across retries and redirect hops (filled in as it happens)."""

    attempts: int = 0  # HTTP requests sent for the URL, robots.txt excluded
    ip: str | None = None  # the address last connected to
    http_status: int | None = None  # status of the last response
    redirects: list[str] = field(default_factory=list)  # each Location followed, in order


@dataclass
class Exchange:
    """One HTTP request and its response."""

    url: str
    ip: str
    status: int
    reason: str
    headers: list[tuple[str, str]]  # response headers as received, minus Transfer-Encoding
    request_headers: list[tuple[str, str]]
    body: bytes = b""  # as sent on the wire (content-encoding kept), what the WARC stores
    decoded: bytes = b""  # content-decoded body
    # When the capture began (this attempt's request was sent), as WARC-Date means it, not when the answer ended.
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def header(self, name: str) -> str | None:
        """First response header called `name` (case-insensitive), or None."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


def make_client(config: FetchSettings) -> httpx.AsyncClient:
    """An AsyncClient that never follows redirects, reads no proxy settings from the environment and times out."""
    timeout = httpx.Timeout(
        connect=config.connect_timeout_s,
        read=config.read_timeout_s,
        write=config.read_timeout_s,
        pool=config.total_timeout_s,
    )
    limits = httpx.Limits(max_connections=config.concurrency * 2, max_keepalive_connections=config.concurrency)
    verify = ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else True
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, trust_env=False, verify=verify)


class Fetcher:
    """Fetches single URLs politely and safely; raises FetchFailure with a reason slug on any failure."""

    def __init__(self, config: FetchSettings, client: httpx.AsyncClient, throttle: HostThrottle):
        self.config = config
        self.client = client
        self.throttle = throttle
        self.policy = AddressPolicy(config.allow_private_hosts)
        # httpx pools connections by (scheme, IP, port). For TLS that would let two virtual hosts on one IP share a
        # connection negotiated with the other's SNI and certificate, so https gets one client (pool) per host.
        self._tls_clients: dict[str, httpx.AsyncClient] = {}

    def _client_for(self, scheme: str, host: str) -> httpx.AsyncClient:
        if scheme != "https":
            return self.client
        if host not in self._tls_clients:
            self._tls_clients[host] = make_client(self.config)
        return self._tls_clients[host]

    async def aclose(self) -> None:
        """Close the per-host TLS clients (the shared client belongs to the caller)."""
        for client in self._tls_clients.values():
            await client.aclose()
        self._tls_clients.clear()

    async def fetch(
        self, url: str, trace: Trace, *, any_content_type: bool = False, into: BinaryIO | None = None
    ) -> Exchange:
        """GET a normalized `url` (no redirect following), retrying 5xx and 429 with backoff.

        A 3xx comes back as an Exchange with an empty body; the caller decides whether to follow it. With `into`,
        the body is a file being downloaded: any content type, streamed content-decoded into `into` (not kept).
        """
        parts = urlsplit(url)
        addresses = await self.resolve(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        for attempt in range(1, self.config.max_retries + 2):
            trace.attempts += 1
            async with self.throttle.slot(parts.hostname or ""):
                exchange = await self._attempt_each(url, addresses, trace, _Body(any_content_type, into))
            trace.http_status = exchange.status
            if exchange.status != 429 and exchange.status < 500:
                return exchange
            if attempt <= self.config.max_retries:
                await self._wait_before_retry(exchange, attempt, parts.hostname or "")
        slug = "rate_limited" if exchange.status == 429 else "server_error"
        detail = f"HTTP {exchange.status} {_reason(exchange)} after {self.config.max_retries + 1} attempts"
        raise FetchFailure(slug, detail, exchange.status)

    async def fetch_with_redirects(
        self, url: str, trace: Trace, *, before_hop: HopCheck | None = None, into: BinaryIO | None = None
    ) -> Exchange:
        """Fetch `url`, following up to max_redirects hops; every hop is checked like a new URL: by `before_hop`
        (if given) and then by fetch() itself, which resolves and checks the address before connecting.

        Raises FetchFailure: invalid_url (a bad Location), redirect_loop, too_many_redirects, or fetch()'s own.
        """
        current, chain = url, [url]
        while True:
            if before_hop is not None:
                await before_hop(current)
            exchange = await self.fetch(current, trace, into=into)
            location = exchange.header("location") if 300 <= exchange.status < 400 else None
            if location is None:
                return exchange
            try:
                target = normalize_url(location, base=current)
            except InvalidUrlError as error:
                detail = f"redirect Location {excerpt(location)} is not a fetchable http(s) URL"
                raise FetchFailure("invalid_url", detail, exchange.status) from error
            if target in chain:
                raise FetchFailure("redirect_loop", " -> ".join([*chain, target]), exchange.status)
            if len(trace.redirects) >= self.config.max_redirects:
                detail = f"more than max_redirects={self.config.max_redirects}: " + " -> ".join(chain)
                raise FetchFailure("too_many_redirects", detail, exchange.status)
            trace.redirects.append(target)
            chain.append(target)
            current = target

    async def resolve(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for `host` (raises blocked_address / connect_error)."""
        try:
            return await self.policy.resolve(host, port)
        except BlockedAddressError as error:
            raise FetchFailure("blocked_address", str(error)) from error
        except ResolutionError as error:
            raise FetchFailure("connect_error", str(error)) from error

    async def _wait_before_retry(self, exchange: Exchange, attempt: int, host: str) -> None:
        retry_after = retry_after_seconds(exchange.header("retry-after"))
        backoff = self.config.backoff_base_s * 2 ** (attempt - 1)
        delay = min(retry_after if retry_after is not None else backoff, self.config.max_retry_after_s)
        if exchange.status == 429:
            self.throttle.pause(host, delay)  # the host asked everyone to slow down, not just this URL
        await asyncio.sleep(delay)

    async def _attempt_each(self, url: str, addresses: list[str], trace: Trace, body: _Body) -> Exchange:
        """Try the (already checked) addresses in turn until one accepts the connection (e.g. ::1 then 127.0.0.1)."""
        for index, ip in enumerate(addresses):
            trace.ip = ip
            try:
                return await self._attempt(url, ip, body)
            except FetchFailure as failure:
                if failure.reason != "connect_error" or index == len(addresses) - 1:
                    raise
        raise AssertionError("unreachable: addresses is never empty")

    async def _attempt(self, url: str, ip: str, body: _Body) -> Exchange:
        parts = urlsplit(url)
        request_headers = [
            ("Host", parts.netloc),
            ("User-Agent", self.config.user_agent),
            ("Accept", ACCEPT),
            ("Accept-Encoding", ACCEPT_ENCODING),
        ]
        address = f"[{ip}]" if ":" in ip else ip
        port = parts.port or (443 if parts.scheme == "https" else 80)
        pinned = f"{parts.scheme}://{address}:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        # Connect to the checked IP; Host and TLS SNI still name the real host.
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        client = self._client_for(parts.scheme, parts.hostname or "")
        request = client.build_request("GET", pinned, headers=request_headers, extensions=extensions)
        started = datetime.now(UTC)
        try:
            async with asyncio.timeout(self.config.total_timeout_s):
                response = await client.send(request, stream=True)
                try:
                    return await self._read(url, ip, response, request_headers, body, started)
                finally:
                    await response.aclose()
        except TimeoutError as error:
            raise FetchFailure("timeout", f"no complete response within {self.config.total_timeout_s} s") from error
        except httpx.TimeoutException as error:
            raise FetchFailure("timeout", self._timeout_detail(error)) from error
        except httpx.RemoteProtocolError as error:
            # httpx pre-parses Location even when not following redirects, and rejects a malformed one here.
            reason = "invalid_url" if "location header" in str(error).lower() else "connection_reset"
            raise FetchFailure(reason, f"{type(error).__name__}: {error}") from error
        except (httpx.ReadError, httpx.WriteError) as error:
            raise FetchFailure("connection_reset", f"{type(error).__name__}: {error}") from error
        except httpx.HTTPError as error:  # ConnectError and any other transport failure
            raise FetchFailure("connect_error", f"{type(error).__name__}: {error}") from error

    def _timeout_detail(self, error: httpx.TimeoutException) -> str:
        if isinstance(error, httpx.ConnectTimeout):
            return f"ConnectTimeout: no connection within connect_timeout_s={self.config.connect_timeout_s}"
        if isinstance(error, httpx.ReadTimeout):
            return f"ReadTimeout: no data for read_timeout_s={self.config.read_timeout_s}"
        return f"{type(error).__name__}: {error}"

    async def _read(self, url, ip, response: httpx.Response, request_headers, body: _Body, started) -> Exchange:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        exchange = Exchange(
            url=url,
            ip=ip,
            status=response.status_code,
            reason=response.reason_phrase,
            headers=[(k, v) for k, v in headers if k.lower() not in _DROP_FROM_WARC],
            request_headers=request_headers,
            fetched_at=started,
        )
        status = response.status_code
        if 300 <= status < 400 and exchange.header("location"):
            return exchange
        if status == 429 or status >= 500:
            return exchange
        if status >= 300:
            raise FetchFailure("http_error", f"HTTP {status} {_reason(exchange)}", status)
        if not body.any_content_type:
            _check_content_type(exchange.header("content-type"), status)
        _check_declared_length(exchange.header("content-length"), self.config.max_response_bytes, status)
        exchange.body, exchange.decoded = await self._read_body(response, exchange.header("content-encoding"), body)
        reason = None if body.any_content_type else binary_reason(exchange.decoded)
        if reason:
            detail = f"served as {excerpt(exchange.header('content-type') or '')} but {reason}"
            raise FetchFailure("binary_content", detail, status)
        return exchange

    async def _read_body(self, response: httpx.Response, content_encoding: str | None, body: _Body):
        """(body as sent, content-decoded body); with body.into, both stay empty and the decoded bytes go there."""
        cap = self.config.max_response_bytes
        status = response.status_code
        try:
            decoder = CappedDecoder(content_encoding, cap, sink=body.into.write if body.into else None)
        except UnsupportedEncodingError as error:
            raise FetchFailure("unsupported_content_type", str(error), status) from error
        raw, size = bytearray(), 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise FetchFailure("too_large", f"body exceeds max_response_bytes={cap}", status)
            if body.into is None:
                raw += chunk
            _decode_step(decoder, chunk, size, content_encoding, status)
        return bytes(raw), _decode_step(decoder, None, size, content_encoding, status)


@dataclass(frozen=True)
class _Body:
    """What to do with a response body: check that it is text (a page), or stream it into a file (a download)."""

    any_content_type: bool = False  # skip the text content-type and binary checks (robots.txt, downloads)
    into: BinaryIO | None = None  # a download: decoded bytes go here, none are kept in memory

    def __post_init__(self):
        if self.into is not None:
            object.__setattr__(self, "any_content_type", True)


# Checks one hop of a redirect chain before it is fetched; raises FetchFailure to refuse it.
HopCheck = Callable[[str], Awaitable[None]]


def _reason(exchange: Exchange) -> str:
    """The server's reason phrase, as an excerpt when it is long or odd (it is the server's text, not ours)."""
    reason = exchange.reason
    return reason if len(reason) <= 40 and reason.isascii() and reason.isprintable() else excerpt(reason, 40)


def _decode_step(decoder: CappedDecoder, chunk: bytes | None, raw_size: int, encoding: str | None, status: int):
    """Feed `chunk` to the decoder (or finish it when None), turning its errors into failure slugs."""
    try:
        return decoder.feed(chunk) if chunk is not None else decoder.finish()
    except DecodeLimitError as error:
        detail = f"{raw_size} bytes sent decode to more than max_response_bytes={decoder.cap}"
        raise FetchFailure("decompression_bomb", detail, status) from error
    except CorruptEncodingError as error:
        raise FetchFailure("content_decoding_error", f"Content-Encoding {encoding}: {error}", status) from error


def _check_content_type(content_type: str | None, status: int) -> None:
    kind = media_type(content_type)
    if kind and kind not in TEXT_CONTENT_TYPES:
        raise FetchFailure("unsupported_content_type", f"Content-Type {excerpt(content_type)} is not text", status)


def _check_declared_length(content_length: str | None, cap: int, status: int) -> None:
    if content_length and content_length.strip().isdigit() and int(content_length) > cap:
        detail = f"Content-Length {int(content_length)} exceeds max_response_bytes={cap}"
        raise FetchFailure("too_large", detail, status)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
