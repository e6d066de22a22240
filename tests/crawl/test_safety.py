"""Address safety: what may be connected to, including allow-lists and DNS answers."""

import asyncio

import pytest

from data_code.crawl.safety import AddressPolicy, BlockedAddressError, is_blocked_ip


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "169.254.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "fd00::1",  # unique local
        "fe80::1",  # link-local
        "fd00:ec2::254",  # AWS IPv6 metadata
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    ],
)
def test_unsafe_addresses_are_blocked(address):
    assert is_blocked_ip(address)
    assert not AddressPolicy().is_allowed("example.com", address)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert not is_blocked_ip(address)


def test_allow_list_by_ip_cidr_and_host():
    by_ip = AddressPolicy(("127.0.0.1",))
    assert by_ip.is_allowed("127.0.0.1", "127.0.0.1") and not by_ip.is_allowed("x", "127.0.0.2")
    by_cidr = AddressPolicy(("10.0.0.0/8",))
    assert by_cidr.is_allowed("intranet", "10.1.2.3") and not by_cidr.is_allowed("intranet", "192.168.0.1")
    by_host = AddressPolicy(("wiki.internal",))
    assert by_host.is_allowed("wiki.internal", "192.168.0.5") and not by_host.is_allowed("other", "192.168.0.5")
    by_v6 = AddressPolicy(("[::1]",))
    assert by_v6.is_allowed("localhost", "::1") and not by_v6.is_allowed("localhost", "127.0.0.1")


def test_resolution_checks_every_address_dns_returns():
    with pytest.raises(BlockedAddressError, match="localhost resolves to blocked address"):
        asyncio.run(AddressPolicy().resolve("localhost", 80))


def test_resolution_returns_the_checked_address():
    assert set(asyncio.run(AddressPolicy(("localhost",)).resolve("localhost", 80))) <= {"127.0.0.1", "::1"}
    assert asyncio.run(AddressPolicy().resolve("93.184.216.34", 80)) == ["93.184.216.34"]  # literal: no DNS
