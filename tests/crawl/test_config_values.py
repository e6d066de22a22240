"""Config values that slip past range checks: NaN and infinity, non-integers, header injection, scheme lists;
and the address ranges the crawler and every guarded fetch refuse."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest

from data_code.crawl import CrawlConfig
from data_code.crawl.config import SourcePolicy
from data_code.crawl.safety import AddressPolicy, is_blocked_ip
from tests.crawl.helpers import run_crawl

SEED = {"seeds": ("http://example.com/",)}
CONFIGS = [(CrawlConfig, SEED), (SourcePolicy, {})]


def _fields_of_type(config_type, kind) -> list[str]:
    hints = typing.get_type_hints(config_type)
    return [field.name for field in dataclasses.fields(config_type) if hints[field.name] is kind]


FLOAT_CASES = [(cls, base, name) for cls, base in CONFIGS for name in _fields_of_type(cls, float)]
INT_CASES = [(cls, base, name) for cls, base in CONFIGS for name in _fields_of_type(cls, int)]


def test_the_float_fields_named_in_the_issue_are_all_covered():
    floats = set(_fields_of_type(CrawlConfig, float))
    assert {"backoff_base_s", "max_retry_after_s", "requests_per_second_per_host", "total_timeout_s"} <= floats
    assert {"backoff_base_s", "max_retry_after_s", "connect_timeout_s"} <= set(_fields_of_type(SourcePolicy, float))
    assert {"max_pages", "max_depth", "concurrency", "max_response_bytes"} <= set(_fields_of_type(CrawlConfig, int))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("config_type", "base", "name"), FLOAT_CASES)
def test_every_float_field_rejects_nan_and_infinity(config_type, base, name, value):
    with pytest.raises(ValueError, match=f"^{name}: must be a finite number, got {value!r}"):
        config_type(**base, **{name: value})


@pytest.mark.parametrize("value", [math.nan, 3.0, "5", True, None])
@pytest.mark.parametrize(("config_type", "base", "name"), INT_CASES)
def test_every_int_field_rejects_non_integers(config_type, base, name, value):
    with pytest.raises(ValueError, match=f"^{name}: must be an integer"):
        config_type(**base, **{name: value})


def test_max_pages_nan_is_refused_however_the_config_is_made():
    # A NaN passes `< 1`, and the crawl's page budget would then never be reached: the crawl would not end.
    with pytest.raises(ValueError, match="^max_pages: must be an integer, got nan"):
        CrawlConfig(**SEED, max_pages=math.nan)
    with pytest.raises(ValueError, match="^max_pages: "):
        dataclasses.replace(CrawlConfig(**SEED), max_pages=float("nan"))


@pytest.mark.parametrize("value", ["lmforge\r\nX-Injected: 1", "lmforge\n", "lm\x00forge", "lmforge\x7f", "lmförge"])
@pytest.mark.parametrize(("config_type", "base"), CONFIGS)
def test_user_agent_rejects_what_cannot_be_sent_as_a_header(config_type, base, value):
    with pytest.raises(ValueError, match="^user_agent: must not contain"):
        config_type(**base, user_agent=value)


def test_a_plain_user_agent_with_a_tab_is_fine():
    assert CrawlConfig(**SEED, user_agent="lmforge/1.0\t(+https://lmforge.dev)").user_agent.startswith("lmforge")


@pytest.mark.parametrize(
    ("schemes", "message"),
    [
        (("https",), "always goes through the address guard"),
        (("ftp site",), "is not a URL scheme"),
        ("file", "expected a list of strings"),
    ],
)
def test_scheme_lists_are_checked(schemes, message):
    with pytest.raises(ValueError, match=f"^source_schemes: .*{message}"):
        CrawlConfig(**SEED, source_schemes=schemes)
    with pytest.raises(ValueError, match=f"^schemes: .*{message}"):
        SourcePolicy(schemes=schemes)


def test_a_valid_config_is_strict_json():
    for config in (CrawlConfig(**SEED), SourcePolicy()):
        values = dataclasses.asdict(config)
        assert json.loads(json.dumps(values, allow_nan=False)) == json.loads(json.dumps(values))


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local: is_global says True on Python 3.11
        "fec0:ffff::1",
        "3fff::1",  # IPv6 documentation (2024)
        "2001:db8::1",
        "100::1",  # discard-only
        "2001:2::1",  # benchmarking
        "5f00::1",  # segment routing
        "ff02::1",  # multicast
        "192.0.0.9",
        "192.88.99.1",  # deprecated 6to4 relay anycast
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "240.0.0.1",
        "::ffff:10.0.0.1",  # IPv4-mapped forms of blocked addresses
        "::ffff:192.168.1.1",
        "::ffff:100.64.0.1",
        "::ffff:192.0.0.9",
        "::ffff:0:127.0.0.1",  # IPv4-translated
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:c0a8:0101::1",  # 6to4 wrapping 192.168.1.1
    ],
)
def test_non_global_addresses_are_blocked(address):
    assert is_blocked_ip(address)
    assert not AddressPolicy().is_allowed("example.com", address)


def test_an_allow_listed_ipv4_address_does_not_allow_its_neighbours_in_mapped_form():
    policy = AddressPolicy(("127.0.0.1",))
    assert policy.is_allowed("127.0.0.1", "127.0.0.1")
    assert not policy.is_allowed("x", "::ffff:127.0.0.2") and not policy.is_allowed("x", "127.0.0.2")


def test_the_crawler_refuses_a_site_local_seed_without_connecting(tmp_path):
    summary, rows = run_crawl(CrawlConfig(seeds=("http://[fec0::1]/",)), tmp_path)
    assert rows["http://[fec0::1]/"]["outcome"] == "blocked_address" and rows["http://[fec0::1]/"]["attempts"] == 0
    assert summary.failures_by_reason == {"blocked_address": 1}
