"""The HTTP fetcher as a Dagster resource: what is environment-specific about crawling.

Seeds, limits and the user agent are per-materialization config (assets/crawl.py); which private hosts the
crawler may reach is a security policy of the environment (tests and the demo allow-list 127.0.0.1), so it
lives here, out of reach of run config.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field


def env_list(name: str) -> list[str]:
    """Comma-separated environment variable as a list (empty when unset)."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


class HttpFetcherResource(ConfigurableResource):
    """Environment policy of the crawler's HTTP fetcher."""

    allow_private_hosts: list[str] | None = Field(
        default=None,
        description="Hosts, IPs or CIDRs exempt from the private-address block; default $LMFORGE_ALLOW_PRIVATE_HOSTS.",
    )

    def allowed_private_hosts(self) -> tuple[str, ...]:
        hosts = self.allow_private_hosts
        return tuple(hosts if hosts is not None else env_list("LMFORGE_ALLOW_PRIVATE_HOSTS"))
