"""The continuation plan: continue the champion's base model, keep it, or train from scratch, and why."""

import pyarrow as pa

from lineage.continuation import plan_continuation
from lineage.store import ArtifactStore
from tests.audit.lake import publish


def shard_set(store, nights, excluded=(), docs=("a", "b")):
    spans = pa.table({"token_start": [0] * len(docs), "token_end": [1] * len(docs), "doc_id": list(docs)})
    entries = [{"file": "x.bin", "spans": "train/0.spans.parquet", "rows": 1, "day": nights[0][0]}]
    files = {"index.json": {"splits": {"train": entries}}, "train/0.spans.parquet": spans,
             "shard_set.json": {"excluded_documents": list(excluded)}}  # fmt: skip
    nights_stats = [{"day": day, "version": version} for day, version in nights]
    identity = {"nights": nights_stats, "excluded": list(excluded), "docs": list(docs)}
    return publish(store, "shard_set", {}, [], files, stats={"nights": nights_stats}, extra_identity=identity)


def setup(tmp_path, parent_nights, excluded=()):
    store = ArtifactStore(tmp_path)
    tokenizer = publish(store, "tokenizer", {}, [], {"t.json": {}}, stats={"fingerprint": "fp"})
    parent_set = shard_set(store, parent_nights)
    checkpoint = {"checkpoint/model.safetensors": b"weights", "checkpoint/optimizer.bin": b"adam"}
    parent = publish(store, "base_model", {"preset": "tiny"}, [parent_set, tokenizer], checkpoint, stats={})
    return store, tokenizer, parent


def test_new_nights_continue_no_new_night_keeps_and_an_opt_out_of_a_read_document_retrains(tmp_path):
    store, tokenizer, parent = setup(tmp_path, [("d1", "v1")])
    tonight = shard_set(store, [("d1", "v1"), ("d2", "v2")])
    plan = plan_continuation(store, parent, tonight, tokenizer, {"preset": "tiny"})
    assert plan.mode == "continue" and plan.new_days == ["d2"] and plan.optimizer_ok and plan.generation == 1
    same = shard_set(store, [("d1", "v1")], docs=("a", "b", "c"))
    assert plan_continuation(store, parent, same, tokenizer, {"preset": "tiny"}).mode == "keep"
    opted_out = shard_set(store, [("d1", "v1"), ("d2", "v2")], excluded=("a",))
    plan = plan_continuation(store, parent, opted_out, tokenizer, {"preset": "tiny"})
    assert plan.mode == "scratch" and "newly excluded" in plan.reason


def test_scratch_reasons(tmp_path):
    store, tokenizer, parent = setup(tmp_path, [("d1", "v1")])
    tonight = shard_set(store, [("d1", "v1"), ("d2", "v2")])
    assert plan_continuation(store, None, tonight, tokenizer, {"preset": "tiny"}).reason.endswith("no champion yet")
    assert "preset changed" in plan_continuation(store, parent, tonight, tokenizer, {"preset": "small"}).reason
    assert "from_scratch" in plan_continuation(store, parent, tonight, tokenizer, {"preset": "tiny"},
                                               from_scratch=True).reason  # fmt: skip
    other = publish(store, "tokenizer", {"v": 2}, [], {"t.json": {}}, stats={"fingerprint": "other"})
    assert "tokenizer changed" in plan_continuation(store, parent, tonight, other, {"preset": "tiny"}).reason
    assert "periodic" in plan_continuation(store, parent, tonight, tokenizer, {"preset": "tiny"},
                                           full_retrain_every=1).reason  # fmt: skip


def test_bad_parent_weights_retrain_and_a_bad_optimizer_state_continues_fresh(tmp_path):
    store, tokenizer, parent = setup(tmp_path, [("d1", "v1")])
    tonight = shard_set(store, [("d1", "v1"), ("d2", "v2")])
    checkpoint = store.local_path("base_model", parent.version) / "checkpoint"
    (checkpoint / "optimizer.bin").write_bytes(b"tampered")
    plan = plan_continuation(store, parent, tonight, tokenizer, {"preset": "tiny"})
    assert plan.mode == "continue" and not plan.optimizer_ok and "fresh optimizer" in plan.reason
    (checkpoint / "model.safetensors").write_bytes(b"tampered")
    plan = plan_continuation(store, parent, tonight, tokenizer, {"preset": "tiny"})
    assert plan.mode == "scratch" and "fails its sha256" in plan.reason
