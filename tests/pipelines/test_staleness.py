"""Dagster's own staleness tells the UI's user when an asset was built from an upstream that has since changed.

A user materializes raw_crawl from the web UI with other settings than the demo's: a new raw_crawl version (a new
DataVersion) for the same day. `documents`, built from the old crawl, must show as stale ("Unsynced" in the UI), and
say why: its upstream has a new data version. Re-materializing it makes it fresh again.
"""

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from cli.demo_site import static_site
from pipelines.definitions import ALL_ASSETS, defs
from tests.stages.prose_site import write_prose_site

DAY = "2026-11-29"
CRAWL, DOCUMENTS = AssetKey("raw_crawl"), AssetKey("documents")


def crawl_then_extract(instance, site: str, max_pages: int, selection=(CRAWL, DOCUMENTS)):
    run_config = {"ops": {"raw_crawl": {"config": {"seeds": [site], "max_pages": max_pages}}}}
    run_config["ops"] = {k: v for k, v in run_config["ops"].items() if AssetKey(k) in selection}
    result = defs.resolve_job_def("data_refresh").execute_in_process(
        run_config=run_config, instance=instance, partition_key=DAY, asset_selection=list(selection)
    )
    assert result.success


def status(instance, key: AssetKey):
    resolver = get_stale_status_resolver(instance, ALL_ASSETS)  # what the UI's asset graph shows
    return resolver.get_status(key, DAY), resolver.get_stale_causes(key, DAY)


@pytest.mark.slow
def test_documents_go_stale_when_raw_crawl_gets_a_new_version(lmforge_home, tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    write_prose_site(tmp_path / "site")
    with DagsterInstance.ephemeral() as instance, static_site(tmp_path / "site") as url:
        site = url + "index.html"
        crawl_then_extract(instance, site, max_pages=4)
        assert status(instance, DOCUMENTS)[0] == StaleStatus.FRESH

        crawl_then_extract(instance, site, max_pages=6, selection=(CRAWL,))  # a new crawl, from "the UI"
        stale, causes = status(instance, DOCUMENTS)
        assert stale == StaleStatus.STALE
        assert [(cause.key.asset_key, cause.dependency.asset_key) for cause in causes] == [(DOCUMENTS, CRAWL)]
        assert causes[0].reason == "has a new dependency data version"

        crawl_then_extract(instance, site, max_pages=6, selection=(DOCUMENTS,))
        assert status(instance, DOCUMENTS)[0] == StaleStatus.FRESH
