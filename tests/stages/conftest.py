"""Fixtures of the stage tests."""

import pytest
from dagster import DagsterInstance, materialize

from assets.filters import quality_classifier
from pipelines.definitions import resources


@pytest.fixture
def instance(lmforge_home, monkeypatch):
    """A Dagster instance that may crawl 127.0.0.1, with a quality classifier already trained (a module may
    define its own `instance` instead)."""
    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    with DagsterInstance.ephemeral() as ephemeral:
        # A small classifier is enough here (and trains in a second): the full default is tested in tests/filters.
        small = {"ops": {"quality_classifier": {"config": {"epoch": 5, "bucket": 20000}}}}
        assert materialize([quality_classifier], instance=ephemeral, resources=resources(), run_config=small).success
        yield ephemeral
