"""The lineage core through real Dagster materializations, a real MLflow SQLite store and a real lake."""

import json
from dataclasses import dataclass, field

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize
from mlflow.tracking import MlflowClient

from assets.common import (
    VERSION_KEY,
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from lineage.settings import Settings
from lineage.tracking import run_id_from_page
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

BUILDS: list[str] = []


@dataclass(frozen=True)
class WordsConfig:
    word: str = field(default="hello", metadata={"help": "the word to write"})
    repeat: int = field(default=3, metadata={"help": "how often"})
    workers: int = field(default=1, metadata={"help": "parallelism", "versioned": False})

    def __post_init__(self):
        if self.repeat < 1:
            raise ValueError(f"repeat: must be >= 1, got {self.repeat}")


WordsDagsterConfig = dagster_config(WordsConfig, "WordsDagsterConfig")


@asset(code_version="1")
def words(
    context: AssetExecutionContext,
    config: WordsDagsterConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    stage_config = dataclass_from_config(WordsConfig, config)

    def build(directory):
        BUILDS.append(stage_config.word)
        (directory / "words.txt").write_text(" ".join([stage_config.word] * stage_config.repeat))
        return {"count": stage_config.repeat, "by_word": {stage_config.word: stage_config.repeat}}

    produced = produce_artifact(
        context,
        store=artifact_store.store(),
        tracker=mlflow_tracking.tracker(),
        code_version="1",
        config=stage_config,
        upstream=[],
        build=build,
    )
    return materialize_result(produced, {"count": produced.manifest.stats["count"]})


@asset(deps=[words], code_version="1")
def shout(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    store = artifact_store.store()
    upstream = upstream_manifest(context, store, "words")
    text = (store.local_path("words", upstream.version) / "words.txt").read_text()

    def build(directory):
        (directory / "shout.txt").write_text(text.upper())
        return {"chars": len(text)}

    produced = produce_artifact(
        context,
        store=store,
        tracker=mlflow_tracking.tracker(),
        code_version="1",
        config={},
        upstream=[upstream],
        build=build,
    )
    return materialize_result(produced)


RESOURCES = {"artifact_store": ArtifactStoreResource(), "mlflow_tracking": MlflowTrackingResource()}


def run(instance, selection, **words_config):
    config = {"ops": {"words": {"config": words_config}}} if "words" in [a.key.path[-1] for a in selection] else {}
    result = materialize(selection, instance=instance, resources=RESOURCES, run_config=config)
    assert result.success
    return {
        event.asset_key.to_user_string(): {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


@pytest.fixture
def instance(lmforge_home):
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def test_rematerializing_unchanged_inputs_reuses_the_artifact(instance):
    BUILDS.clear()
    first = run(instance, [words], word="hi")["words"]
    second = run(instance, [words], word="hi")["words"]
    assert BUILDS == ["hi"]  # the second materialization did no work
    assert first["reused"] is False and second["reused"] is True
    assert first[VERSION_KEY] == second[VERSION_KEY]
    assert first["mlflow_run"] == second["mlflow_run"]  # links to the run that made it


def test_versioned_and_unversioned_fields(instance):
    base = run(instance, [words])["words"][VERSION_KEY]
    assert run(instance, [words], workers=4)["words"][VERSION_KEY] == base
    assert run(instance, [words], repeat=4)["words"][VERSION_KEY] != base
    assert run(instance, [words], word="other")["words"][VERSION_KEY] != base


def test_artifact_manifest_and_mlflow_run(instance, lmforge_home):
    metadata = run(instance, [words, shout], word="hey")
    settings = Settings.from_env()
    client = MlflowClient(settings.tracking_uri)
    words_version = metadata["words"][VERSION_KEY]
    shout_version = metadata["shout"][VERSION_KEY]
    manifest_path = lmforge_home / "lake" / "shout" / shout_version / "manifest.json"
    assert metadata["shout"]["uri"] == manifest_path.parent.as_uri()
    assert (manifest_path.parent / "shout.txt").read_text() == "HEY HEY HEY"
    # And over http, where a browser opens it: the lake server of `lmforge ui` (cli/ui.py).
    assert metadata["shout"]["browse"] == f"{settings.lake_url}/shout/{shout_version}/"
    import httpx

    from cli.ui import lake_server

    with lake_server(lmforge_home / "lake", 0) as url:
        link = metadata["shout"]["browse"].replace(settings.lake_url, url)
        assert httpx.get(link + "shout.txt").text == "HEY HEY HEY"

    run_id = run_id_from_page(metadata["shout"]["mlflow_run"])
    mlflow_run = client.get_run(run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["lmforge.asset"] == "shout"
    assert mlflow_run.data.tags["lmforge.version"] == shout_version
    assert mlflow_run.data.tags["lmforge.upstream.words"] == words_version
    dagster_run = mlflow_run.data.tags["lmforge.dagster_run_url"]  # and back to Dagster, one click
    assert (
        dagster_run.startswith(f"{settings.dagster_ui_url}/runs/")
        and dagster_run in mlflow_run.data.tags["mlflow.note.content"]
    )
    assert mlflow_run.data.metrics["chars"] == 11
    [dataset_input] = mlflow_run.inputs.dataset_inputs
    assert dataset_input.dataset.name == f"words@{words_version}"
    assert words_version in dataset_input.dataset.source

    words_run = client.get_run(run_id_from_page(metadata["words"]["mlflow_run"]))
    # Params: what differs from the defaults (repeat and workers are at theirs); the whole config is config.json.
    assert words_run.data.params == {"word": "hey"}
    words_id = words_run.info.run_id
    assert json.load(open(client.download_artifacts(words_id, "config.json"))) == {
        "word": "hey",
        "repeat": 3,
        "workers": 1,
    }
    # Metrics: the top-level numbers; nested stats (their keys grow with the data) are stats.json, not columns.
    assert words_run.data.metrics == {"count": 3}
    assert json.load(open(client.download_artifacts(words_id, "stats.json")))["by_word"] == {"hey": 3}
    manifest_text = client.download_artifacts(run_id, "manifest.json")
    assert shout_version in open(manifest_text).read()


def test_invalid_config_names_the_field_and_writes_nothing(instance, lmforge_home):
    with pytest.raises(ValueError, match="repeat: must be >= 1"):
        materialize(
            [words], instance=instance, resources=RESOURCES, run_config={"ops": {"words": {"config": {"repeat": 0}}}}
        )
    assert not (lmforge_home / "lake" / "words").exists()


def test_missing_upstream_is_a_clear_error(instance):
    with pytest.raises(FileNotFoundError, match="words has not been materialized yet"):
        materialize([shout], instance=instance, resources=RESOURCES)
