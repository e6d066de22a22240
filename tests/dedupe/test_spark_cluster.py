"""The Spark engine on a REAL standalone cluster (master + one 1-core worker on 127.0.0.1) equals the local engine.

    .venv/bin/pytest tests/dedupe/test_spark_cluster.py -m "spark and slow"

The driver runs in a subprocess: a Python process holds one SparkContext, and other test modules keep a
local-mode session, so the cluster driver gets a process of its own (this test never touches theirs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request

import pyarrow.parquet as pq
import pytest

from data_code.dedupe import local_engine
from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.synthetic import generate_corpus
from tests.dedupe.test_spark_engine import assert_same_answer
from tests.spark_cluster import standalone_cluster

APP_NAME = "lmforge-cluster-test"
DRIVER = textwrap.dedent(
    f"""
    import sys
    import pyarrow.parquet as pq
    from data_code.dedupe import spark_engine
    from data_code.dedupe.config import DedupeConfig
    from data_code.spark import build_spark_session

    master, corpus, out = sys.argv[1:]
    conf = {{"spark.executor.memory": "1g", "spark.executor.cores": "1"}}
    spark = build_spark_session(master, "{APP_NAME}", driver_memory="1g", extra_conf=conf)
    pq.write_table(spark_engine.find_clusters(corpus, DedupeConfig(workers=1), spark), out)
    spark.stop()
    """
)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_on_standalone_cluster_equals_local_engine(tmp_path):
    corpus = generate_corpus(300, doc_bytes=500, groups=8, seed=11)
    bases = [corpus.records[group[0]] for group in corpus.groups]  # plus an exact duplicate of each group's base
    corpus.records += [dict(base, doc_id=f"copy-{n}", text=base["text"] + "!") for n, base in enumerate(bases)]
    corpus.write(tmp_path / "documents.parquet")
    documents, answer = str(tmp_path / "documents.parquet"), tmp_path / "answer.parquet"

    with standalone_cluster(tmp_path / "cluster", cores=1, memory="1g") as cluster:
        run = subprocess.run(
            [sys.executable, "-c", DRIVER, cluster.master_url, documents, str(answer)],
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        with urllib.request.urlopen(f"{cluster.master_webui}/json/", timeout=5) as response:
            state = json.load(response)

    # The job really ran on the cluster: the master lists our application as completed.
    assert APP_NAME in [app["name"] for app in state["completedapps"]]
    expected = local_engine.find_clusters(documents, DedupeConfig(workers=1))
    assert {"exact", "near"} <= set(expected.column("kind").to_pylist())
    assert_same_answer(pq.read_table(answer), expected)
