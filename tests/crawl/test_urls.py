"""URL normalization and domain scoping."""

import pytest

from data_code.crawl.urls import InvalidUrlError, in_domains, normalize_url, remove_dot_segments


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?#frag", "http://example.com/a/c"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("http://example.com/path?b=2&a=1", "http://example.com/path?b=2&a=1"),  # query order kept
        ("http://user:pw@example.com/", "http://example.com/"),  # credentials never sent
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/%7Euser", "http://example.com/%7Euser"),  # existing escapes untouched
        ("http://example.com./", "http://example.com/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("  http://example.com/x  ", "http://example.com/x"),
    ],
)
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


def test_normalize_relative_against_base():
    assert normalize_url("../c#x", base="http://example.com/a/b/page.html") == "http://example.com/a/c"


@pytest.mark.parametrize(
    "raw", ["ftp://example.com/", "mailto:a@b.c", "http:///path", "http://example.com:99999/", "http://[::1/", "/rel"]
)
def test_invalid_urls(raw):
    with pytest.raises(InvalidUrlError, match="invalid URL"):
        normalize_url(raw)


def test_equivalent_urls_normalize_to_one():
    variants = ["http://EXAMPLE.com/a", "http://example.com:80/a", "http://example.com/./a", "http://example.com/a#x"]
    assert len({normalize_url(url) for url in variants}) == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a/b/c/./../../g", "/a/g"), ("/..", "/"), ("/a/..", "/"), ("/a/b/..", "/a/"), ("/a/./", "/a/"), ("", "/")],
)
def test_remove_dot_segments(path, expected):
    assert remove_dot_segments(path) == expected


def test_domains_include_subdomains_only():
    assert in_domains("docs.example.com", ("example.com",))
    assert in_domains("example.com", ("example.com",))
    assert not in_domains("badexample.com", ("example.com",))
    assert not in_domains("example.com.evil.net", ("example.com",))
