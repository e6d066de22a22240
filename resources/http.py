"""The HTTP fetcher as a Dagster resource: what is environment-specific about crawling.

Seeds and limits are per-materialization config (assets/crawl.py); the identity the crawler presents and the
private hosts it may reach (tests and the demo allow-list 127.0.0.1) belong to the environment.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field


def env_list(name: str) -> list[str]:
    """Comma-separated environment variable as a list (empty when unset)."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


class HttpFetcherResource(ConfigurableResource):
    user_agent: str = Field(default="lmforge/0.1 (+https://lmforge.dev/bot)", description="User-Agent header.")
    allow_private_hosts: list[str] | None = Field(
        default=None,
        description="Hosts, IPs or CIDRs exempt from the private-address block; default $LMFORGE_ALLOW_PRIVATE_HOSTS.",
    )

    def allowed_private_hosts(self) -> tuple[str, ...]:
        hosts = self.allow_private_hosts
        return tuple(hosts if hosts is not None else env_list("LMFORGE_ALLOW_PRIVATE_HOSTS"))
