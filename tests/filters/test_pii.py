"""PII redaction: each type gets its placeholder; look-alikes that are not PII stay."""

from __future__ import annotations

import pytest

from data_code.filters.base import FilterPipeline
from data_code.filters.pii import PIIRedactionFilter, find_pii, luhn_valid, redact_pii
from tests.filters.texts import make_doc

GITHUB_TOKEN = "ghp_" + "x7Kq2Lm9Pz" * 3 + "AbCdEf"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "text, redacted, kind",
    [
        ("Write to jane.doe+news@mail.example.org today.", "Write to <EMAIL> today.", "email"),
        ("Call (555) 123-4567 before noon.", "Call <PHONE> before noon.", "phone"),
        ("Call +44 20 7946 0958 from abroad.", "Call <PHONE> from abroad.", "phone"),
        ("The resolver at 8.8.8.8. answers.", "The resolver at <IP_ADDRESS>. answers.", "ip_address"),
        ("Reach 2001:4860:4860::8888 over IPv6.", "Reach <IP_ADDRESS> over IPv6.", "ip_address"),
        ("Pay with 4111 1111 1111 1111 now.", "Pay with <CREDIT_CARD> now.", "credit_card"),
        ("Pay with 5500-0000-0000-0004 now.", "Pay with <CREDIT_CARD> now.", "credit_card"),
        ("key_id = AKIAIOSFODNN7EXAMPLE here", "key_id = <SECRET> here", "secret"),
        (f"export GH_TOKEN={GITHUB_TOKEN}", "export GH_TOKEN=<SECRET>", "secret"),
        ('api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"', 'api_key = "<SECRET>"', "secret"),
        (f"Key:\n{PEM}\nend", "Key:\n<SECRET>\nend", "secret"),
    ],
)
def test_each_type_gets_its_placeholder(text, redacted, kind):
    assert redact_pii(text) == (redacted, {kind: 1})
    assert find_pii(redacted) == {}


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 failed its checksum.",  # Luhn fails: not a card, and not a phone either
        "Local hosts 192.168.1.10, 10.0.0.1, 127.0.0.1 and fe80::1 stay.",  # private / loopback / link-local
        "Documentation ranges 192.0.2.7, 203.0.113.9 and 2001:db8::1 stay.",
        "Released 2024-01-15 at 10:30:00 as version 3.11.4, ISBN 978-3-16-148410-0.",
        "password = aaaaaaaaaaaaaaaaaaaaaaaa is a placeholder, not a secret.",  # low entropy
    ],
)
def test_look_alikes_are_left_alone(text):
    assert redact_pii(text) == (text, {})
    assert find_pii(text) == {}


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234")


def test_filter_counts_and_never_drops():
    docs = [
        make_doc("Mail a@example.com or b@example.com, or call (555) 123-4567."),
        make_doc("Nothing personal in here at all."),
        make_doc("Server 8.8.4.4 is public."),
    ]
    result = FilterPipeline([PIIRedactionFilter()]).run(docs)
    assert [doc["text"] for doc in result.kept] == [
        "Mail <EMAIL> or <EMAIL>, or call <PHONE>.",
        "Nothing personal in here at all.",
        "Server <IP_ADDRESS> is public.",
    ]
    assert dict(result.counts["pii"].counters) == {
        "documents_redacted": 2,
        "documents_with_email": 1,
        "documents_with_ip_address": 1,
        "documents_with_phone": 1,
        "email": 2,
        "ip_address": 1,
        "phone": 1,
    }
    only_email = FilterPipeline([PIIRedactionFilter(types=("email",))]).run(docs[:1])
    assert only_email.kept[0]["text"] == "Mail <EMAIL> or <EMAIL>, or call (555) 123-4567."
