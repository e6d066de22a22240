"""Spark as a Dagster resource: `local[*]` on one machine by default, any cluster master URL by configuration."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr


class SparkResource(ConfigurableResource):
    """A SparkSession built on first use and stopped with the run; unused when stages run on the local engine."""

    master: str = Field(
        default_factory=lambda: os.environ.get("LMFORGE_SPARK_MASTER", "local[*]"),
        description="Spark master URL: local[*], spark://host:7077, yarn, k8s://... (default $LMFORGE_SPARK_MASTER).",
    )
    driver_memory: str = Field(default="2g", description="spark.driver.memory")
    _session = PrivateAttr(default=None)

    def session(self):
        """The SparkSession (started lazily: ~15 s the first time on a small machine)."""
        if self._session is None:
            from data_code.spark import build_spark_session

            self._session = build_spark_session(self.master, driver_memory=self.driver_memory)
        return self._session

    def session_for(self, engine: str):
        """The SparkSession when a stage's `engine` is 'spark', None for the local engine (no JVM started)."""
        return self.session() if engine == "spark" else None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._session is not None:
            self._session.stop()
            self._session = None
