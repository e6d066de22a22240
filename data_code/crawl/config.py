"""CrawlConfig: every knob of one crawl, with documented defaults and validation that names the bad field."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path

from data_code.crawl.urls import InvalidUrlError, host_of, normalize_url
from data_code.crawl.validation import check_field_types, check_header_value

DEFAULT_USER_AGENT = "lmforge/0.1 (+https://lmforge.dev/bot)"
# fsspec schemes a named source may use besides http(s) ("file" = local paths); http(s) is always guarded.
DEFAULT_SOURCE_SCHEMES = ("file", "s3", "gs")
HTTP_SCHEMES = ("http", "https")
# Fields that change how fast a crawl runs, not which pages it holds: left out of the artifact version.
_SPEED_ONLY = {"versioned": False}


@dataclass(frozen=True)
class CrawlConfig:
    """What to crawl and how politely. Lists given for tuple fields are converted to tuples."""

    seeds: tuple[str, ...] = ()  # start URLs (http/https), crawled at depth 0
    seeds_file: str | None = None  # extra seeds: one URL per line, '#' starts a comment
    allowed_domains: tuple[str, ...] = ()  # hosts to stay on, subdomains included; empty = the seeds' hosts
    max_pages: int = 100  # stop after this many successful fetches
    max_depth: int = 3  # links followed from the seeds at most this many times
    requests_per_second_per_host: float = field(default=2.0, metadata=_SPEED_ONLY)  # Crawl-delay only lowers it
    per_host_concurrency: int = field(default=2, metadata=_SPEED_ONLY)  # simultaneous requests to one host
    concurrency: int = field(default=8, metadata=_SPEED_ONLY)  # simultaneous URLs in flight overall
    user_agent: str = DEFAULT_USER_AGENT  # sent on every request and matched against robots.txt groups
    connect_timeout_s: float = 5.0  # TCP (+TLS) connect, seconds
    read_timeout_s: float = 10.0  # longest silence between two received bytes, seconds
    total_timeout_s: float = 30.0  # one whole request incl. body, seconds: defeats a server that drips bytes
    max_response_bytes: int = 5_000_000  # cap on the body as sent AND after content-decoding, bytes
    max_redirects: int = 5  # redirect hops followed per URL
    max_retries: int = 3  # extra attempts after a 5xx or 429
    backoff_base_s: float = 0.5  # retry n waits backoff_base_s * 2**(n-1) unless Retry-After says otherwise
    max_retry_after_s: float = 60.0  # longest Retry-After (or backoff) honoured, seconds
    allow_private_hosts: tuple[str, ...] = ()  # hostnames, IPs or CIDRs exempt from the address-safety check
    warc_max_bytes: int = 1_000_000_000  # start a new WARC file once the current one passes this size
    warc_sources: tuple[str, ...] = ()  # existing WARC files (paths or fsspec URLs) to ingest beside the crawl
    source_schemes: tuple[str, ...] = field(
        default=DEFAULT_SOURCE_SCHEMES,
        metadata={
            "versioned": False,  # which schemes may be read, not what they hold
            "help": "fsspec schemes warc_sources may use besides http(s) ('file' = local paths)",
        },
    )
    ca_bundle: str | None = None  # PEM file of CAs to trust for https instead of the bundled set (certifi)

    def __post_init__(self):
        _coerce_tuples(self, ("seeds", "allowed_domains", "allow_private_hosts", "warc_sources", "source_schemes"))
        object.__setattr__(self, "allowed_domains", tuple(_clean_domain(d) for d in self.allowed_domains))
        if not self.seeds and not self.seeds_file and not self.warc_sources:
            raise ValueError("seeds: give at least one seed URL, a seeds_file or warc_sources")
        for seed in self.seeds:
            _check_seed(seed, "seeds")
        check_field_types(self)
        _check_minimums(self, {**_CRAWL_MINIMUMS, **_TRANSFER_MINIMUMS})
        _check_positive(self, ("requests_per_second_per_host", *_TIMEOUTS))
        _check_transfer_strings(self)
        object.__setattr__(self, "source_schemes", _clean_schemes(self.source_schemes, "source_schemes"))

    @property
    def crawls(self) -> bool:
        """True when there is anything to crawl (seeds or a seeds_file), as opposed to WARC ingest only."""
        return bool(self.seeds or self.seeds_file)

    def load_seeds(self) -> tuple[str, ...]:
        """Seeds from `seeds` then `seeds_file`, normalized and deduplicated, in order.

        Raises FileNotFoundError naming a missing seeds_file and ValueError naming a malformed line.
        """
        seeds = list(self.seeds)
        if self.seeds_file:
            seeds += _read_seeds_file(self.seeds_file)
        result = tuple(dict.fromkeys(normalize_url(seed) for seed in seeds))
        if not result:
            raise ValueError(f"seeds: no seed URL in seeds or in seeds_file {self.seeds_file!r}")
        return result

    def crawl_domains(self, seeds: tuple[str, ...]) -> tuple[str, ...]:
        """allowed_domains, or the hosts of `seeds` when none are configured."""
        return self.allowed_domains or tuple(dict.fromkeys(host_of(seed) for seed in seeds))

    def as_dict(self) -> dict:
        """Plain dict of every field (for manifests and MLflow params)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def source_policy(self) -> SourcePolicy:
        """How warc_sources are read: this crawl's schemes, address allow-list, user agent, timeouts and retries;
        the size and total-time caps of a download stay SourcePolicy's (a WARC file is far larger than a page)."""
        shared = {name: getattr(self, name) for name in _SHARED_WITH_SOURCES}
        return SourcePolicy(schemes=self.source_schemes, **shared)


