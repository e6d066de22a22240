"""Continued pretraining: a run starts from its parent checkpoint's weights and optimizer state, re-warms and
re-decays its learning rate; a bad optimizer state falls back to a fresh optimizer, bad weights are refused."""

import shutil
from pathlib import Path

import pytest

from model_code.checkpoint import MODEL_FILE, OPTIMIZER_FILE, list_checkpoints
from model_code.optim import learning_rate_at
from model_code.pretrain import train
from tests.pretrain.conftest import read_metrics


def first_loss(stats) -> float:
    return next(r["loss"] for r in read_metrics(stats["metrics_path"]) if "loss" in r)


@pytest.fixture
def parent(make_config):
    """A parent run of 60 steps and its last checkpoint."""
    stats = train(make_config("parent", max_steps=60, learning_rate=1e-2, checkpoint_every=60, log_every=1))
    return stats, list_checkpoints(Path(stats["model_dir"]).parent)[-1]


def test_a_continued_run_starts_where_its_parent_ended(make_config, parent):
    parent_stats, checkpoint = parent
    fresh = train(make_config("fresh", max_steps=5, log_every=1, learning_rate=1e-2))
    continued = train(make_config("child", max_steps=5, log_every=1, learning_rate=1e-2, init_from=str(checkpoint)))
    assert continued["warm_start"]["optimizer"] == "loaded" and continued["warm_start"]["parent_step"] == 60
    assert first_loss(continued) < first_loss(fresh) - 0.5  # it learned from where the parent was
    assert abs(first_loss(continued) - parent_stats["final_loss"]) < 0.5
    rates = [r["lr"] for r in read_metrics(continued["metrics_path"]) if "lr" in r]
    assert rates[0] < rates[1]  # re-warmed from its own step 0
    assert rates[0] == pytest.approx(1e-2 * 0.5 / 5)  # warming towards learning_rate * rewarm_lr_ratio (0.5)


def test_a_corrupt_optimizer_state_falls_back_to_a_fresh_optimizer(make_config, parent, tmp_path):
    _, checkpoint = parent
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    (copy / OPTIMIZER_FILE).write_bytes(b"not a torch file")
    continued = train(make_config("child", max_steps=3, log_every=1, init_from=str(copy)))
    assert continued["warm_start"]["optimizer"].startswith("fresh (optimizer.bin")


def test_weights_that_do_not_load_are_refused_naming_the_file(make_config, parent, tmp_path):
    _, checkpoint = parent
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    (copy / MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=f"parent checkpoint .*copy: its weights {MODEL_FILE} do not load"):
        train(make_config("child", max_steps=3, init_from=str(copy)))


def test_warmup_stable_decay_holds_the_peak_then_decays_over_the_last_fraction():
    rates = [learning_rate_at(s, peak=1.0, warmup_steps=10, total_steps=100, min_ratio=0.1, schedule="wsd",
                              decay_fraction=0.2) for s in range(100)]  # fmt: skip
    assert rates[9] == 1.0 and rates[10:80] == [1.0] * 70
    assert rates[80] < 1.0 and all(a > b for a, b in zip(rates[80:], rates[81:], strict=False))
    assert rates[-1] == pytest.approx(0.1)


@pytest.mark.parametrize(("field", "value"), [("schedule", "linear"), ("decay_fraction", 0.0)])
def test_bad_schedule_settings_name_the_field(make_config, field, value):
    with pytest.raises(ValueError, match=field):
        make_config(**{field: value})


def test_a_continued_run_reads_its_new_days_plus_a_replay_share(tmp_path):
    """On a shard set of three days: the new day's rows all, and replayed rows a quarter of the whole."""
    import json

    import numpy as np

    from model_code.data import ShardReader

    directory = tmp_path / "set"
    (directory / "train").mkdir(parents=True)
    entries, files = [], {}
    for number, (day, rows) in enumerate([("d1", 40), ("d2", 40), ("d3", 30)]):
        name = f"train/{number:05d}.bin"
        np.full(rows * 5, number, np.uint16).tofile(directory / name)
        files[name] = {"sha256": "-", "bytes": rows * 5 * 2}
        entries.append({"file": name, "spans": name, "tokens": rows * 5, "rows": rows, "day": day,
                        "excluded_rows": [0] if day == "d1" else []})  # fmt: skip
    layout = {"seq_len": 4, "row_tokens": 5, "dtype": "<u2", "vocab_size": 10, "eos_id": 0, "pad_id": 1}
    (directory / "index.json").write_text(json.dumps({**layout, "splits": {"train": entries}}))
    (directory / "shards.json").write_text(json.dumps({"tokenizer_fingerprint": "fp", "files": files}))
    reader = ShardReader(directory, "train", expected_fingerprint="fp", batch_size=1, drop_last=False,
                         days=("d3",), replay_fraction=0.25)  # fmt: skip
    rows = np.concatenate(list(reader))[:, 0]
    assert (rows == 2).sum() == 30 and (rows != 2).sum() == 10  # 30 new rows, 10 replayed = 25 % of 40
    again = ShardReader(directory, "train", expected_fingerprint="fp", batch_size=1, drop_last=False,
                        days=("d3",), replay_fraction=0.25)  # fmt: skip
    assert np.array_equal(np.concatenate(list(again))[:, 0], rows)  # the same sample for the same seed
    filled = ShardReader(directory, "train", expected_fingerprint="fp", batch_size=1, drop_last=False,
                         days=("d3",), replay_fraction=0.25, fill_rows=60)  # fmt: skip
    rows = np.concatenate(list(filled))[:, 0]
    assert (rows == 2).sum() == 30 and (rows != 2).sum() == 30  # a budget of 60 rows: earlier days fill it
    with pytest.raises(ValueError, match="holds no row of the days"):
        ShardReader(directory, "train", expected_fingerprint="fp", days=("d9",))


