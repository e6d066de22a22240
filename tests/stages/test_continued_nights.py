"""Three nights of the nightly schedule, end to end on the tiny preset: night 2 continues night 1's base model (its
weights and optimizer state) on night 2's pages plus a replay share; an owner then opts out of a page first seen
on night 2, and night 3 rebuilds from night 1's checkpoint, replaying night 2 without the page; the audit names the
ancestor and proves the page's document is absent from every data order of the new chain; which-models answers
for every descendant of a model that read a page."""

from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import build_schedule_context
from mlflow.tracking import MlflowClient

from lineage.audit import build_audit, which_models
from lineage.registry import Registry
from lineage.settings import Settings
from lineage.store import ArtifactStore
from pipelines.definitions import defs
from tests.stages.prose_site import PAGES, article, page
from tests.stages.test_lifecycle import EXTRA_PAGES, TRAINED, materialized, nightly_config, world_on

pytestmark = pytest.mark.slow
SITE_PORT = 18652  # fixed: URLs, so doc ids and splits, are the same every run
NIGHTS = {1: "2026-06-01", 2: "2026-06-02", 3: "2026-06-03"}
NEW_PAGES = 6  # per night after the first: enough for both splits of the night's shards
LENIENT_GATE = {"metrics": ["perplexity"], "max_perplexity_increase_pct": 1000.0}  # promote each night's model


def new_pages(night: int) -> list[str]:
    return [f"night{night}-{i}.html" for i in range(NEW_PAGES)]


def tick(instance, site: str, tmp_path, night: int):
    """The nightly schedule's run request for `night`, executed; the site's seeds are every page so far."""
    config = nightly_config(site, TRAINED, gate=LENIENT_GATE)
    config["ops"]["draft_model"] = {"config": {"enabled": False}}  # drafting is the lifecycle test's subject
    seeds = [site, *(f"{site}extra{i}.html" for i in range(EXTRA_PAGES))]
    seeds += [f"{site}{name}" for n in range(2, night + 1) for name in new_pages(n)]
    config["ops"]["raw_crawl"]["config"]["seeds"] = seeds
    config["ops"]["token_shards"]["config"]["validation_fraction"] = 0.4  # each night's few pages: both splits
    config["ops"]["base_model"]["config"].pop("continue_champion")  # the schedule's default: continue
    config["ops"]["base_model"]["config"]["tokens_per_night"] = 40 * 2 * 256
    config_file = tmp_path / "nightly.yaml"
    config_file.write_text(yaml.safe_dump(config))
    schedule = defs.get_schedule_def("nightly_retrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMFORGE_NIGHTLY_CONFIG", str(config_file))
        when = datetime.fromisoformat(NIGHTS[night]).replace(hour=2, tzinfo=UTC)
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        )
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == NIGHTS[night]
    result = defs.resolve_job_def(schedule.job_name).execute_in_process(
        run_config=request.run_config, instance=instance, partition_key=request.partition_key, raise_on_error=False
    )
    assert result.success, f"night {night} failed"
    return materialized(result)


@pytest.fixture
def world(lmforge_home, tmp_path, monkeypatch):
    with world_on(tmp_path, monkeypatch, SITE_PORT) as found:
        yield found


def add_pages(root, night: int) -> None:
    for i, name in enumerate(new_pages(night)):
        prose = article(PAGES + 2 + EXTRA_PAGES + (night - 2) * NEW_PAGES + i)  # after the pages already there
        (root / name).write_text(page(f"Night {night} topic {i}", prose))


def read_by(store, version: str) -> list[dict]:
    return pq.read_table(store.local_path("base_model", version) / "documents_read.parquet").to_pylist()


def url_of(store, made: dict, doc_id: str) -> str:
    directory = store.local_path("filtered_documents", made["filtered_documents"]["lmforge/version"])
    table = pq.read_table(directory / "documents.parquet", columns=["doc_id", "url"]).to_pylist()
    return next(row["url"] for row in table if row["doc_id"] == doc_id)