@dataclass(frozen=True)
class SourcePolicy:
    """How a file someone names (a WARC source, an instruction dataset) may be read: which fsspec schemes, and
    for http(s) URLs the crawler's guard (address policy, checked redirects, size and time caps)."""

    schemes: tuple[str, ...] = DEFAULT_SOURCE_SCHEMES  # fsspec schemes allowed besides http(s); "file" = local paths
    allow_private_hosts: tuple[str, ...] = ()  # hostnames, IPs or CIDRs exempt from the address-safety check
    user_agent: str = DEFAULT_USER_AGENT  # sent on every download request
    connect_timeout_s: float = 10.0  # TCP (+TLS) connect, seconds
    read_timeout_s: float = 60.0  # longest silence between two received bytes, seconds
    total_timeout_s: float = 3600.0  # one whole download incl. body, seconds
    max_response_bytes: int = 20_000_000_000  # cap on a downloaded file as sent AND after content-decoding, bytes
    max_redirects: int = 5  # redirect hops followed, each checked like the first URL
    max_retries: int = 3  # extra attempts after a 5xx or 429
    backoff_base_s: float = 0.5  # retry n waits backoff_base_s * 2**(n-1) unless Retry-After says otherwise
    max_retry_after_s: float = 60.0  # longest Retry-After (or backoff) honoured, seconds
    ca_bundle: str | None = None  # PEM file of CAs to trust for https instead of the bundled set (certifi)

    def __post_init__(self):
        _coerce_tuples(self, ("schemes", "allow_private_hosts"))
        check_field_types(self)
        _check_minimums(self, _TRANSFER_MINIMUMS)
        _check_positive(self, _TIMEOUTS)
        _check_transfer_strings(self)
        object.__setattr__(self, "schemes", _clean_schemes(self.schemes, "schemes"))

    @property
    def concurrency(self) -> int:
        """Simultaneous requests of one download: one (make_client sizes its connection pool by this)."""
        return 1


_TIMEOUTS = ("connect_timeout_s", "read_timeout_s", "total_timeout_s")
_CRAWL_MINIMUMS = {"max_pages": 1, "max_depth": 0, "per_host_concurrency": 1, "concurrency": 1, "warc_max_bytes": 1}
_TRANSFER_MINIMUMS = {
    "max_response_bytes": 1,
    "max_redirects": 0,
    "max_retries": 0,
    "backoff_base_s": 0,
    "max_retry_after_s": 0,
}
# CrawlConfig fields its warc_sources' SourcePolicy takes over as they are.
_SHARED_WITH_SOURCES = (
    "allow_private_hosts",
    "user_agent",
    "connect_timeout_s",
    "read_timeout_s",
    "max_redirects",
    "max_retries",
    "backoff_base_s",
    "max_retry_after_s",
    "ca_bundle",
)


def _coerce_tuples(config, names: tuple[str, ...]) -> None:
    """Lists given for tuple fields become tuples; a bare string (a list of characters) is refused."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, str):
            raise ValueError(f"{name}: expected a list of strings, got the string {value!r}")
        object.__setattr__(config, name, tuple(value))


def _check_minimums(config, minimums: dict[str, int]) -> None:
    for name, minimum in minimums.items():
        if getattr(config, name) < minimum:
            raise ValueError(f"{name}: must be >= {minimum}, got {getattr(config, name)!r}")


def _check_positive(config, names: tuple[str, ...]) -> None:
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{name}: must be > 0, got {getattr(config, name)!r}")


def _check_transfer_strings(config) -> None:
    """user_agent (sent as a header), allow_private_hosts and ca_bundle: fields CrawlConfig and SourcePolicy share."""
    check_header_value("user_agent", config.user_agent)
    if not config.user_agent.strip():
        raise ValueError("user_agent: must not be empty")
    for entry in config.allow_private_hosts:
        _check_allow_entry(entry)
    if config.ca_bundle is not None and not Path(config.ca_bundle).is_file():
        raise ValueError(f"ca_bundle: no such file {config.ca_bundle!r}")


def _clean_schemes(schemes: tuple[str, ...], name: str) -> tuple[str, ...]:
    """Lower-cased scheme names; http(s) is refused here, as it is never read without the address guard."""
    cleaned = tuple(scheme.strip().lower() for scheme in schemes)
    for scheme in cleaned:
        if not scheme.isascii() or not scheme.replace("-", "").replace("+", "").replace(".", "").isalnum():
            raise ValueError(f"{name}: {scheme!r:.40} is not a URL scheme")
        if scheme in HTTP_SCHEMES:
            raise ValueError(f"{name}: http(s) always goes through the address guard; list only other schemes")
    return cleaned


def _check_seed(url: str, where: str) -> None:
    try:
        normalize_url(url)
    except InvalidUrlError as error:
        raise ValueError(f"{where}: malformed URL {url!r}: {error}") from error


def _clean_domain(domain: str) -> str:
    cleaned = domain.strip().lower().lstrip(".").rstrip(".")
    has_port = ":" in cleaned and not _is_ip(cleaned)
    if not cleaned or "/" in cleaned or has_port:
        raise ValueError(f"allowed_domains: {domain!r} is not a host name (no scheme, port or path)")
    return cleaned.strip("[]")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def _check_allow_entry(entry: str) -> None:
    text = entry.strip().strip("[]")
    if not text or " " in text:
        raise ValueError(f"allow_private_hosts: {entry!r} is not a hostname, IP or CIDR")
    if "/" in text:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError as error:
            raise ValueError(f"allow_private_hosts: {entry!r} is not a valid CIDR: {error}") from error


def _read_seeds_file(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"seeds_file not found: {path}")
    seeds = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        url = line.split("#", 1)[0].strip()
        if url:
            _check_seed(url, f"seeds_file {path} line {number}")
            seeds.append(url)
    return seeds