def test_a_killed_continued_run_resumes_from_its_own_checkpoint_bit_exact(make_config, parent):
    from tests.pretrain.test_resume import assert_same_weights

    _, checkpoint = parent
    settings = dict(max_steps=20, checkpoint_every=10, init_from=str(checkpoint))
    first = train(make_config("child", **settings))
    newest = Path(first["model_dir"]).parent / "checkpoints" / "step_000020" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])  # as if killed while the last checkpoint was written
    resumed = train(make_config("child", **settings))
    assert resumed["resumed_from_step"] == 10  # its own checkpoint, not the parent's
    assert resumed["warm_start"]["parent_step"] == 60  # and it still says which parent it continues
    reference = train(make_config("reference", **settings))
    assert_same_weights(Path(reference["model_dir"]), Path(resumed["model_dir"]))


def test_the_reading_record_names_every_row_and_document_read_new_and_replayed(tmp_path):
    """rows_read re-derives what a stream handed out from its seed and end position; the record maps those rows
    to the documents whose spans cross them, per night, and a document never reached is not listed."""
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from model_code.data import TrainStream, rows_read
    from model_code.outputs import write_reading_record

    directory = tmp_path / "set"
    (directory / "train").mkdir(parents=True)
    entries, files = [], {}
    for number, day in enumerate(["d1", "d2"]):
        name, spans = f"train/{number:05d}.bin", f"train/{number:05d}.spans.parquet"
        np.arange(20 * 5, dtype=np.uint16).tofile(directory / name)  # 20 rows of 5 tokens; one document per 2 rows
        starts = list(range(0, 100, 10))
        pq.write_table(pa.table({"token_start": starts, "token_end": [s + 10 for s in starts],
                                 "doc_id": [f"{day}-{i}" for i in range(10)]}), directory / spans)  # fmt: skip
        files[name] = {"sha256": "-", "bytes": 200}
        entries.append({"file": name, "spans": spans, "tokens": 100, "rows": 20, "day": day, "excluded_rows": []})
    layout = {"seq_len": 4, "row_tokens": 5, "dtype": "<u2", "vocab_size": 200, "eos_id": 0, "pad_id": 1}
    (directory / "index.json").write_text(json.dumps({**layout, "splits": {"train": entries}}))
    (directory / "shards.json").write_text(json.dumps({"tokenizer_fingerprint": "fp", "files": files}))
    stream = TrainStream(directory, expected_fingerprint="fp", seed=3, rows=4, days=("d2",), replay_fraction=0.2)
    handed = [stream.next_rows() for _ in range(3)]  # 12 of the 25 rows (20 new + 5 replayed)
    read = rows_read(directory, expected_fingerprint="fp", seed=3, end=stream.position, days=("d2",),
                     replay_fraction=0.2)  # fmt: skip
    assert sum(len(rows) for rows in read.values()) == 12
    first_tokens = sorted(int(batch[0]) for rows in handed for batch in rows)  # token = 5 * row + 0
    assert sorted(5 * int(r) for rows in read.values() for r in rows) == sorted(first_tokens)
    nights = write_reading_record(directory, read, ("d2",), tmp_path)
    table = pq.read_table(tmp_path / "documents_read.parquet").to_pylist()
    expected = {f"{entries[n]['day']}-{int(r) // 2}" for n, rows in read.items() for r in rows}
    assert {row["doc_id"] for row in table} == expected and len(expected) < 20
    assert {row["role"] for row in table if row["day"] == "d1"} <= {"replayed"}
    assert {n["day"]: n["rows"] for n in nights} == {entries[n]["day"]: len(rows) for n, rows in read.items()}
    assert pq.read_table(tmp_path / "rows_read.parquet").num_rows == 12