def test_three_nights_continue_and_an_opt_out_rebuilds_from_the_clean_ancestor(world, capsys):
    from cli.main import main

    site, instance, tmp_path = world
    store = ArtifactStore(Settings.from_env().store_root)
    registry = Registry(MlflowClient(Settings.from_env().tracking_uri))

    first = tick(instance, site, tmp_path, 1)
    night1 = first["base_model"]["lmforge/version"]
    assert first["base_model"]["start"] == "from scratch: no champion yet"

    add_pages(tmp_path / "site", 2)
    second = tick(instance, site, tmp_path, 2)
    night2 = second["base_model"]["lmforge/version"]
    assert second["base_model"]["start"] == f"continued from base_model/{night1} on 1 new night(s)"
    assert second["serving_model"]["promoted"] is True
    manifest = store.read_manifest("base_model", night2)
    assert night1 in {ref.version for ref in manifest.upstream if ref.asset == "base_model"}  # its parent
    assert manifest.stats["warm_start"]["optimizer"] == "loaded"
    order = manifest.stats["data_order"]
    roles = {n["day"]: n["role"] for n in order["nights"]}
    assert roles[NIGHTS[2]] == "new" and roles.get(NIGHTS[1]) == "replayed"  # night 2 plus a replay of night 1
    assert all(n["token_shards"].startswith("token_shards/") and n["shards"] for n in order["nights"])
    read = read_by(store, night2)
    opted = next(row["doc_id"] for row in read if row["day"] == NIGHTS[2] and row["role"] == "new")
    opted_url = url_of(store, second, opted)
    early = next(row["doc_id"] for row in read_by(store, night1))
    early_url = url_of(store, first, early)

    # An owner opts out of a page first seen on night 2: the champion (night 2's) read it, night 1's did not.
    assert main(["optout", "add", opted_url, "--note", "owner's request"]) == 0
    add_pages(tmp_path / "site", 3)
    third = tick(instance, site, tmp_path, 3)
    night3 = third["base_model"]["lmforge/version"]
    start = third["base_model"]["start"]
    assert start.startswith(f"rebuilt from base_model/{night1}") and "replaying 2 night(s)" in start, start
    rebuilt = store.read_manifest("base_model", night3)
    assert rebuilt.stats["rebuild_of"] == night2
    assert {ref.version for ref in rebuilt.upstream if ref.asset == "base_model"} == {night1}
    nights_read = {n["day"] for n in rebuilt.stats["data_order"]["nights"] if n["role"] == "new"}
    assert nights_read == {NIGHTS[2], NIGHTS[3]}  # night 2 replayed in full (without the page), night 3 new
    assert opted not in {row["doc_id"] for row in read_by(store, night3)}

    champion = registry.champion()
    assert champion.artifact_version == third["serving_model"]["lmforge/version"]
    audit = build_audit(store, "serving_model", champion.artifact_version, verify=False)
    proof = audit["summary"]["opt_out_proof"]
    assert proof["opted_out_documents"] == [opted] and proof["absent"] is True
    assert {entry["base_model"] for entry in proof["base_models"]} == {night1, night3}
    assert all(entry["recorded"] for entry in proof["base_models"])
    assert proof["rebuilds"] == [{"base_model": night3, "replaces": night2, "started_from": night1}]
    assert audit["summary"]["nights_inherited"] == sorted(NIGHTS.values())
    capsys.readouterr()
    assert main(["audit", "models:/lmforge@champion", "--out", str(tmp_path / "audit")]) == 0
    said = capsys.readouterr().out
    assert f"rebuilt base_model/{night3} from base_model/{night1} (replacing {night2}" in said
    assert "opted-out documents: 1, absent from every base model's data order (2 checked)" in said
    # Night 2's chain still holds the page: its audit says which model read it.
    old = build_audit(store, "base_model", night2, verify=False)["summary"]["opt_out_proof"]
    assert not old["opted_out_documents"] or not old["absent"]

    client = MlflowClient(Settings.from_env().tracking_uri)
    readers = {(m["asset"], m["version"]) for m in which_models(store, url=opted_url, client=client)}
    assert ("base_model", night2) in readers and ("base_model", night3) not in readers
    assert ("serving_model", second["serving_model"]["lmforge/version"]) in readers  # night 2's descendants
    assert ("serving_model", champion.artifact_version) not in readers
    everyone = {(m["asset"], m["version"]) for m in which_models(store, url=early_url, client=client)}
    assert {("base_model", night1), ("base_model", night2), ("base_model", night3)} <= everyone  # descendants
    assert ("serving_model", champion.artifact_version) in everyone
