"""URL normalization and domain scoping, so the same page is fetched once and the crawl stays on its domains."""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left as they are when re-quoting: RFC 3986 reserved + unreserved, and '%' so escapes survive.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


class InvalidUrlError(ValueError):
    """A URL that cannot be fetched: not http(s), no host, a bad port or an unencodable host."""


def normalize_url(url: str, base: str | None = None) -> str:
    """Canonical form of `url` (resolved against `base` when given).

    Lower-cases scheme and host, IDNA-encodes the host, drops the default port, credentials, the fragment and an
    empty '?', resolves dot segments and percent-encodes unsafe characters. The query keeps its order.
    Raises InvalidUrlError naming the URL.
    """
    text = url.strip()
    try:
        if base:
            text = urljoin(base, text)
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:  # bad IPv6 literal, non-numeric or out-of-range port
        raise InvalidUrlError(f"invalid URL {url!r}: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrlError(f"invalid URL {url!r}: scheme must be http or https")
    host = _normalize_host(url, parts.hostname or "")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = quote(remove_dot_segments(parts.path or "/"), safe=_SAFE_PATH)
    query = quote(parts.query, safe=_SAFE_QUERY)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalize_host(url: str, host: str) -> str:
    host = host.rstrip(".").lower()
    if not host:
        raise InvalidUrlError(f"invalid URL {url!r}: no host")
    if any(character in host for character in " \t\r\n/\\@"):
        raise InvalidUrlError(f"invalid URL {url!r}: bad character in host")
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as error:
        raise InvalidUrlError(f"invalid URL {url!r}: host is not valid IDNA: {error}") from error


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: resolve '.' and '..' segments ('/a/./b/../c' -> '/a/c')."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = path.endswith(("/.", "/..")) and bool(output)
    return "/" + "/".join(output) + ("/" if trailing else "")


def host_of(url: str) -> str:
    """Host of a normalized URL, without brackets or port."""
    return urlsplit(url).hostname or ""


def origin_of(url: str) -> str:
    """scheme://host[:port] of a normalized URL: the scope of one robots.txt."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def in_domains(host: str, domains: tuple[str, ...]) -> bool:
    """True when `host` is one of `domains` or a subdomain of one ('docs.example.com' is in 'example.com')."""
    return any(host == domain or host.endswith("." + domain) for domain in domains)
