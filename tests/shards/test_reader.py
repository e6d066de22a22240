"""model_code.data.ShardReader: batches, determinism, exact resumption, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from data_code.document import TRAIN
from model_code.data import ShardReader
from tests.shards.helpers import split_tokens


def _reader(shards, **options) -> ShardReader:
    shards_dir, stats = shards
    return ShardReader(shards_dir, options.pop("split", TRAIN), expected_fingerprint=stats["fingerprint"], **options)


def test_one_epoch_yields_every_packed_row_once(shards):
    rows = split_tokens(shards[0], TRAIN).reshape(-1, 33)
    batches = list(_reader(shards, batch_size=8, drop_last=False))
    assert all(batch.shape == (8, 33) and batch.dtype == np.int64 for batch in batches[:-1])
    seen = np.concatenate(batches)
    assert len(seen) == len(rows) == shards[1]["sequences_train"]
    assert sorted(map(bytes, seen.astype(np.uint16))) == sorted(map(bytes, rows))
    assert not np.array_equal(seen, rows)  # shuffled, not file order
    assert len(list(_reader(shards, batch_size=8))) == len(rows) // 8 == len(_reader(shards, batch_size=8))


def test_xy_pairs_are_shifted_by_one(shards):
    x, y = next(iter(_reader(shards, batch_size=4, as_xy=True)))
    assert x.shape == y.shape == (4, 32)
    assert np.array_equal(x[:, 1:], y[:, :-1])


def test_order_is_deterministic_for_a_seed(shards):
    first = np.concatenate(list(_reader(shards, seed=5, batch_size=16)))
    again = np.concatenate(list(_reader(shards, seed=5, batch_size=16)))
    other = np.concatenate(list(_reader(shards, seed=6, batch_size=16)))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.mark.parametrize("stop_after", [1, 14, 15, 40])  # 14/15 straddle the end of the first shard
def test_resumed_reader_continues_exactly_where_it_stopped(shards, stop_after):
    whole = list(_reader(shards, seed=2, batch_size=8))
    reader = _reader(shards, seed=2, batch_size=8)
    iterator = iter(reader)
    for _ in range(stop_after):
        next(iterator)
    resumed = list(_reader(shards, seed=2, batch_size=8, position=reader.position))
    assert len(resumed) == len(whole) - stop_after
    assert all(np.array_equal(a, b) for a, b in zip(resumed, whole[stop_after:], strict=True))


def test_shards_from_another_tokenizer_are_refused_naming_both_fingerprints(shards):
    shards_dir, stats = shards
    with pytest.raises(ValueError) as error:
        ShardReader(shards_dir, TRAIN, expected_fingerprint="0" * 64)
    assert stats["fingerprint"] in str(error.value) and "0" * 64 in str(error.value)
    assert str(shards_dir) in str(error.value)


def test_truncated_or_altered_shard_file_is_named(shards, tmp_path):
    copy = shutil.copytree(shards[0], tmp_path / "copy")
    index = json.loads((copy / "index.json").read_text())
    victim = copy / index["splits"][TRAIN][3]["file"]
    data = victim.read_bytes()
    victim.write_bytes(data[:-66])  # two rows short
    with pytest.raises(ValueError, match=r"train/00003\.bin has \d+ bytes.*truncated"):
        ShardReader(copy, TRAIN, expected_fingerprint=None)
    victim.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # same size, one bit flipped
    ShardReader(copy, TRAIN, expected_fingerprint=None)  # size alone cannot tell
    with pytest.raises(ValueError, match=r"train/00003\.bin does not match its sha256"):
        ShardReader(copy, TRAIN, expected_fingerprint=None, verify_sha256=True)


def test_bad_position_and_split_are_refused(shards):
    with pytest.raises(ValueError, match="position"):
        _reader(shards, position=(999, 0))
    with pytest.raises(ValueError, match="split 'test'"):
        _reader(shards, split="test")
