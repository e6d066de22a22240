"""Address safety: never let a crawled URL or redirect reach loopback, private, link-local or metadata addresses.

The check runs on the addresses DNS actually returned, and the crawler then connects to the checked address
itself (pinned), so a second DNS answer (rebinding) cannot swap in a private address between check and connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges that `is_global` alone does not reject on every Python version (3.11's tables predate some of them):
# shared address space, IETF protocol assignments, benchmarking, the deprecated 6to4 relay anycast, local-use
# NAT64, and the IPv4 and IPv6 documentation prefixes.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(network)
    for network in (
        "100.64.0.0/10",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "192.88.99.0/24",
        "64:ff9b:1::/48",
        "2001:db8::/32",
        "3fff::/20",
    )
)


class BlockedAddressError(Exception):
    """A host resolved to (or is) an address the crawler must not connect to."""


class ResolutionError(Exception):
    """DNS gave no usable address for a host."""


def is_blocked_ip(address: str | IpAddress) -> bool:
    """True for any address that is not plainly public: loopback, private, link-local (incl. 169.254.169.254),
    site-local (fec0::/10), shared (100.64/10), multicast, reserved, unspecified, documentation, every other range
    Python's ipaddress does not call global, and IPv4-mapped or 6to4 forms of those."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_blocked_ip(ip.ipv4_mapped)
        if ip.sixtofour is not None and is_blocked_ip(ip.sixtofour):
            return True
    kinds = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    if any(kinds) or getattr(ip, "is_site_local", False):  # is_site_local: IPv6 only
        return True
    return not ip.is_global or any(ip in network for network in _EXTRA_BLOCKED)


class AddressPolicy:
    """Decides which addresses may be connected to; `allow` exempts hostnames, IPs or CIDRs (e.g. for tests)."""

    def __init__(self, allow: tuple[str, ...] = ()):
        self._hosts = {entry.lower().strip("[]") for entry in allow if not _is_network(entry)}
        self._networks = [
            ipaddress.ip_network(entry.strip("[]"), strict=False) for entry in allow if _is_network(entry)
        ]

    def is_allowed(self, host: str, address: str) -> bool:
        """True when connecting to `address` (which `host` resolved to) is safe or explicitly exempt."""
        if host.lower() in self._hosts:
            return True
        ip = ipaddress.ip_address(address)
        if any(ip.version == network.version and ip in network for network in self._networks):
            return True
        return not is_blocked_ip(ip)

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve `host`, check EVERY address it has, and return them (in DNS order) to connect to.

        Raises BlockedAddressError if any address is unsafe (a host that mixes public and private answers is
        treated as hostile) and ResolutionError if DNS fails.
        """
        addresses = [host] if is_ip_literal(host) else await _lookup(host, port)
        for address in addresses:
            if not self.is_allowed(host, address):
                raise BlockedAddressError(f"{host} resolves to blocked address {address}")
        return addresses


def _is_network(entry: str) -> bool:
    """An IP or CIDR entry (as opposed to a hostname)."""
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
        return True
    except ValueError:
        return False


def is_ip_literal(host: str) -> bool:
    """True when `host` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


async def _lookup(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ResolutionError(f"DNS lookup of {host} failed: {error}") from error
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise ResolutionError(f"DNS lookup of {host} returned no address")
    return addresses
