"""Reading a file someone names (a WARC source, an instruction dataset): only allowed fsspec schemes, and http(s)
only through the crawler's guard (address policy before every connection, checked redirects, size and time caps).

    from data_code.crawl.remote import local_copy
    with local_copy("https://data.example/cc.warc.gz", SourcePolicy(), field="warc_sources") as path:
        ...  # a local temporary copy; a local path or s3:// URL is handed back as it is
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import fsspec

from data_code.crawl.config import HTTP_SCHEMES, SourcePolicy
from data_code.crawl.errors import FetchFailure
from data_code.crawl.fetch import Fetcher, Trace, make_client
from data_code.crawl.safety import AddressPolicy, BlockedAddressError, ResolutionError
from data_code.crawl.throttle import HostThrottle
from data_code.crawl.urls import InvalidUrlError, normalize_url
from data_code.files import stream_sha256

# fsspec's other names for the default schemes.
_ALIASES = {"local": "file", "gcs": "gs", "s3a": "s3"}
_BLOCKED_HINT = (
    "the address policy refuses loopback, private, link-local and other non-public addresses unless they are"
    " allow-listed (allow_private_hosts; for the assets, $LMFORGE_ALLOW_PRIVATE_HOSTS)"
)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_NOT_FOUND = (404, 410)


class SourceFetchError(OSError):
    """An http(s) source could not be downloaded (network or server trouble); `reason` is a FAILURE_REASONS slug."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def source_scheme(uri: str, policy: SourcePolicy, *, field: str) -> str:
    """The scheme `uri` is read with ("file" for a plain path), once it is known to be allowed.

    Raises ValueError naming the field, the URI and the allowed schemes for any other scheme, and for a chained
    fsspec URL ("simplecache::https://...") that would reach http(s) around the guard.
    """
    parts = [_scheme_of(part) for part in uri.split("::")]
    if len(parts) == 1 and parts[0] in HTTP_SCHEMES:
        return parts[0]
    refused = [scheme for scheme in parts if scheme not in policy.schemes]
    if refused:
        allowed = ", ".join([*HTTP_SCHEMES, *policy.schemes])
        raise ValueError(f"{field}: {uri!r:.200} uses scheme {refused[0]!r:.40}; allowed schemes are {allowed}")
    return parts[0]


def _scheme_of(uri: str) -> str:
    protocol, _path = fsspec.core.split_protocol(uri)
    scheme = (protocol or "file").lower()
    return _ALIASES.get(scheme, scheme)


def check_source(uri: str, policy: SourcePolicy, *, field: str) -> None:
    """Refuse `uri` before any connection is made: a scheme that is not allowed, a malformed http(s) URL, or one
    whose host is (or resolves to) an address the policy blocks. Raises ValueError naming the field and URI."""
    if source_scheme(uri, policy, field=field) in HTTP_SCHEMES:
        parts = urlsplit(_normalized(uri, field))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            asyncio.run(AddressPolicy(policy.allow_private_hosts).resolve(parts.hostname or "", port))
        except BlockedAddressError as error:
            raise ValueError(f"{field}: {uri} refused before connecting: {error}; {_BLOCKED_HINT}") from error
        except ResolutionError as error:
            raise SourceFetchError(f"{field}: {uri}: {error}", "connect_error") from error


def source_exists(uri: str, policy: SourcePolicy, *, field: str) -> bool:
    """Whether the non-http(s) file `uri` exists (http(s) sources are only known once fetched: True)."""
    if source_scheme(uri, policy, field=field) in HTTP_SCHEMES:
        return True
    filesystem, path = fsspec.core.url_to_fs(uri)
    return filesystem.exists(path)


@contextmanager
def local_copy(uri: str, policy: SourcePolicy, *, field: str) -> Iterator[str]:
    """A path or fsspec URI to read `uri` from: `uri` itself for an allowed non-http(s) scheme, else a temporary
    local copy downloaded through the guard (deleted on exit), whose file name keeps the URL's suffixes.

    Raises ValueError (scheme or address refused), FileNotFoundError (HTTP 404/410) or SourceFetchError.
    """
    if source_scheme(uri, policy, field=field) not in HTTP_SCHEMES:
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="lmforge-source-") as directory:
        path = Path(directory) / _local_name(uri)
        with open(path, "wb") as sink:
            download(uri, sink, policy, field=field)
        yield str(path)


def source_sha256(uri: str, policy: SourcePolicy, *, field: str) -> str:
    """sha256 (hex) of the bytes of `uri`, read as local_copy reads them. Raises FileNotFoundError when absent."""
    with local_copy(uri, policy, field=field) as readable:
        try:
            with fsspec.open(readable, "rb") as handle:
                return stream_sha256(handle)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{field}: file not found: {uri}") from error


def download(url: str, sink: BinaryIO, policy: SourcePolicy, *, field: str = "url") -> str:
    """GET the http(s) `url` into `sink` through the guard; return the final URL after redirects.

    Every hop's address is checked before connecting to it; redirects are followed up to policy.max_redirects;
    the body is content-decoded and capped at policy.max_response_bytes. Raises ValueError (address refused,
    bad URL or Location), FileNotFoundError (HTTP 404/410) or SourceFetchError (any other failure).
    """
    normalized = _normalized(url, field)
    trace = Trace()
    try:
        asyncio.run(_download(normalized, sink, policy, trace))
    except FetchFailure as failure:
        raise _fetch_error(url, failure, trace, field) from failure
    return trace.redirects[-1] if trace.redirects else normalized


async def _download(url: str, sink: BinaryIO, policy: SourcePolicy, trace: Trace) -> None:
    async with make_client(policy) as client:
        # One download, one request at a time: no politeness interval to keep.
        fetcher = Fetcher(policy, client, HostThrottle(requests_per_second=1e6, per_host_concurrency=1))
        try:
            await fetcher.fetch_with_redirects(url, trace, into=sink)
        finally:
            await fetcher.aclose()


def _fetch_error(url: str, failure: FetchFailure, trace: Trace, field: str) -> Exception:
    """The exception a failed download raises: what went wrong, for which URL, via which redirects."""
    via = f" (redirected to {' -> '.join(trace.redirects)})" if trace.redirects else ""
    where = f"{field}: {url}{via}"
    if failure.reason == "blocked_address":
        return ValueError(f"{where} refused before connecting: {failure.detail}; {_BLOCKED_HINT}")
    if failure.reason == "invalid_url":
        return ValueError(f"{where}: {failure.detail}")
    if failure.reason == "http_error" and failure.http_status in _NOT_FOUND:
        return FileNotFoundError(f"{where}: file not found ({failure.detail})")
    return SourceFetchError(f"{where}: download failed ({failure.reason}): {failure.detail}", failure.reason)


def _normalized(url: str, field: str) -> str:
    try:
        return normalize_url(url)
    except InvalidUrlError as error:
        raise ValueError(f"{field}: {error}") from error


def _local_name(url: str) -> str:
    """A safe local file name for the download of `url`, keeping its suffixes (.warc.gz, .jsonl, .parquet)."""
    name = _SAFE_NAME.sub("_", PurePosixPath(urlsplit(url).path).name)[-100:].lstrip(".")
    return name or "download"
