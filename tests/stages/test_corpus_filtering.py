"""deduplicated_documents, quality_classifier and filtered_documents through Dagster, with the blocking contract."""

import json
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize
from mlflow.tracking import MlflowClient

from assets.common import VERSION_KEY
from assets.corpus import training_corpus
from assets.crawl import raw_crawl
from assets.dedupe import deduplicated_documents
from assets.documents import documents
from assets.filters import CONTRACT_CHECK, filtered_documents, quality_classifier
from assets.pretrain import base_model
from assets.tokens import SET_CHECKS, SHARD_CHECKS, shard_set, token_shards, tokenizer
from cli import main as cli
from lineage.settings import Settings
from lineage.tracking import run_id_from_page
from pipelines.definitions import resources
from resources.launcher import TrainingLauncherResource
from tests.stages.prose_site import write_prose_site
from tests.stages.site import serve_directory

# The URLs, and so the doc ids and each document's split, depend on the port: a fixed one keeps the handful of
# documents of these tests split into a non-empty train and validation half on every run (a free port did not).
SITE_PORT = 18644

PARTITION = "2026-11-27"
CHAIN = [raw_crawl, documents, deduplicated_documents, filtered_documents]


@asset(deps=[filtered_documents])
def downstream_of_filtered() -> None:
    """Stands in for the tokenizer: must not run when the corpus contract fails."""


@pytest.fixture(scope="module")
def classifier_instance(tmp_path_factory):
    """One instance with a trained quality classifier, shared by the module (training takes seconds)."""
    return tmp_path_factory.mktemp("shared")


def run(instance, selection, crawl_config, **kwargs):
    ops = {"raw_crawl": {"config": crawl_config}}
    ops.update({"filtered_documents": {"config": kwargs["filters"]}} if "filters" in kwargs else {})
    return materialize(
        selection,
        instance=instance,
        resources=resources(),
        partition_key=PARTITION,
        run_config={"ops": ops},
        raise_on_error=False,
    )


def metadata_of(result, name):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(name)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_dedupe_and_filters_explain_every_removal(instance, tmp_path, lmforge_home, capsys):
    roles = write_prose_site(tmp_path / "site")
    with serve_directory(tmp_path / "site", port=SITE_PORT) as site:
        result = run(instance, CHAIN, {"seeds": [site], "max_pages": 30})
    assert result.success
    site = site.rstrip("/")
    dedupe = metadata_of(result, "deduplicated_documents")
    assert dedupe["documents_in"] == 12  # /, 8 pages, copy, near, noai
    assert dedupe["exact_duplicates"] == 1 and dedupe["near_duplicates"] == 1
    assert "s_curve" in dedupe and 0.0 <= dedupe["estimated_precision"] <= 1.0

    dedupe_dir = lmforge_home / "lake" / "deduplicated_documents" / dedupe[VERSION_KEY]
    rejections = pq.read_table(dedupe_dir / "rejections.parquet").to_pylist()
    reasons = {row["url"].rsplit("/", 1)[-1]: row["reason"] for row in rejections}
    kept = {
        row["url"].rsplit("/", 1)[-1]: row["doc_id"]
        for row in pq.read_table(dedupe_dir / "documents.parquet").to_pylist()
    }
    assert reasons[roles["near"]] == f"near_duplicate_of:{kept['page0.html']}"
    assert reasons[roles["exact"]] == f"exact_duplicate_of:{kept['page1.html']}"

    filtered = metadata_of(result, "filtered_documents")
    filtered_dir = lmforge_home / "lake" / "filtered_documents" / filtered[VERSION_KEY]
    filter_rejections = pq.read_table(filtered_dir / "rejections.parquet").to_pylist()
    assert {"stage": "policy", "reason": "opt_out:noai"} in [
        {k: r[k] for k in ("stage", "reason")} for r in filter_rejections
    ]
    assert "| deduplicated |" in filtered["funnel"] and "funnel_plot" in filtered
    assert filtered["documents_kept"] >= 3  # stdlib docstrings repeat phrases: Gopher repetition drops some
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CONTRACT_CHECK and evaluation.passed
    assert (filtered_dir / "validation.json").exists() and (filtered_dir / "funnel.png").exists()

    corpus = materialize([training_corpus], instance=instance, resources=resources())
    corpus_metadata = metadata_of(corpus, "training_corpus")
    assert corpus_metadata["documents"] == filtered["documents_kept"]
    assert corpus_metadata["days"] == 1
    assert f"| {PARTITION} | {filtered['documents_kept']} |" in corpus_metadata["nights"]
    corpus_dir = lmforge_home / "lake" / "training_corpus" / corpus_metadata[VERSION_KEY]
    assert (corpus_dir / "corpus.json").exists() and not (corpus_dir / "documents.parquet").exists()  # no copy

    # A handful of documents: hold out half, so that validation is not empty (the no_empty_shard check).
    shard_config = {"seq_len": 64, "validation_fraction": 0.5}
    small = {"ops": {"tokenizer": {"config": {"vocab_size": 600}}, "token_shards": {"config": shard_config}}}
    tokens = materialize(
        [tokenizer, token_shards, shard_set],
        instance=instance,
        resources=resources(),
        run_config=small,
        partition_key=PARTITION,
    )
    assert tokens.success
    tokenizer_metadata, shards = metadata_of(tokens, "tokenizer"), metadata_of(tokens, "token_shards")
    assert tokenizer_metadata["tokenizer_event"] == "new tokenizer: first corpus"
    the_set = metadata_of(tokens, "shard_set")
    assert the_set["days"] == 1 and the_set["tokens"] == shards["tokens_added"]
    assert tokenizer_metadata["pre_tokenizer_family"] == "gpt-2"
    assert shards["fingerprint"] == tokenizer_metadata["fingerprint"] and shards["seq_len"] == 64
    assert shards["documents_train"] + shards["documents_validation"] == corpus_metadata["documents"]
    evaluations = {e.check_name: e.passed for e in tokens.get_asset_check_evaluations()}
    assert evaluations == dict.fromkeys([*SHARD_CHECKS, *SET_CHECKS], True)

    assert cli.main(["trace", "train", "0", "3"]) == 0  # the first document of the first train shard
    traced = json.loads(capsys.readouterr().out)
    assert traced["shard_set"] == the_set[VERSION_KEY] and traced["url"].startswith(site)

    # Pretraining through the launcher: `accelerate launch` under Dagster Pipes, log lines streamed back.
    pretrain = {"preset": "tiny", "max_steps": 6, "log_every": 2, "eval_every": 3, "checkpoint_every": 3}
    model_run = materialize(
        [base_model],
        instance=instance,
        resources=resources(),
        run_config={"ops": {"base_model": {"config": pretrain}}},
    )
    model = metadata_of(model_run, "base_model")
    assert model["steps"] == 6 and model["mfu"] == "n/a" and "loss_curve" in model
    model_dir = lmforge_home / "lake" / "base_model" / model[VERSION_KEY] / "model"
    assert (model_dir / "model.safetensors").exists() and not (model_dir / "manifest.json").exists()
    kept = model_dir.parent / "checkpoint"  # what a continued run starts from: final weights and optimizer state
    assert (kept / "model.safetensors").is_file() and (kept / "optimizer.bin").is_file()
    logs = [e.message for e in instance.all_logs(model_run.run_id) if e.message]
    assert any('"loss"' in line for line in logs)  # metrics streamed over Pipes while training
    history = MlflowClient(Settings.from_env().tracking_uri).get_metric_history(
        run_id_from_page(model["mlflow_run"]), "loss"
    )
    assert [point.step for point in history] == [2, 4, 6]


