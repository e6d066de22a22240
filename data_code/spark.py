"""Build a SparkSession tuned for lmforge's data stages: quick on one machine, unchanged on a cluster.

The same builder serves `local[*]` in tests and a `spark://host:port` (or yarn/k8s) master in production; only the
master URL changes. Executors run the Python of this process (PYSPARK_PYTHON = sys.executable), so the
shared dedupe core they call is the very code the driver imports.
"""

from __future__ import annotations

import os
import shutil
import sys

INSTALL_JAVA_HINT = "Spark needs a Java 17 runtime: apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)"


def java_executable() -> str:
    """Path of the `java` Spark will launch (JAVA_HOME first, then PATH); raises RuntimeError when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
        raise RuntimeError(f"JAVA_HOME={java_home} holds no bin/java. {INSTALL_JAVA_HINT}")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError(f"no `java` on PATH. {INSTALL_JAVA_HINT}")
    return found


def default_parallelism(master: str) -> int:
    """Cores a `local[N]` / `local[*]` master uses; for a cluster master, this machine's cores (a fair guess)."""
    if master.startswith("local[") and master.endswith("]"):
        inside = master[len("local[") : -1].split(",")[0]
        if inside.isdigit():
            return int(inside)
    if master == "local":
        return 1
    return os.cpu_count() or 1


def build_spark_session(
    master: str = "local[*]",
    app_name: str = "lmforge",
    *,
    driver_memory: str = "2g",
    extra_conf: dict | None = None,
):
    """Get or create the SparkSession for `master`, configured for small, fast jobs.

    Shuffles use 2 partitions per core (Spark's default of 200 costs seconds of task overhead on small data),
    the web UI is off, Arrow moves data between the JVM and Python, and the driver binds to 127.0.0.1 when the
    master is local or on 127.0.0.1. `extra_conf` entries override these defaults. Returns the session.
    """
    java_executable()  # fail here with an install hint, not deep inside py4j with "Java gateway exited"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    from pyspark.sql import SparkSession  # heavy import: only when a session is really wanted

    conf = {
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(2 * default_parallelism(master)),
        "spark.default.parallelism": str(2 * default_parallelism(master)),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.pyspark.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.sql.adaptive.enabled": "true",
    }
    if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the JVM's own address lookup, before it starts
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(extra_conf or {})

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if session.sparkContext.master != master:  # getOrCreate hands back a running session whatever master was asked
        raise RuntimeError(
            f"a SparkSession on {session.sparkContext.master} already runs in this process (one SparkContext per "
            f"process): stop it before building one on {master}"
        )
    session.sparkContext.setLogLevel("WARN")
    return session
