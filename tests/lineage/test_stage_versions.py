"""Per stage config, per field: does changing it change the artifact version? (The answer is written out here,
not derived from the code, so a field that silently starts or stops counting fails this test.)"""

import dataclasses

import pytest

from data_code.crawl import CrawlConfig
from lineage.identity import compute_version, versioned_fields

CRAWL_BASE = CrawlConfig(seeds=("http://example.org/",))
CRAWL_CHANGES = {  # field: (another valid value, does it change the version?)
    "seeds": (("http://example.com/",), True),
    "seeds_file": ("seeds.txt", True),
    "source_schemes": (("file", "s3", "gs", "memory"), False),  # which schemes may be read, not what is held
    "allowed_domains": (("example.org", "example.net"), True),
    "max_pages": (7, True),
    "max_depth": (1, True),
    "requests_per_second_per_host": (9.0, False),
    "per_host_concurrency": (5, False),
    "concurrency": (32, False),
    "user_agent": ("other-bot/1.0", True),  # robots.txt groups match on it
    "connect_timeout_s": (1.0, True),
    "read_timeout_s": (1.0, True),
    "total_timeout_s": (5.0, True),
    "max_response_bytes": (1000, True),
    "max_redirects": (0, True),
    "max_retries": (0, True),
    "backoff_base_s": (2.0, True),
    "max_retry_after_s": (5.0, True),
    "allow_private_hosts": (("127.0.0.1",), True),
    "warc_max_bytes": (1000, True),
    "warc_sources": (("/data/a.warc.gz",), True),
    "ca_bundle": (__file__, True),  # which https sites verify
}


def version(config) -> str:
    return compute_version("stage", "1", versioned_fields(config), {})


def test_every_crawl_field_is_covered():
    assert set(CRAWL_CHANGES) == {field.name for field in dataclasses.fields(CrawlConfig)}


@pytest.mark.parametrize("name", sorted(CRAWL_CHANGES))
def test_crawl_field_changes_version(name):
    value, changes = CRAWL_CHANGES[name]
    assert (version(dataclasses.replace(CRAWL_BASE, **{name: value})) != version(CRAWL_BASE)) is changes
