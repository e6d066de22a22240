"""URL blocklist and opt-out / licence policy, including malformed files."""

from __future__ import annotations

import pytest

from data_code.filters.blocklist import BlocklistFilter
from data_code.filters.policy import PolicyFilter, license_id, load_policy
from tests.filters.texts import GOOD_TEXT, make_doc

BLOCKLIST = """\
# ad networks and spam
spam.test
*.tracker.example   # wildcard form of the same rule
https://Docs.Example.com/private/
"""


def blocked(url: str, path) -> object:
    return BlocklistFilter(path).filter(make_doc(GOOD_TEXT, url=url))


def test_blocklist_blocks_domains_subdomains_and_url_prefixes(tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text(BLOCKLIST)
    assert blocked("https://spam.test/offer", path)[:2] == (False, "blocked_domain:spam.test")
    assert blocked("https://ads.cdn.spam.test/x", path)[:2] == (False, "blocked_domain:spam.test")
    assert blocked("http://a.tracker.example/p", path)[:2] == (False, "blocked_domain:tracker.example")
    assert blocked("https://docs.example.com/private/keys.html", path) == (
        False,
        "blocked_url",
        None,
        "blocklist entry https://docs.example.com/private/",
    )
    assert blocked("https://notspam.test/", path) is True
    assert blocked("https://docs.example.com/public/", path) is True
    assert BlocklistFilter(None).filter(make_doc(GOOD_TEXT, url="https://spam.test/")) is True


@pytest.mark.parametrize(
    "bad_line",
    ["not a domain", "ftp://files.example/", "exa_mple.com", "https:///path", "http://[bad", "http://a.b:x/"],
)
def test_malformed_blocklist_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "blocklist.txt"
    path.write_text(f"# header\nspam.test\n{bad_line}\n")
    with pytest.raises(ValueError, match=r"blocklist\.txt:3: "):
        BlocklistFilter(path)


def test_missing_blocklist_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        BlocklistFilter(tmp_path / "absent.txt")


def policy_decision(policy, **fields):
    return PolicyFilter(policy).filter(make_doc(GOOD_TEXT, **fields))


def test_default_policy_honours_noai_and_robots():
    assert policy_decision(None, robots_meta="noindex,noai") == (False, "opt_out:noai")
    assert policy_decision(None, robots="disallowed") == (False, "robots_txt:disallowed")
    assert policy_decision(None, robots_meta="noindex") is True
    assert policy_decision(None, robots="unknown") is True


def test_licence_rules_from_a_yaml_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "drop_if_robots_meta: [noai, noindex]\n"
        "allowed_licenses: [cc-by-*, cc0-*]\n"
        "blocked_licenses: ['*-nd-*']\n"
        "require_license: true\n"
    )
    cc_by = "https://creativecommons.org/licenses/by/4.0/"
    assert policy_decision(path, license=cc_by) is True
    assert policy_decision(path, license="http://creativecommons.org/publicdomain/zero/1.0/") is True
    assert policy_decision(path, license=cc_by, robots_meta="noindex") == (False, "opt_out:noindex")
    assert policy_decision(path, license="https://creativecommons.org/licenses/by-nd/4.0/")[:2] == (
        False,
        "license_blocked:cc-by-nd-4.0",
    )
    assert policy_decision(path, license="https://example.com/terms")[:2] == (
        False,
        "license_not_allowed:https://example.com/terms",
    )
    assert policy_decision(path) == (False, "license_missing")


def test_policy_from_a_dict_and_licence_ids():
    assert policy_decision({"allowed_licenses": ["mit"]}, license="MIT") is True
    assert license_id("https://creativecommons.org/licenses/by-sa/3.0/deed.de") == "cc-by-sa-3.0"
    assert license_id(None) is None


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("policy.yaml", "drop_if_robots_meta: [noai\nrequire_license: false\n", r"policy\.yaml:\d+: invalid YAML"),
        ("policy.yaml", "require_license: false\nallowed_licences: [mit]\n", r"policy\.yaml:2: unknown policy key"),
        ("policy.yaml", "drop_if_robots_meta: noai\n", r"policy\.yaml:1: drop_if_robots_meta must be a list"),
        ("policy.yaml", "\nrequire_license: maybe\n", r"policy\.yaml:2: require_license must be true or false"),
        ("policy.yaml", "- noai\n", r"policy\.yaml: a policy must be a mapping"),
        ("policy.json", '{\n  "require_license": true,\n  oops\n}', r"policy\.json:3: invalid JSON"),
    ],
)
def test_malformed_policy_names_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_policy(path)


def test_optout_filter_names_the_owners_request(tmp_path):
    from data_code.filters.blocklist import OptOutFilter

    listing = tmp_path / "optout.txt"
    listing.write_text("docs.example.org  # owner asked on 2026-11-02\nhttps://example.com/private/\n")
    optout = OptOutFilter(listing)
    assert optout.filter({"url": "https://a.docs.example.org/x", "domain": "a.docs.example.org"})[1] == (
        "opted_out_domain:docs.example.org"
    )
    assert optout.filter({"url": "https://example.com/private/p", "domain": "example.com"})[1] == "opted_out_url"
    assert optout.filter({"url": "https://example.com/public", "domain": "example.com"}) is True
