"""CrawlConfig validation names the bad field; seeds load from the config and from a file."""

from dataclasses import fields

import pytest

from data_code.crawl import CrawlConfig


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"seeds": ()}, "seeds"),
        ({"seeds": ("not a url",)}, "seeds"),
        ({"seeds": ("ftp://example.com/",)}, "seeds"),
        ({"requests_per_second_per_host": -1.0}, "requests_per_second_per_host"),
        ({"requests_per_second_per_host": 0}, "requests_per_second_per_host"),
        ({"max_pages": 0}, "max_pages"),
        ({"max_depth": -1}, "max_depth"),
        ({"concurrency": 0}, "concurrency"),
        ({"per_host_concurrency": 0}, "per_host_concurrency"),
        ({"read_timeout_s": 0}, "read_timeout_s"),
        ({"total_timeout_s": -5}, "total_timeout_s"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"max_retries": -1}, "max_retries"),
        ({"user_agent": " "}, "user_agent"),
        ({"allowed_domains": ("https://example.com/",)}, "allowed_domains"),
        ({"allow_private_hosts": ("10.0.0.0/99",)}, "allow_private_hosts"),
        ({"seeds": "http://example.com/"}, "seeds"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    settings = {"seeds": ("http://example.com/",), **overrides}
    with pytest.raises(ValueError, match=f"^{field}:"):
        CrawlConfig(**settings)


def test_malformed_seed_is_named():
    with pytest.raises(ValueError, match="'http://exa mple.com/'"):
        CrawlConfig(seeds=("http://example.com/", "http://exa mple.com/"))


def test_defaults_and_list_coercion():
    config = CrawlConfig(seeds=["http://Example.com/"], allowed_domains=[".Example.com"])
    assert config.seeds == ("http://Example.com/",) and config.allowed_domains == ("example.com",)
    assert (config.max_pages, config.max_depth, config.max_response_bytes) == (100, 3, 5_000_000)
    assert config.user_agent == "lmforge/0.1 (+https://lmforge.dev/bot)"
    assert config.crawl_domains(config.load_seeds()) == ("example.com",)


def test_default_domains_are_the_seed_hosts():
    config = CrawlConfig(seeds=("http://a.example/", "https://b.example:8443/x"))
    assert config.crawl_domains(config.load_seeds()) == ("a.example", "b.example")


def test_seeds_file(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# my seeds\nhttp://a.example/\n\n  https://B.example/x  # trailing comment\nhttp://a.example/\n")
    config = CrawlConfig(seeds=("http://c.example/",), seeds_file=str(seeds))
    assert config.load_seeds() == ("http://c.example/", "http://a.example/", "https://b.example/x")


def test_seeds_file_alone_and_errors(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        CrawlConfig(seeds_file=str(missing)).load_seeds()
    bad = tmp_path / "bad.txt"
    bad.write_text("http://ok.example/\nnot-a-url\n")
    with pytest.raises(ValueError, match="bad.txt line 2"):
        CrawlConfig(seeds_file=str(bad)).load_seeds()


def test_speed_only_fields_are_not_versioned():
    unversioned = {f.name for f in fields(CrawlConfig) if not f.metadata.get("versioned", True)}
    speed = {"concurrency", "per_host_concurrency", "requests_per_second_per_host"}
    assert unversioned == speed | {"source_schemes"}  # which schemes may be read, not what the crawl holds
