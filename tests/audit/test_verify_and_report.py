"""The audit of a real (small) lake: chain walk, stage detail, tamper detection, report files, ML-BOM validity."""

from __future__ import annotations

import json
import shutil

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from lineage.audit import REPORT_FILES, build_audit, model_card_markdown, verify_artifact, write_report
from lineage.manifest import MANIFEST_NAME
from tests.audit.lake import DAY, build_lake


@pytest.fixture
def lake(tmp_path):
    return build_lake(tmp_path / "home")


def test_audit_walks_the_chain_once_per_artifact_with_stage_detail(lake):
    audit = build_audit(lake.store, "serving_model", lake.versions["serving"])
    keys = [f"{a['asset']}/{a['version']}" for a in audit["artifacts"]]
    assert keys[-1] == f"serving_model/{lake.versions['serving']}"  # target last, ancestors first
    assert len(keys) == len(set(keys)) == 6  # the tokenizer is reached twice (shards, model) and listed once
    assert f"base_model/{lake.versions['model_b']}" not in keys  # not an ancestor
    assert audit["verified"] is True and audit["verification"]["mismatches"] == []
    by_asset = {a["asset"]: a for a in audit["artifacts"]}
    crawl = by_asset["raw_crawl"]
    assert crawl["partition"] == DAY and crawl["mlflow_run_url"].endswith("/#/runs/mlflow-run")
    assert crawl["detail"]["by_robots_decision"] == {"allowed": 4, "disallowed": 1}
    assert crawl["detail"]["opt_out_signals"] == {"noai": 2, "noindex": 1}
    fetched = {row["url"]: row for row in crawl["detail"]["fetches"]}
    assert fetched["https://a.example/1"]["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert fetched["https://a.example/private/x"]["outcome"] == "disallowed_by_robots"
    assert by_asset["token_shards"]["detail"]["tokenizer_fingerprint"] == "f" * 64
    assert by_asset["base_model"]["detail"]["data_order"]["tokens_seen"] == 40
    assert by_asset["serving_model"]["detail"]["files"]["count"] == 1  # unknown stage: described generically
    assert audit["summary"]["training_documents"] == 3
    assert audit["summary"]["training_opt_out_signals"] == {"noai": 1}


def test_tampered_shard_byte_is_named_with_its_path(lake):
    shard = lake.path("token_shards", "shards_a") / "train" / "00000.bin"
    data = bytearray(shard.read_bytes())
    data[7] ^= 0xFF  # same size, one byte changed
    shard.write_bytes(bytes(data))
    findings = verify_artifact(lake.store, "token_shards", lake.versions["shards_a"])
    assert [(f["kind"], f["path"]) for f in findings] == [("hash_changed", "train/00000.bin")]
    audit = build_audit(lake.store, "base_model", lake.versions["model_a"])
    assert audit["verified"] is False
    assert [(m["asset"], m["path"]) for m in audit["verification"]["mismatches"]] == [
        ("token_shards", "train/00000.bin")
    ]


def test_missing_extra_and_resized_files_are_named(lake):
    directory = lake.path("base_model", "model_a")
    (directory / "data_order.json").unlink()
    (directory / "model" / "notes.txt").write_text("added later")
    with (directory / "model" / "model.safetensors").open("ab") as handle:
        handle.write(b"\0")
    findings = {(f["kind"], f["path"]) for f in verify_artifact(lake.store, "base_model", lake.versions["model_a"])}
    assert findings == {
        ("missing_file", "data_order.json"),
        ("extra_file", "model/notes.txt"),
        ("size_changed", "model/model.safetensors"),
    }


def test_edited_config_is_a_version_mismatch_with_or_without_recorded_identity(lake):
    manifest_path = lake.path("token_shards", "shards_a") / MANIFEST_NAME
    raw = json.loads(manifest_path.read_text())
    true_seq_len = raw["config"]["seq_len"]
    raw["config"]["seq_len"] = 9999  # what an auditor would be shown, not what was hashed
    manifest_path.write_text(json.dumps(raw))
    kinds = {f["kind"] for f in verify_artifact(lake.store, "token_shards", lake.versions["shards_a"])}
    assert kinds == {"config_mismatch"}
    del raw["identity"]  # a manifest from before identities were recorded: re-derived from the config dataclass
    manifest_path.write_text(json.dumps(raw))
    kinds = {f["kind"] for f in verify_artifact(lake.store, "token_shards", lake.versions["shards_a"])}
    assert kinds == {"version_mismatch"}
    raw["config"]["seq_len"] = true_seq_len  # the true value again (a speed-only field may differ freely)
    raw["config"]["batch_documents"] = 7
    manifest_path.write_text(json.dumps(raw))
    assert verify_artifact(lake.store, "token_shards", lake.versions["shards_a"]) == []


def test_missing_upstream_fails_verification(lake):
    shutil.rmtree(lake.path("tokenizer", "tokenizer"))
    audit = build_audit(lake.store, "base_model", lake.versions["model_a"])
    assert audit["verified"] is False
    assert {m["kind"] for m in audit["verification"]["mismatches"]} == {"missing_upstream"}
    assert audit["missing_upstream"][0]["asset"] == "tokenizer"


def test_report_files_and_valid_mlbom(lake, tmp_path):
    audit = build_audit(lake.store, "serving_model", lake.versions["serving"])
    written = write_report(audit, tmp_path / "report")
    assert sorted(written) == sorted(REPORT_FILES)
    report = json.loads(written["report.json"].read_text())
    assert report["verified"] is True and "mismatches" in report["verification"]
    html = written["report.html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "https://a.example/1" not in html
    assert "<script" not in html and "http-equiv" not in html  # self-contained and inert
    assert '<nav class="toc">' in html and 'href="#s1"' in html and '<h2 id="s1">' in html  # contents, linked
    # Each artifact's Config, Stats and Detail are folded under their titles: an outline, not a wall of tables.
    assert "<details><summary><h3>Config</h3></summary><table>" in html
    assert html.count("<details") == html.count("</details>") and "<details open>" not in html  # nothing failed
    markdown = written["report.md"].read_text()
    assert f"## token_shards/{lake.versions['shards_a']}" in markdown and "**PASS**" in markdown

    text = written["mlbom.cdx.json"].read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    subject = bom["metadata"]["component"]
    assert subject["type"] == "machine-learning-model" and subject["version"] == lake.versions["serving"]
    assert {"modelParameters", "quantitativeAnalysis", "considerations"} <= set(subject["modelCard"])
    data = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "data"}
    corpus = data[f"training_corpus/{lake.versions['corpus_a']}"]
    assert corpus["data"][0]["type"] == "dataset"
    shard_files = {
        f["name"]: f["hashes"][0]["content"] for f in data[f"token_shards/{lake.versions['shards_a']}"]["components"]
    }
    manifest = lake.store.read_manifest("token_shards", lake.versions["shards_a"])
    assert shard_files == {entry.path: entry.sha256 for entry in manifest.files}
    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert depends[f"serving_model/{lake.versions['serving']}"] == {f"base_model/{lake.versions['model_a']}"}


def test_model_card_and_datasheet_come_from_lineage(lake, tmp_path):
    audit = build_audit(lake.store, "base_model", lake.versions["model_a"])
    card = model_card_markdown(audit)
    for section in (
        "Model details",
        "Intended use",
        "Factors",
        "Metrics",
        "Evaluation data",
        "Training data",
        "Quantitative analyses",
        "Ethical considerations",
        "Caveats and recommendations",
    ):
        assert f"## {section}" in card
    assert "| base_model/" in card and "val_loss | 5.5" in card and "LlamaForCausalLM" in card
    datasheet = write_report(audit, tmp_path / "r")["datasheet.md"].read_text()
    for section in (
        "Motivation",
        "Composition",
        "Collection process",
        "Preprocessing",
        "Uses",
        "Distribution",
        "Maintenance",
    ):
        assert f"## {section}" in datasheet
    assert "https://a.example/" in datasheet  # the crawl seed, from the raw_crawl config


def test_a_folded_section_that_holds_a_failure_is_open():
    from lineage.audit.render import to_html

    blocks = [("h", 1, "Audit"), ("h", 2, "Verification"), ("h", 3, "files (1)")]
    blocks += [("table", ["path", "result"], [["gguf/model-Q8_0.gguf", "**FAIL**"]]), ("h", 3, "fine"), ("p", "ok")]
    html = to_html(blocks, "Audit")
    assert html.count("<details open>") == 1 and "<details><summary><h3>fine</h3></summary><p>ok</p></details>" in html