def test_a_day_that_fetched_nothing_is_no_new_data_not_a_failure(instance, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    with serve_directory(tmp_path / "empty") as site:
        result = run(instance, [*CHAIN, downstream_of_filtered], {"seeds": [site]})
    filtered = metadata_of(result, "filtered_documents")
    assert filtered["documents_kept"] == 0
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and result.success  # nothing new tonight: the night adds nothing, and says so
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "downstream_of_filtered" in materialized
    with pytest.raises(ValueError, match="no day of filtered_documents has passed its corpus contract with documents"):
        materialize([training_corpus], instance=instance, resources=resources())


def test_filters_that_drop_every_document_fail_the_contract_and_block_downstream(instance, tmp_path):
    write_prose_site(tmp_path / "site")
    with serve_directory(tmp_path / "site", port=SITE_PORT) as site:
        result = run(instance, [*CHAIN, downstream_of_filtered], {"seeds": [site], "max_pages": 30},
                     filters={"languages": ["de"]})  # fmt: skip
    filtered = metadata_of(result, "filtered_documents")
    assert filtered["documents_in"] > 0 and filtered["documents_kept"] == 0
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "expect_table_row_count_to_be_between" in evaluation.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "downstream_of_filtered" not in materialized


def test_malformed_blocklist_names_file_and_line(instance, tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("example.com\nhttp://[bad\n")
    write_prose_site(tmp_path / "site")
    with serve_directory(tmp_path / "site") as site:
        result = run(instance, CHAIN, {"seeds": [site], "max_pages": 3}, filters={"blocklist_path": str(blocklist)})
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "blocklist.txt:2" in message


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_through_the_asset_keeps_the_same_documents(tmp_path, monkeypatch, mlflow_uri):
    """The SparkResource wiring: engine=spark on documents, deduplicated_documents, filtered_documents and
    token_shards materializes the same artifact versions, documents and shard bytes as engine=local.

    The site is crawled once: two crawls of it can fetch its pages in another order (the fetchers run
    concurrently), and so write another WARC. Each engine then builds every later stage into its own, otherwise
    empty, artifact store from that one crawl, so that nothing is reused from the other engine's store."""
    from resources.lake import ArtifactStoreResource
    from resources.spark import SparkResource

    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    write_prose_site(tmp_path / "site")
    stages = [documents, deduplicated_documents, filtered_documents, training_corpus, tokenizer, token_shards]
    made = {}
    crawl_store = tmp_path / "crawl"
    with DagsterInstance.ephemeral() as instance, serve_directory(tmp_path / "site") as site:
        crawled = materialize(
            [quality_classifier, raw_crawl],
            instance=instance,
            resources={**resources(), "artifact_store": ArtifactStoreResource(root=str(crawl_store))},
            partition_key=PARTITION,
            run_config={"ops": {"raw_crawl": {"config": {"seeds": [site], "max_pages": 30}}}},
        )
    assert crawled.success
    for engine in ("local", "spark"):
        store = tmp_path / engine
        shutil.copytree(crawl_store / "lake", store / "lake")  # the crawl and the classifier, nothing later
        on_engine = {"config": {"engine": engine}}
        config = {
            "ops": {
                "documents": on_engine,
                "deduplicated_documents": on_engine,
                "filtered_documents": {"config": {"engine": engine, "quality_threshold": 0.0}},
                "tokenizer": {"config": {"vocab_size": 600}},
                "token_shards": {"config": {"engine": engine, "seq_len": 64, "validation_fraction": 0.5}},
            }
        }
        with DagsterInstance.ephemeral() as instance:
            for event in crawled.get_asset_materialization_events():  # the same crawl, recorded in this instance
                instance.report_runless_asset_event(event.materialization)
            result = materialize(
                [quality_classifier, raw_crawl, *stages],
                selection=stages,
                instance=instance,
                resources={
                    **resources(),
                    "artifact_store": ArtifactStoreResource(root=str(store)),
                    "spark": SparkResource(master="local[1]"),
                },
                partition_key=PARTITION,
                run_config=config,
            )
        assert result.success
        for name in ("documents", "deduplicated_documents", "filtered_documents"):
            metadata = metadata_of(result, name)
            table = pq.read_table(store / "lake" / name / metadata[VERSION_KEY] / "documents.parquet")
            table = table.drop_columns(["warc_file"])  # the absolute path of the crawl's WARC in that store
            made[engine, name] = (metadata[VERSION_KEY], table.to_pylist())
        for name in ("documents", "deduplicated_documents", "filtered_documents", "token_shards"):
            assert metadata_of(result, name)["engine"] == engine, name
        shards = store / "lake" / "token_shards" / metadata_of(result, "token_shards")[VERSION_KEY]
        made[engine, "token_shards"] = {
            str(path.relative_to(shards)): path.read_bytes()
            for path in sorted(shards.rglob("*"))
            if path.is_file() and path.name != "manifest.json"  # the lake's manifest: run ids and times
        }
    for name in ("documents", "deduplicated_documents", "filtered_documents"):
        assert made["spark", name][0] == made["local", name][0], name  # the same version
        for spark_row, local_row in zip(made["spark", name][1], made["local", name][1], strict=True):
            assert spark_row == local_row, (name, local_row["url"])  # the same documents, in the same order
    assert len(made["local", "filtered_documents"][1]) < len(made["local", "documents"][1])
    assert made["spark", "token_shards"] == made["local", "token_shards"]  # token ids, sidecars, index, checks
    assert any(name.endswith(".bin") for name in made["local", "token_shards"])


class FlakyNodeLauncher(TrainingLauncherResource):
    """First attempt: training starts, writes a checkpoint, then its node is lost (SIGKILL); later attempts are
    normal launches. Stands in for a GPU node failing mid-run."""

    def launch(self, context, config_path, result_path):
        if context.retry_number == 0:
            process = subprocess.Popen([sys.executable, "-m", "model_code.pretrain", "--config", str(config_path)])
            checkpoints = config_path.parent / "checkpoints"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(checkpoints.glob("step_*/meta.json")):
                time.sleep(0.1)
            process.kill()
            process.wait()
            raise RuntimeError("training node lost")
        super().launch(context, config_path, result_path)


@pytest.mark.slow
def test_failed_training_run_is_retried_and_resumes_from_its_checkpoint(instance, tmp_path):
    write_prose_site(tmp_path / "site")
    with serve_directory(tmp_path / "site", port=SITE_PORT) as site:
        assert run(instance, CHAIN, {"seeds": [site], "max_pages": 30}).success
    shard_config = {"seq_len": 64, "validation_fraction": 0.5}
    small = {"ops": {"tokenizer": {"config": {"vocab_size": 600}}, "token_shards": {"config": shard_config}}}
    assert materialize(
        [training_corpus, tokenizer, token_shards, shard_set],
        instance=instance,
        resources=resources(),
        run_config=small,
        partition_key=PARTITION,
    ).success
    pretrain = {"preset": "tiny", "max_steps": 40, "checkpoint_every": 5, "log_every": 5, "eval_every": 0}
    result = materialize(
        [base_model],
        instance=instance,
        resources={**resources(), "training_launcher": FlakyNodeLauncher()},
        run_config={"ops": {"base_model": {"config": pretrain}}},
    )
    assert result.success
    model = metadata_of(result, "base_model")
    assert model["steps"] == 40 and model["resumed_from_step"] >= 5  # the retry continued, it did not restart
    assert any(e.event_type_value == "STEP_RESTARTED" for e in result.all_events)
