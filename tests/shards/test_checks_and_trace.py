"""Asset checks on shard directories (passing, and failing on planted faults) and tracing tokens to URLs."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.corpus import read_corpus
from data_code.document import TRAIN, VALIDATION
from data_code.shards import check_eos_count, check_nonempty, check_split_disjoint, check_token_ids, trace
from tests.shards.helpers import split_doc_ids

CHECKS = (check_token_ids, check_nonempty, check_eos_count, check_split_disjoint)


@pytest.fixture
def faulty(shards, tmp_path):
    """A copy of the shard directory to plant faults in (same sizes, so only the checks can notice)."""
    copy = shutil.copytree(shards[0], tmp_path / "faulty")
    index = json.loads((copy / "index.json").read_text())
    return copy, index


def _poke(path, position: int, value: int) -> None:
    tokens = np.memmap(path, dtype=np.uint16, mode="r+")
    tokens[position] = value
    tokens.flush()


def test_all_checks_pass_on_a_good_build(shards):
    for check in CHECKS:
        passed, message = check(shards[0])
        assert passed, message
    assert "EOS count equals document count" in check_eos_count(shards[0])[1]


def test_token_id_check_catches_an_id_past_the_vocabulary(faulty):
    copy, index = faulty
    _poke(copy / index["splits"][TRAIN][2]["file"], 7, index["vocab_size"] + 5)
    passed, message = check_token_ids(copy)
    assert not passed and "train/00002.bin" in message and str(index["vocab_size"] + 5) in message


def test_eos_check_catches_a_lost_document_boundary(faulty):
    copy, index = faulty
    path = copy / index["splits"][VALIDATION][0]["file"]
    first_eos = int(np.flatnonzero(np.fromfile(path, dtype=np.uint16) == index["eos_id"])[0])
    _poke(path, first_eos, 300)
    passed, message = check_eos_count(copy)
    assert not passed and "validation" in message


def test_nonempty_and_disjoint_checks_catch_their_faults(faulty):
    copy, index = faulty
    index["splits"][VALIDATION] = []
    (copy / "index.json").write_text(json.dumps(index))
    passed, message = check_nonempty(copy)
    assert not passed and "'validation' has no shards" in message

    copy2 = shutil.copytree(copy.parent / "faulty", copy.parent / "leaky")
    index = json.loads((copy2 / "index.json").read_text())
    index["splits"][VALIDATION] = index["splits"][TRAIN][:1]  # the first train shard posing as validation
    (copy2 / "index.json").write_text(json.dumps(index))
    passed, message = check_split_disjoint(copy2)
    assert not passed and "both train and validation" in message


def test_trace_resolves_random_offsets_to_the_right_url(shards, corpus_path):
    shards_dir, _ = shards
    index = json.loads((shards_dir / "index.json").read_text())
    corpus = read_corpus(corpus_path)
    # Independent answer: walk EOS tokens through the whole split; doc_ids come from the sidecars in order.
    tokens = np.concatenate([np.fromfile(shards_dir / e["file"], dtype=np.uint16) for e in index["splits"][TRAIN]])
    document_number = np.concatenate([[0], np.cumsum(tokens == index["eos_id"])[:-1]])
    doc_ids = split_doc_ids(shards_dir, TRAIN)
    shard_tokens = index["splits"][TRAIN][0]["tokens"]
    rng = random.Random(3)
    for _ in range(40):
        shard = rng.randrange(len(index["splits"][TRAIN]) - 1)  # full shards only: the last ends in padding
        offset = rng.randrange(shard_tokens)
        found = trace(shards_dir, TRAIN, shard, offset, corpus_path)
        expected = doc_ids[document_number[shard * shard_tokens + offset]]
        assert found["doc_id"] == expected
        assert found["url"] == corpus[expected]["url"] and found["domain"] == corpus[expected]["domain"]
        assert found["license"] == corpus[expected]["license"]
        assert found["fetch_time"] == corpus[expected]["fetch_time"].isoformat()
        assert found["token_start"] <= offset < found["token_end"]


def test_trace_refuses_padding_and_missing_places(shards, corpus_path, tmp_path):
    shards_dir, stats = shards
    last = stats["shards_validation"] - 1
    entry = json.loads((shards_dir / "index.json").read_text())["splits"][VALIDATION][last]
    if entry["padding_tokens"]:
        with pytest.raises(ValueError, match="padding"):
            trace(shards_dir, VALIDATION, last, entry["tokens"] - 1, corpus_path)
    with pytest.raises(ValueError, match="shard 999 not in split"):
        trace(shards_dir, TRAIN, 999, 0, corpus_path)
    with pytest.raises(ValueError, match="split 'test' not in"):
        trace(shards_dir, "test", 0, 0, corpus_path)
    other = tmp_path / "other.parquet"
    pq.write_table(pq.read_table(corpus_path).slice(0, 0), other)
    with pytest.raises(ValueError, match="is not in .*other.parquet"):
        trace(shards_dir, TRAIN, 0, 0, other)
