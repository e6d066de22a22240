"""base_model through Dagster on the tiny preset: the MLflow run of the materialization receives the loss history
while training runs (the training process logs it live), one value per logged step; with live metrics off the
asset logs the same history at the end."""

import shutil

import pyarrow.parquet as pq
import pytest
from dagster import AssetExecutionContext, AssetKey, DagsterInstance, MaterializeResult, asset, materialize
from mlflow.tracking import MlflowClient

from assets.common import materialize_result, produce_artifact
from assets.corpus import training_corpus
from assets.partitions import daily_partitions
from assets.pretrain import base_model
from assets.tokens import shard_set, token_shards, tokenizer
from data_code.document import DOCUMENTS_FILE
from lineage.settings import Settings
from lineage.tracking import run_id_from_page
from pipelines.definitions import resources
from resources.lake import ArtifactStoreResource
from resources.launcher import TrainingLauncherResource
from resources.tracking import MlflowTrackingResource

PRETRAIN = {"preset": "tiny", "max_steps": 6, "log_every": 2, "eval_every": 3, "checkpoint_every": 3}


DAY = "2026-04-01"
TOKENS = {"tokenizer": {"config": {"vocab_size": 1024}}, "token_shards": {"config": {"seq_len": 64}}}


def fixture_day_asset(corpus_path):
    """filtered_documents for one day as an asset that publishes the tokenizer tests' corpus (its contract passed)."""

    @asset(name="filtered_documents", partitions_def=daily_partitions)
    def fixture_day(
        context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
    ) -> MaterializeResult:
        def build(directory):
            shutil.copy2(corpus_path, directory / DOCUMENTS_FILE)
            rows = pq.ParquetFile(corpus_path).metadata.num_rows
            return {"documents_kept": rows, "contract": {"success": True, "failures": []}}

        produced = produce_artifact(
            context,
            store=artifact_store.store(),
            tracker=mlflow_tracking.tracker(),
            code_version="fixture",
            config={},
            upstream=[],
            build=build,
        )
        return materialize_result(produced)

    return fixture_day


def materialize_data(instance, corpus_path) -> bool:
    """The day, then the real corpus, tokenizer, the day's token shards and the shard set base_model reads."""
    assets = [fixture_day_asset(corpus_path), training_corpus, tokenizer, token_shards, shard_set]
    return materialize(
        assets, instance=instance, resources=resources(), run_config={"ops": TOKENS}, partition_key=DAY
    ).success


@pytest.fixture
def instance(lmforge_home, corpus_path):
    """A Dagster instance where the corpus (the tokenizer tests' corpus), tokenizer and shard set exist."""
    with DagsterInstance.ephemeral() as ephemeral:
        assert materialize_data(ephemeral, corpus_path)
        yield ephemeral


def loss_history(result) -> tuple[list, int]:
    """The run's loss points and the time (ms) the run ended."""
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("base_model")]
    run_id = run_id_from_page(event.materialization.metadata["mlflow_run"].value)
    client = MlflowClient(Settings.from_env().tracking_uri)
    return client.get_metric_history(run_id, "loss"), client.get_run(run_id).info.end_time


@pytest.mark.slow
@pytest.mark.parametrize("live", [True, False])
def test_base_model_run_holds_one_loss_per_logged_step(instance, live):
    launcher = {"training_launcher": TrainingLauncherResource(live_metrics=live)}
    result = materialize(
        [base_model],
        instance=instance,
        resources={**resources(), **launcher},
        run_config={"ops": {"base_model": {"config": PRETRAIN}}},
    )
    assert result.success
    history, ended = loss_history(result)
    assert [point.step for point in history] == [2, 4, 6]  # each logged step once
    # Live points carry the time they were logged at, before the run ended; the end-of-run history is logged at
    # the time it is logged (never 0, which MLflow would show as 1970).
    times = [point.timestamp for point in history]
    assert all(0 < time < ended for time in times) if live else all(time >= ended - 60_000 for time in times)
