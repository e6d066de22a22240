"""Fixtures: fault-injecting HTTP servers on 127.0.0.1 (see helpers.FaultServer)."""

import pytest

from tests.crawl.helpers import FaultServer


@pytest.fixture
def server():
    instance = FaultServer()
    yield instance
    instance.close()


@pytest.fixture
def other_server():
    instance = FaultServer()
    yield instance
    instance.close()
