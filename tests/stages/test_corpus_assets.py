"""raw_crawl and documents materialized through Dagster against a real local site, into a real lake + MLflow."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets.common import VERSION_KEY
from assets.crawl import raw_crawl
from assets.documents import documents
from lineage.settings import Settings
from lineage.tracking import run_id_from_page
from pipelines.definitions import resources
from tests.extract.warcs import foreign_response_record, realistic_page
from tests.stages.site import serve_directory, write_site

PARTITION = "2026-11-28"


@pytest.fixture
def site(tmp_path):
    write_site(tmp_path / "site")
    with serve_directory(tmp_path / "site") as url:
        yield url


@pytest.fixture
def instance(lmforge_home, monkeypatch):
    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def run(instance, selection, crawl_config=None, documents_config=None):
    ops = {"raw_crawl": {"config": crawl_config or {}}, "documents": {"config": documents_config or {}}}
    ops = {name: value for name, value in ops.items() if name in {a.key.path[-1] for a in selection}}
    result = materialize(
        selection, instance=instance, resources=resources(), partition_key=PARTITION, run_config={"ops": ops}
    )
    assert result.success
    return {
        event.asset_key.to_user_string(): {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def test_crawl_then_documents(instance, site, lmforge_home):
    metadata = run(instance, [raw_crawl, documents], {"seeds": [site], "max_pages": 20, "max_depth": 2})
    crawl, docs = metadata["raw_crawl"], metadata["documents"]
    assert crawl["pages_fetched"] == 8  # /, index.html, 6 pages; /private/ is disallowed by robots.txt
    reasons = {row["reason"]: row["count"] for row in (r.data for r in crawl["failures_by_reason"].records)}
    assert reasons.get("disallowed_by_robots") == 1
    assert {r.data["domain"]: r.data["count"] for r in crawl["domains"].records} == {"127.0.0.1": 8}
    assert crawl["mlflow_run"].startswith("http://127.0.0.1:5000/#/experiments/")

    crawl_dir = lmforge_home / "lake" / "raw_crawl" / crawl[VERSION_KEY]
    fetches = pq.read_table(crawl_dir / "fetches.parquet").to_pylist()
    assert {row["outcome"] for row in fetches} == {"ok", "disallowed_by_robots"}

    assert docs["documents"] >= 6
    docs_dir = lmforge_home / "lake" / "documents" / docs[VERSION_KEY]
    rows = pq.read_table(docs_dir / "documents.parquet").to_pylist()
    by_url = {row["url"]: row for row in rows}
    page0 = by_url[f"{site}page0.html"]
    assert page0["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert page0["robots"] == "allowed" and page0["source"] == "crawl"
    assert page0["title"] == "Topic 0" and "Page 0 explains topic 0" in page0["text"]
    assert page0["warc_file"].endswith(".warc.gz") and page0["warc_offset"] >= 0
    assert by_url[f"{site}page1.html"]["license"] is None
    assert "sample_document" in docs

    client = MlflowClient(Settings.from_env().tracking_uri)
    docs_run = client.get_run(run_id_from_page(docs["mlflow_run"]))
    assert docs_run.data.tags[f"lmforge.upstream.raw_crawl:{PARTITION}"] == crawl[VERSION_KEY]
    assert docs_run.inputs.dataset_inputs[0].dataset.name == f"raw_crawl@{crawl[VERSION_KEY]}[{PARTITION}]"


def test_rematerializing_documents_reuses_and_config_changes_version(instance, site):
    first = run(instance, [raw_crawl, documents], {"seeds": [site], "max_pages": 5})["documents"]
    again = run(instance, [documents])["documents"]
    assert again["reused"] is True and again[VERSION_KEY] == first[VERSION_KEY]
    changed = run(instance, [documents], documents_config={"min_text_chars": 50})["documents"]
    assert changed["reused"] is False and changed[VERSION_KEY] != first[VERSION_KEY]


def test_invalid_crawl_config_names_the_field(instance, lmforge_home):
    with pytest.raises(ValueError, match="seeds"):
        run(instance, [raw_crawl], {"seeds": []})
    with pytest.raises(ValueError, match="not a url"):
        run(instance, [raw_crawl], {"seeds": ["not a url"]})
    with pytest.raises(ValueError, match="requests_per_second_per_host"):
        run(instance, [raw_crawl], {"seeds": ["http://127.0.0.1:1/"], "requests_per_second_per_host": -1})
    assert not (lmforge_home / "lake" / "raw_crawl").exists() or not any(
        (lmforge_home / "lake" / "raw_crawl").iterdir()
    )


@pytest.mark.slow
def test_crawl_killed_midway_leaves_nothing_complete_and_rerun_succeeds(lmforge_home, site, monkeypatch):
    script = textwrap.dedent(
        f"""
        from dagster import DagsterInstance, materialize
        from assets.crawl import raw_crawl
        from pipelines.definitions import resources
        config = {{"seeds": [{site!r}], "max_pages": 50, "requests_per_second_per_host": 1.0}}
        with DagsterInstance.ephemeral() as instance:
            materialize([raw_crawl], instance=instance, resources=resources(), partition_key={PARTITION!r},
                        run_config={{"ops": {{"raw_crawl": {{"config": config}}}}}})
        """
    )
    env = {**os.environ, "LMFORGE_ALLOW_PRIVATE_HOSTS": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    lake = lmforge_home / "lake" / "raw_crawl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (lake.exists() and any(lake.glob(".tmp-*/warc/*"))):
        time.sleep(0.1)
    assert any(lake.glob(".tmp-*")), "the crawl never started staging"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(lake.glob("*/manifest.json"))
    assert [p.name for p in lake.iterdir() if not p.name.startswith(".tmp-")] == []

    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    with DagsterInstance.ephemeral() as instance:
        metadata = run(instance, [raw_crawl], {"seeds": [site], "max_pages": 50, "requests_per_second_per_host": 20})
    assert metadata["raw_crawl"]["pages_fetched"] == 8
    assert not list(lake.glob(".tmp-*"))


def test_ingested_warcs_become_documents_and_a_corrupt_file_is_reported(instance, tmp_path, lmforge_home):
    good = tmp_path / "good.warc"
    pages = [realistic_page(title=f"Otters {i}") for i in range(3)]
    good.write_bytes(
        b"".join(
            foreign_response_record(
                f"http://news.example/otters/{i}",
                "2026-11-01T10:00:00Z",
                "HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8",
                page.encode(),
            )
            for i, page in enumerate(pages)
        )
    )
    truncated = tmp_path / "truncated.warc"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) - 300])

    metadata = run(instance, [raw_crawl, documents], {"warc_sources": [str(good), str(truncated)]})
    crawl, docs = metadata["raw_crawl"], metadata["documents"]
    reasons = {r.data["reason"]: r.data["count"] for r in crawl["failures_by_reason"].records}
    assert reasons == {"corrupt_warc": 1}
    assert crawl["pages_fetched"] == 5  # 3 from the good file, the 2 valid records before the break
    crawl_dir = lmforge_home / "lake" / "raw_crawl" / crawl[VERSION_KEY]
    [corrupt] = [r for r in pq.read_table(crawl_dir / "fetches.parquet").to_pylist() if r["outcome"] != "ok"]
    assert str(truncated) in corrupt["detail"] and "offset" in corrupt["detail"]

    rows = pq.read_table(lmforge_home / "lake" / "documents" / docs[VERSION_KEY] / "documents.parquet").to_pylist()
    assert len(rows) == 5
    assert {row["source"] for row in rows} == {"warc"} and {row["robots"] for row in rows} == {"unknown"}
    assert {row["domain"] for row in rows} == {"news.example"}


def test_missing_warc_source_fails_naming_it_and_writes_nothing(instance, tmp_path, lmforge_home):
    missing = tmp_path / "nope.warc.gz"
    with pytest.raises(FileNotFoundError, match="nope.warc.gz"):
        run(instance, [raw_crawl], {"warc_sources": [str(missing)]})
    assert not list((lmforge_home / "lake").glob("raw_crawl/*/manifest.json"))


def test_loopback_is_blocked_unless_the_environment_allows_it(lmforge_home, site, monkeypatch):
    monkeypatch.delenv("LMFORGE_ALLOW_PRIVATE_HOSTS", raising=False)
    with DagsterInstance.ephemeral() as instance:
        crawl = run(instance, [raw_crawl], {"seeds": [site]})["raw_crawl"]
        assert crawl["pages_fetched"] == 0
        assert {r.data["reason"]: r.data["count"] for r in crawl["failures_by_reason"].records} == {
            "blocked_address": 1
        }
        # The allow-list is environment policy: run config cannot widen it.
        with pytest.raises(Exception, match="allow_private_hosts"):
            run(instance, [raw_crawl], {"seeds": [site], "allow_private_hosts": ["127.0.0.1"]})


def test_a_crawl_with_only_transient_failures_is_retried_not_published():
    from dagster import RetryRequested

    from assets.crawl import transient_failure_retried

    with pytest.raises(RetryRequested):
        transient_failure_retried({"pages_fetched": 0, "failures_by_reason": {"connect_error": 1, "timeout": 2}})
    robots_only = {"pages_fetched": 0, "failures_by_reason": {"disallowed_by_robots": 1}}
    assert transient_failure_retried(robots_only) is robots_only  # a real answer: published, not retried
    some = {"pages_fetched": 3, "failures_by_reason": {"timeout": 1}}
    assert transient_failure_retried(some) is some
