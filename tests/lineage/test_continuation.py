"""The continuation plan: continue the champion's base model, keep it, or train from scratch, and why."""

import pyarrow as pa

from lineage.continuation import plan_continuation
from lineage.store import ArtifactStore
from tests.audit.lake import publish


def shard_set(store, nights, excluded=(), docs=("a", "b"), opted_out=()):
    spans = pa.table({"token_start": [0] * len(docs), "token_end": [1] * len(docs), "doc_id": list(docs)})
    entries = [{"file": "x.bin", "spans": "train/0.spans.parquet", "rows": 1, "day": nights[0][0]}]
    description = {"excluded_documents": list(excluded), "opted_out_documents": list(opted_out)}
    files = {"index.json": {"splits": {"train": entries}}, "train/0.spans.parquet": spans}
    files["shard_set.json"] = description
    nights_stats = [{"day": day, "version": version} for day, version in nights]
    identity = {"nights": nights_stats, "excluded": list(excluded), "docs": list(docs), "opted_out": list(opted_out)}
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
    superseded = shard_set(store, [("d1", "v1"), ("d2", "v2")], excluded=("a",))  # read legitimately: continue
    assert plan_continuation(store, parent, superseded, tokenizer, {"preset": "tiny"}).mode == "continue"
    opted_out = shard_set(store, [("d1", "v1"), ("d2", "v2")], excluded=("a",), opted_out=("a",))
    plan = plan_continuation(store, parent, opted_out, tokenizer, {"preset": "tiny"})
    assert plan.mode == "scratch" and "no clean ancestor" in plan.reason  # the only model read it


def model(store, tokenizer, shards, read, parent=None, generation=0):
    """A base model whose run read the doc_ids `read` (its documents_read.parquet), continuing `parent`."""
    files = {"checkpoint/model.safetensors": f"weights {read}".encode(), "checkpoint/optimizer.bin": b"adam",
             "documents_read.parquet": pa.table({"doc_id": list(read)})}  # fmt: skip
    upstream = [shards, tokenizer, *([parent] if parent else [])]
    return publish(store, "base_model", {"preset": "tiny"}, upstream, files, stats={"generation": generation},
                   extra_identity={"read": list(read)})  # fmt: skip


def test_an_opt_out_rebuilds_from_the_newest_ancestor_that_never_read_it(tmp_path):
    store = ArtifactStore(tmp_path)
    tokenizer = publish(store, "tokenizer", {}, [], {"t.json": {}}, stats={"fingerprint": "fp"})
    night1 = shard_set(store, [("d1", "v1")], docs=("a", "b"))
    night2 = shard_set(store, [("d1", "v1"), ("d2", "v2")], docs=("a", "b", "c", "d"))
    root = model(store, tokenizer, night1, ("a", "b"))
    second = model(store, tokenizer, night2, ("c", "d", "a"), parent=root, generation=1)
    night3 = [("d1", "v1"), ("d2", "v2"), ("d3", "v3")]
    tonight = shard_set(store, night3, docs=("a", "b", "c", "d", "e"), excluded=("c",), opted_out=("c",))
    plan = plan_continuation(store, second, tonight, tokenizer, {"preset": "tiny"})
    assert plan.mode == "continue" and plan.parent.version == root.version and plan.rebuild_of == second.version
    assert plan.new_days == ["d2", "d3"] and plan.generation == 1  # replays night 2 (without c), then night 3
    assert f"rebuilt from base_model/{root.version}" in plan.reason and "1 opted-out" in plan.reason
    read_by_root = shard_set(store, night3, docs=("a", "b", "c", "d", "e"), excluded=("b",), opted_out=("b",))
    plan = plan_continuation(store, second, read_by_root, tokenizer, {"preset": "tiny"})
    assert plan.mode == "scratch" and "no clean ancestor" in plan.reason
    never_read = shard_set(store, night3, docs=("a", "b", "c", "d", "e"), excluded=("e",), opted_out=("e",))
    plan = plan_continuation(store, second, never_read, tokenizer, {"preset": "tiny"})
    assert plan.mode == "continue" and plan.parent.version == second.version and plan.rebuild_of is None


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
