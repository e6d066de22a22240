"""Build a SparkSession tuned for lmforge's data stages: quick on one machine, unchanged on a cluster.

The same builder serves `local[*]` in tests and a `spark://host:port` (or yarn/k8s) master in production; only the
master URL changes. Executors run the Python of this process (PYSPARK_PYTHON = sys.executable), so the
shared dedupe core they call is the very code the driver imports.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

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
    check_master_reachable(master)
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


def require_session(engine: str, spark) -> None:
    """ValueError when a stage's engine is 'spark' but no SparkSession was given."""
    if engine == "spark" and spark is None:
        raise ValueError("engine 'spark' needs a SparkSession (the spark resource)")


def check_master_reachable(master: str, timeout_s: float = 5.0) -> None:
    """For a standalone master (spark://host:port[,host:port]): RuntimeError naming the URL when none of its
    addresses accepts a connection. Checked before the session starts, so an unreachable cluster fails at once,
    before any work, instead of after Spark's minute of retries."""
    if not master.startswith("spark://"):
        return
    import socket

    errors = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return
        except (OSError, ValueError) as error:
            errors.append(f"{address}: {error}")
    raise RuntimeError(f"Spark master {master} cannot be reached ({'; '.join(errors)}): nothing was run")


def ordered_map(spark, items: list, function) -> Iterator:
    """function(item) for every item on the executors, one task per item; yields the results in the items' order.

    The tasks run in parallel; each result is kept by Spark (in executor memory, spilling to disk) until the driver
    reads it, one task's result at a time, so the driver holds one result and each executor its tasks' results. A
    lost executor's tasks are run again by Spark (spark.task.maxFailures); a function that raises fails the stage
    with a RuntimeError naming the item and the error.
    """
    from pyspark import StorageLevel

    if not items:
        return
    tasks = spark.sparkContext.parallelize(list(enumerate(items)), numSlices=len(items))
    results = tasks.map(partial(_run_task, function)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        results.count()  # every task, in parallel; the iterator below then only reads what they kept
        for index, (failed, value) in results.toLocalIterator():
            if failed:
                raise RuntimeError(f"{items[index]}: {value}")
            yield value
    finally:
        results.unpersist()


def map_batches_in_order(spark, parquet_path: str, columns: list[str], function, batch_rows: int) -> Iterator:
    """function(Arrow batch of `columns`) for every batch of up to `batch_rows` rows of the Parquet file(s), on the
    executors (mapInArrow); yields the outcomes in the files' row order.

    Each outcome (anything picklable) travels back keyed by its batch's first row (file, row index); the outcomes
    are kept by Spark (memory, spilling to disk) while the driver reads them back in order, one at a time. A file
    that is one partition is spread over the cores first. Rows arrive as Spark's Arrow types (strings, int64,
    timestamp[us, UTC]...): cast them where the exact type matters.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
    frame = spark.read.parquet(parquet_path).select(
        *columns, F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_row")
    )
    if frame.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:
        frame = frame.repartitionByRange(spark.sparkContext.defaultParallelism, "_file", "_row")
    keyed = partial(_keyed_outcomes, function=function, columns=columns)
    outcomes = frame.mapInArrow(keyed, "file string, row long, outcome binary").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        outcomes.count()  # every batch once, in parallel; the sort below reads what they kept
        for record in outcomes.orderBy("file", "row").toLocalIterator():
            yield pickle.loads(record["outcome"])
    finally:
        outcomes.unpersist()


def _keyed_outcomes(batches, function, columns: list[str]):
    """mapInArrow function: each non-empty batch -> one row (its first row's file and index, pickled outcome)."""
    import pyarrow as pa

    for batch in batches:
        if batch.num_rows == 0:
            continue
        outcome = pickle.dumps(function(pa.RecordBatch.from_arrays([batch.column(c) for c in columns], names=columns)))
        file, row = batch.column("_file")[0].as_py(), batch.column("_row")[0].as_py()
        yield pa.RecordBatch.from_arrays(
            [pa.array([file]), pa.array([row], pa.int64()), pa.array([outcome], pa.binary())],
            names=["file", "row", "outcome"],
        )


def _run_task(function, indexed):
    """(index, (False, result)) or (index, (True, 'ErrorType: message')): an error travels back as a value, so it
    reaches the driver whole instead of as a Java stack trace, and a deterministic one is not retried."""
    index, item = indexed
    try:
        return index, (False, function(item))
    except Exception as error:  # noqa: BLE001 - every error is reported, with its type, by the driver
        return index, (True, f"{type(error).__name__}: {error}")


def ship_files(spark, paths: list[str | None]) -> list[str | None]:
    """Send local files or directories to every executor (SparkFiles) once; the names to pass to `shipped_path`.

    SparkFiles keys what it sends by base name alone, so each path travels under a name made unique by its content,
    `<sha256[:16]>-<base name>`: two artifacts' `model.bin` never collide on an executor, and sending the same
    content again (the next partition of a backfill) is a no-op. The staged copies are hard links where the
    filesystem allows, in the session's own SparkFiles directory, removed when the session stops.
    """
    from pyspark import SparkFiles

    staging = os.path.join(SparkFiles.getRootDirectory(), "lmforge-staged")
    names = []
    for path in paths:
        if path is None:
            names.append(None)
            continue
        name = f"{_content_digest(path)}-{os.path.basename(os.path.normpath(path))}"
        staged = os.path.join(staging, name)
        if not os.path.exists(staged):
            os.makedirs(staging, exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, staged, copy_function=_link_or_copy)
            else:
                _link_or_copy(path, staged)
        spark.sparkContext.addFile(staged, recursive=os.path.isdir(staged))
        names.append(name)
    return names


def _content_digest(path: str) -> str:
    """sha256 of a file's bytes, or of a directory's relative paths and file bytes (16 hex characters)."""
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(str(p) for p in Path(path).rglob("*") if p.is_file())
    for file in files:
        digest.update(os.path.relpath(file, path).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(partial(handle.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, target)
    return target


def shipped_path(name: str | None) -> str | None:
    """On an executor: the local path of a file `ship_files` sent (None stays None)."""
    if name is None:
        return None
    from pyspark import SparkFiles

    return SparkFiles.get(name)
