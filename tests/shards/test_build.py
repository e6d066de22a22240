"""Building token shards: exact round trip, packing layout, split, determinism, mixture, bad input."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from tokenizers import Tokenizer

from bench.corpus import HOSTS, corpus_texts, read_corpus, write_corpus
from data_code.document import TRAIN, VALIDATION
from data_code.shards import ShardConfig, build_shards
from data_code.shards.layout import token_dtype
from data_code.shards.mixture import split_of
from tests.shards.conftest import SMALL
from tests.shards.helpers import documents_by_eos, split_doc_ids, split_tokens


def test_decoding_the_shards_gives_back_every_document_exactly(shards, corpus_path, tokenizer_dir):
    shards_dir, stats = shards
    index = json.loads((shards_dir / "index.json").read_text())
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    corpus = read_corpus(corpus_path)
    seen = []
    for split in (TRAIN, VALIDATION):
        pieces = documents_by_eos(split_tokens(shards_dir, split), index["eos_id"], index["pad_id"])
        doc_ids = split_doc_ids(shards_dir, split)
        assert len(pieces) == len(doc_ids) == stats[f"documents_{split}"]
        for doc_id, piece in zip(doc_ids, pieces, strict=True):
            # skip_special_tokens=False: a special token in a document's text must come back as that text
            assert tokenizer.decode(piece.tolist(), skip_special_tokens=False) == corpus[doc_id]["text"]
        seen.extend(doc_ids)
    assert sorted(seen) == sorted(corpus)  # every document exactly once, across both splits
    assert seen[:50] != list(corpus)[:50]  # and shuffled


def test_rows_and_shards_are_whole_and_padded_only_at_the_end(shards):
    shards_dir, stats = shards
    index = json.loads((shards_dir / "index.json").read_text())
    assert index["row_tokens"] == SMALL.seq_len + 1 and index["dtype"] == "<u2"
    for split, entries in index["splits"].items():
        assert len(entries) == stats[f"shards_{split}"] >= 1
        for entry in entries[:-1]:
            assert entry["tokens"] == 3993 and entry["padding_tokens"] == 0  # 121 rows of 33 in 4000 tokens
        tokens = split_tokens(shards_dir, split)
        assert len(tokens) % index["row_tokens"] == 0
        assert len(tokens) == stats[f"tokens_{split}"] + stats[f"padding_tokens_{split}"]
        assert stats[f"sequences_{split}"] == len(tokens) // index["row_tokens"]
        assert stats[f"padding_tokens_{split}"] < index["row_tokens"]
    assert stats["shards_train"] > 5  # documents do cross shard boundaries in this test


def test_manifest_records_fingerprint_counts_and_file_digests(shards, tokenizer_dir):
    shards_dir, stats = shards
    manifest = json.loads((shards_dir / "shards.json").read_text())
    fingerprint = json.loads((tokenizer_dir / "fingerprint.json").read_text())["fingerprint"]
    assert manifest["tokenizer_fingerprint"] == stats["fingerprint"] == fingerprint
    assert manifest["seq_len"] == 32 and manifest["splits"][TRAIN]["documents"] == stats["documents_train"]
    on_disk = {str(p.relative_to(shards_dir)) for p in shards_dir.rglob("*") if p.parent != shards_dir}
    assert set(manifest["files"]) == on_disk
    for name, record in manifest["files"].items():
        assert (shards_dir / name).stat().st_size == record["bytes"]


def test_split_is_by_document_hash_and_leaks_nothing(shards, corpus_path):
    shards_dir, _ = shards
    train, validation = set(split_doc_ids(shards_dir, TRAIN)), set(split_doc_ids(shards_dir, VALIDATION))
    assert not train & validation
    assert validation == {doc_id for doc_id in read_corpus(corpus_path) if split_of(doc_id, SMALL) == VALIDATION}
    assert 0.05 < len(validation) / (len(train) + len(validation)) < 0.15


def test_same_seed_same_bytes_whatever_the_batch_size(shards, corpus_path, tokenizer_dir, tmp_path):
    shards_dir, _ = shards
    config = replace(SMALL, batch_documents=37)
    build_shards(str(corpus_path), str(tokenizer_dir), tmp_path / "again", config)
    assert (tmp_path / "again" / "shards.json").read_bytes() == (shards_dir / "shards.json").read_bytes()
    for path in shards_dir.rglob("*.bin"):
        assert (tmp_path / "again" / path.relative_to(shards_dir)).read_bytes() == path.read_bytes()
    other = build_shards(str(corpus_path), str(tokenizer_dir), tmp_path / "seed1", replace(SMALL, seed=1))
    assert split_doc_ids(tmp_path / "seed1", TRAIN) != split_doc_ids(shards_dir, TRAIN)
    assert other["fingerprint"] == shards[1]["fingerprint"]


def test_temperature_flattens_a_skewed_mixture_by_resampling_documents(corpus_path, tokenizer_dir, tmp_path):
    skewed = write_corpus(tmp_path / "skewed.parquet", corpus_texts(), skewed=True)
    domain = {doc_id: row["domain"] for doc_id, row in read_corpus(skewed).items()}
    natural = replace(SMALL, shard_tokens=1_000_000)
    plain = build_shards(str(skewed), str(tokenizer_dir), tmp_path / "t1", natural)
    flat = build_shards(str(skewed), str(tokenizer_dir), tmp_path / "t100", replace(natural, temperature=100.0))
    before = Counter(domain[d] for d in split_doc_ids(tmp_path / "t1", TRAIN))
    after = Counter(domain[d] for d in split_doc_ids(tmp_path / "t100", TRAIN))
    assert before[HOSTS[0]] > 6 * before[HOSTS[2]] and plain["mixture"] == []
    assert all(abs(after[host] / after.total() - 1 / 3) < 0.05 for host in HOSTS)  # ~uniform at T = 100
    assert abs(after.total() - before.total()) < 0.05 * before.total()  # same size, different shares
    assert flat["documents_validation"] == plain["documents_validation"]  # validation is never reweighted
    upsampled = Counter(split_doc_ids(tmp_path / "t100", TRAIN))
    assert max(upsampled.values()) >= 2 and {domain[d] for d, n in upsampled.items() if n > 1} >= {HOSTS[2]}


def test_mixture_weights_pick_sources(corpus_path, tokenizer_dir, tmp_path):
    only = replace(SMALL, mixture_weights={HOSTS[1]: 1.0})
    stats = build_shards(str(corpus_path), str(tokenizer_dir), tmp_path / "only", only)
    corpus = read_corpus(corpus_path)
    assert {corpus[d]["domain"] for d in split_doc_ids(tmp_path / "only", TRAIN)} == {HOSTS[1]}
    assert [row["source"] for row in stats["mixture"] if row["rate"] > 0] == [HOSTS[1]]
    with pytest.raises(ValueError, match="mixture_weights name none"):
        build_shards(str(corpus_path), str(tokenizer_dir), tmp_path / "none", ShardConfig(mixture_weights={"x": 1}))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seq_len", 0, "seq_len must be an integer >= 1"),
        ("shard_tokens", 16, "shard_tokens must hold one row"),
        ("validation_fraction", 1.0, "validation_fraction"),
        ("temperature", 0.0, "temperature"),
        ("mixture_weights", {"a": -1.0}, "mixture_weights"),
    ],
)
def test_bad_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        ShardConfig(**{"seq_len": 32, field: value})


def test_empty_corpus_is_refused(tmp_path, tokenizer_dir):
    empty = write_corpus(tmp_path / "empty.parquet", [])
    with pytest.raises(ValueError, match=r"corpus is empty: .*empty\.parquet"):
        build_shards(str(empty), str(tokenizer_dir), tmp_path / "out", SMALL)


def test_token_dtype_grows_past_uint16():
    assert token_dtype(32_000) == np.uint16 and token_dtype(65_535) == np.uint16
    assert token_dtype(65_536) == np.uint32 and token_dtype(128_256) == np.uint32


def test_batch_sizes_do_not_change_artifact_versions():
    from data_code.tokenizer import TokenizerConfig
    from lineage.identity import versioned_fields

    assert "batch_documents" not in versioned_fields(SMALL) and "shuffle_buffer" in versioned_fields(SMALL)
    assert "batch_size" not in versioned_fields(TokenizerConfig()) and "vocab_size" in versioned_fields(
        TokenizerConfig()
    )
