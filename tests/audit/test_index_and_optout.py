"""which_models, the URL index cache, the opt-out list, compliance violations and audit targets."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from lineage.audit import build_url_index, resolve_target, which_models
from lineage.optout import compliance_violations, load_optout, optout_digest
from lineage.registry import Registry
from tests.audit.lake import build_lake, model_files, publish


@pytest.fixture
def lake(tmp_path):
    return build_lake(tmp_path / "home")


def _models(found):
    return {(item["asset"], item["version"]) for item in found}


def test_which_models_finds_exactly_the_models_trained_on_a_url(lake):
    versions = lake.versions
    model_a = {("base_model", versions["model_a"]), ("serving_model", versions["serving"])}
    assert _models(which_models(lake.store, url="https://a.example/1")) == model_a
    assert _models(which_models(lake.store, url="https://sub.c.example/1")) == {("base_model", versions["model_b"])}
    both = _models(which_models(lake.store, url="https://b.example/1"))
    assert both == model_a | {("base_model", versions["model_b"])}
    assert which_models(lake.store, url="https://a.example/private/x") == []  # fetched, never a document
    assert _models(which_models(lake.store, domain="c.example")) == {("base_model", versions["model_b"])}
    held_out = which_models(lake.store, url="https://a.example/2")  # only in shards A's validation split
    assert {(m["splits"], m["trained"]) for m in map(lambda m: {**m, "splits": tuple(m["splits"])}, held_out)} == {
        (("validation",), False)
    }
    with pytest.raises(ValueError, match="exactly one of url= or domain="):
        which_models(lake.store)


def test_index_cache_follows_new_artifacts(lake):
    first = build_url_index(lake.store)
    assert build_url_index(lake.store).key == first.key  # unchanged store: the cached index
    shards = lake.store.read_manifest("token_shards", lake.versions["shards_b"])
    tokenizer = lake.store.read_manifest("tokenizer", lake.versions["tokenizer"])
    new_model = publish(lake.store, "sft_model", {"epochs": 1}, [shards, tokenizer], model_files(2))
    assert build_url_index(lake.store).key != first.key
    found = _models(which_models(lake.store, url="https://sub.c.example/1"))
    assert ("sft_model", new_model.version) in found


def test_registered_versions_and_resolve_target(lake, tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    registry = Registry(client)
    uri = lake.store.uri("serving_model", lake.versions["serving"])
    number = registry.register(asset="serving_model", version=lake.versions["serving"], uri=uri, run_id=None, tags={})
    registry.promote(number, "first champion")
    found = {m["asset"]: m for m in which_models(lake.store, url="https://a.example/1", client=client)}
    assert found["serving_model"]["registered"] == [
        {"name": "lmforge", "version": number, "aliases": ["challenger", "champion"]}
    ]
    assert found["base_model"]["registered"] == []

    asset, version, info = resolve_target("models:/lmforge@champion", lake.store, client)
    assert (asset, version, info["version"], info["aliases"]) == (
        "serving_model",
        lake.versions["serving"],
        number,
        ["challenger", "champion"],
    )
    assert resolve_target(f"models:/lmforge/{number}", lake.store, client)[:2] == (asset, version)
    with pytest.raises(ValueError, match=r"no alias 'staging'.*champion -> v1"):
        resolve_target("models:/lmforge@staging", lake.store, client)
    with pytest.raises(ValueError, match="has no version 7"):
        resolve_target("models:/lmforge/7", lake.store, client)


def test_resolve_target_paths_and_names(lake):
    model_dir = lake.path("base_model", "model_a")
    assert resolve_target(str(model_dir), lake.store) == ("base_model", lake.versions["model_a"], None)
    assert resolve_target(f"base_model/{lake.versions['model_b']}", lake.store)[1] == lake.versions["model_b"]
    assert resolve_target("serving_model", lake.store)[1] == lake.versions["serving"]
    with pytest.raises(FileNotFoundError, match="has no complete version 0000"):
        resolve_target("base_model/0000", lake.store)
    with pytest.raises(FileNotFoundError, match="no complete dpo_model"):
        resolve_target("dpo_model", lake.store)
    with pytest.raises(ValueError, match="is not models:/NAME@ALIAS"):
        resolve_target("/nowhere/at/all", lake.store)
    with pytest.raises(ValueError, match="expected models:/NAME@ALIAS"):
        resolve_target("models:/lmforge", lake.store)


def test_optout_list_digest_and_violations(lake, tmp_path):
    missing = tmp_path / "optout.txt"
    assert load_optout(missing).domains == frozenset()
    empty_digest = optout_digest(missing)
    missing.write_text("# owners who opted out\nc.example\nhttps://a.example/2  # one page\n")
    optout = load_optout(missing)
    assert optout_digest(missing) != empty_digest
    missing.write_text("https://a.example/2\n\nc.example   # reordered, other comments\n")
    assert optout_digest(missing) == optout_digest(tmp_path / "optout.txt")  # same entries, same digest

    violations = compliance_violations(lake.store, "serving_model", lake.versions["serving"], optout)
    assert [(v["url"], v["entry"], v["split"]) for v in violations] == [
        ("https://a.example/2", "https://a.example/2", "validation")
    ]
    violations = compliance_violations(lake.store, "base_model", lake.versions["model_b"], optout)
    assert [(v["url"], v["reason"]) for v in violations] == [("https://sub.c.example/1", "blocked_domain:c.example")]
    assert (
        compliance_violations(lake.store, "base_model", lake.versions["model_b"], load_optout(tmp_path / "no")) == []
    )
    missing.write_text("not a domain!\n")
    with pytest.raises(ValueError, match=r"optout.txt:1"):
        load_optout(missing)


def test_a_document_held_out_of_pretraining_but_in_sft_examples_counts_as_trained_on(lake):
    import pyarrow as pa

    from lineage.store import ArtifactStore

    store: ArtifactStore = lake.store
    corpus = store.read_manifest("training_corpus", lake.versions["corpus_a"])
    examples = pa.Table.from_pylist(
        [
            {"example_id": "e1", "split": "train", "source_doc_ids": ["a2"], "messages": "[]"},  # a2: validation shard
            {"example_id": "e2", "split": "validation", "source_doc_ids": ["a1"], "messages": "[]"},
        ]
    )
    data = publish(store, "instruction_data", {"max_examples": 2}, [corpus], {"examples.parquet": examples})
    base = store.read_manifest("base_model", lake.versions["model_a"])
    sft = publish(store, "sft_model", {"lora_r": 4}, [base, data], model_files(2))
    found = {m["asset"]: m for m in which_models(store, url="https://a.example/2")}
    assert found["sft_model"]["trained"] is True and found["sft_model"]["version"] == sft.version
    assert found["sft_model"]["datasets"] == [f"instruction_data/{data.version}"]
    assert found["base_model"]["trained"] is False  # the base model only validated on it
