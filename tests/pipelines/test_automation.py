"""The nightly schedule, the WARC inbox sensor and the failure alert, evaluated against a real Dagster instance."""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from pipelines.automation import alert_message, nightly_run_config, send_webhook
from pipelines.definitions import defs

NIGHT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
REPOSITORY = defs.get_repository_def()


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def test_nightly_schedule_skips_without_seeds_and_says_why(instance, monkeypatch):
    monkeypatch.delenv("LMFORGE_CRAWL_SEEDS", raising=False)
    monkeypatch.delenv("LMFORGE_NIGHTLY_CONFIG", raising=False)
    data = defs.get_schedule_def("nightly_retrain").evaluate_tick(
        build_schedule_context(instance=instance, scheduled_execution_time=NIGHT, repository_def=REPOSITORY)
    )
    assert not data.run_requests and "LMFORGE_CRAWL_SEEDS" in data.skip_message


def test_nightly_schedule_requests_the_nights_partition(instance, monkeypatch):
    monkeypatch.setenv("LMFORGE_CRAWL_SEEDS", "https://docs.example.org/, https://example.com/")
    monkeypatch.delenv("LMFORGE_NIGHTLY_CONFIG", raising=False)
    schedule = defs.get_schedule_def("nightly_retrain")
    [request] = schedule.evaluate_tick(
        build_schedule_context(instance=instance, scheduled_execution_time=NIGHT, repository_def=REPOSITORY)
    ).run_requests
    assert schedule.job_name == "full_lifecycle" and request.partition_key == "2026-11-28"
    assert request.run_config["ops"]["raw_crawl"]["config"]["seeds"] == [
        "https://docs.example.org/",
        "https://example.com/",
    ]
    assert request.run_key == "nightly-2026-11-28"  # one run per night, even if the tick is evaluated twice


def test_nightly_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        nightly_run_config({"LMFORGE_NIGHTLY_CONFIG": str(tmp_path / "nope.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="bad.yaml: a run config must be a mapping"):
        nightly_run_config({"LMFORGE_NIGHTLY_CONFIG": str(bad)})


def test_warc_inbox_requests_new_files_once(instance, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("LMFORGE_WARC_INBOX", str(inbox))
    sensor = defs.get_sensor_def("warc_inbox")
    (inbox / "a.warc.gz").write_bytes(b"x")
    (inbox / "notes.txt").write_text("ignored")
    context = build_sensor_context(instance=instance, repository_def=REPOSITORY)
    [request] = sensor.evaluate_tick(context).run_requests
    sources = request.run_config["ops"]["raw_crawl"]["config"]["warc_sources"]
    assert sources == [str(inbox / "a.warc.gz")] and sensor.job_name == "data_refresh"
    again = build_sensor_context(instance=instance, cursor=context.cursor, repository_def=REPOSITORY)
    assert not sensor.evaluate_tick(again).run_requests  # already ingested
    (inbox / "b.warc").write_bytes(b"y")
    [request] = sensor.evaluate_tick(
        build_sensor_context(instance=instance, cursor=context.cursor, repository_def=REPOSITORY)
    ).run_requests
    assert request.run_config["ops"]["raw_crawl"]["config"]["warc_sources"] == [str(inbox / "b.warc")]


def test_failure_alert_posts_to_the_webhook(monkeypatch):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        message = alert_message("full_lifecycle", "run-1", "OOM while training", ["base_model"])
        assert send_webhook(
            message, "full_lifecycle", "run-1", ["base_model"], url=f"http://127.0.0.1:{server.server_port}/hook"
        )
    finally:
        server.shutdown()
    assert received == [
        {
            "text": "lmforge: run run-1 of job 'full_lifecycle' failed at base_model: OOM while training",
            "job": "full_lifecycle",
            "run_id": "run-1",
            "failed_steps": ["base_model"],
        }
    ]
    monkeypatch.delenv("LMFORGE_ALERT_WEBHOOK", raising=False)
    assert send_webhook(message, "j", "r", []) is False  # no webhook configured: the Dagster log only


def test_gpu_pool_is_limited_to_one_training_step():
    import yaml

    from lineage.settings import Settings, dagster_yaml

    config = yaml.safe_load(dagster_yaml(Settings.from_env({"LMFORGE_HOME": "/tmp/x"})))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    from assets.instruct import dpo_model, sft_model
    from assets.pretrain import base_model

    assert {asset.op.pool for asset in (base_model, sft_model, dpo_model)} == {"gpu"}


def test_crawl_and_served_model_carry_daily_freshness():
    from dagster import AssetKey

    graph = defs.resolve_asset_graph()
    for name in ("raw_crawl", "serving_model"):
        policy = graph.get(AssetKey(name)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 36 * 3600
