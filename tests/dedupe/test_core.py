"""The shared core: exact normalization and hashes, determinism across processes, parameters, ordering, config."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from data_code.dedupe.config import DedupeConfig, predict_peak_memory_bytes
from data_code.dedupe.core import (
    EMPTY_BAND_KEY,
    SENTINEL_MINHASH,
    MinHasher,
    arrow_shingle_sets,
    band_keys,
    batch_shingle_hashes,
    buffer_shingle_hashes,
    choose_bands_rows,
    exact_key,
    exact_key_words,
    hash_arrow,
    jaccard,
    normalize_arrow,
    normalize_bytes,
    normalize_text,
    representative_order_key,
    shingle_hashes,
)
from lineage.identity import versioned_fields

SENTENCE = "the cat sat on the mat today"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  Tabs\tand\nnewlines\r\n  ", "tabs and newlines"),
        ("Café naïve Ångström", "cafe naive angstrom"),
        ("Price: $1,299.99 in 2024", "price 0 000 00 in 0000"),
        ("ﬁne Ｆｕｌｌwidth", "fine fullwidth"),  # NFKC folds ligatures and full-width letters
        ("don't—stop…now", "don t stop now"),
        ("x\x00y\x07z", "x y z"),  # control characters become separators
        ("soft\xadhyphen", "softhyphen"),  # invisible format characters vanish
        ("lone \ud800 surrogate", "lone surrogate"),
        ("٣ arabic digit", "0 arabic digit"),
        ("", ""),
        ("!!! ... ???", ""),
    ],
)
def test_normalize_text_exact(text, expected):
    assert normalize_text(text) == expected
    assert normalize_bytes(text) == expected.encode()


def test_shingle_hashes_exact_values():
    assert shingle_hashes(SENTENCE, 5).tolist() == [8253986260505668982, 15126606417398750889, 15508466001081016795]
    assert shingle_hashes("hello world", 3).tolist() == [12612380898092409769]  # shorter than ngram: one shingle
    assert shingle_hashes("", 5).dtype == np.uint64 and len(shingle_hashes("", 5)) == 0


def test_shingles_are_a_sorted_set_and_batches_agree():
    repeated = shingle_hashes("a b c d e a b c d e a b c d e", 5)
    assert len(repeated) == 5 and np.all(np.diff(repeated.astype(np.float64)) > 0)
    flat, offsets = batch_shingle_hashes([SENTENCE.encode(), b"", b"hello world"], 5)
    assert offsets.tolist() == [0, 3, 3, 4]
    assert np.array_equal(np.unique(flat[:3]), shingle_hashes(SENTENCE, 5))


def test_signatures_and_band_keys():
    hasher = MinHasher(num_perm=8, seed=1)
    signatures = hasher.signatures([shingle_hashes(SENTENCE, 5), np.empty(0, np.uint64)])
    assert signatures.dtype == np.uint32 and signatures.shape == (2, 8)
    assert signatures[0].tolist() == [
        2882912917,
        3411240059,
        534333669,
        496999600,
        507244367,
        462002020,
        1575668453,
        1502386970,
    ]
    folded = [(x ^ (x >> 32)) & 0xFFFFFFFF for x in shingle_hashes(SENTENCE, 5).tolist()]  # the documented family
    expected = [
        min((int(a) * x + int(b)) % 2**32 for x in folded)
        for a, b in zip(hasher.multipliers, hasher.increments, strict=True)
    ]
    assert signatures[0].tolist() == expected and np.all(signatures[1] == SENTINEL_MINHASH)
    keys = band_keys(signatures, bands=2, rows=4)
    assert keys.shape == (2, 2) and keys.dtype == np.uint64
    assert np.all(keys[1] == EMPTY_BAND_KEY) and np.all(keys[0] != EMPTY_BAND_KEY)
    assert keys[0, 0] != band_keys(signatures[:, [4, 5, 6, 7, 0, 1, 2, 3]], 2, 4)[0, 1]  # band index is mixed in
    assert not np.array_equal(MinHasher(8, seed=2).signatures([shingle_hashes(SENTENCE, 5)]), signatures[:1])


def test_signatures_estimate_jaccard_like_independent_permutations():
    """The 32-bit family behaves like independent random permutations: on random set pairs of known Jaccard J, each
    permutation agrees with probability J, the estimate's variance is J(1-J)/K, and a band of r rows matches with
    probability J^r (the LSH S-curve)."""
    rng, hasher, pairs = np.random.default_rng(0), MinHasher(112, seed=1), 3000
    for common, only in ((100, 50), (160, 20), (180, 10)):  # J = 0.5, 0.8, 0.9
        sets = []
        for _ in range(pairs):
            values = rng.integers(0, 2**64, common + 2 * only, dtype=np.uint64)
            sets += [values[: common + only], np.concatenate([values[:common], values[common + only :]])]
        signatures = hasher.signatures(sets)
        agree = signatures[0::2] == signatures[1::2]  # (pairs, K)
        similarity = common / (common + 2 * only)
        assert abs(agree.mean() - similarity) < 0.005
        assert agree.mean(axis=1).var() * 112 == pytest.approx(similarity * (1 - similarity), rel=0.15)
        bands = band_keys(signatures, 14, 8)
        assert (bands[0::2] == bands[1::2]).mean() == pytest.approx(similarity**8, abs=0.01)


def test_one_pass_hashing_equals_the_step_by_step_definition():
    texts = pa.array(
        [
            "Hello, World!",
            "",
            "Café — naïve x y z w",
            "  a  b ",
            "one two three four five six",
            "ÀÉ" * 30,
            "x" * 50 + " tail",
            "ascii first, then ü " * 4,
            "!!",
        ]
    )
    hasher = MinHasher(16, seed=3)
    for array, max_chars in ((texts, 1000), (texts, 12), (texts, 1), (texts.slice(2, 5), 1000)):
        buffer, offsets = normalize_arrow(array, max_chars)
        exact, signatures = hash_arrow(array, max_chars, 5, hasher)
        assert np.array_equal(exact, exact_key_words(buffer, offsets))
        assert np.array_equal(signatures, hasher.batch_signatures(*buffer_shingle_hashes(buffer, offsets, 5)))
        flat, set_offsets = arrow_shingle_sets(array, max_chars, 5)
        for i in range(len(array)):
            normalized = bytes(buffer[offsets[i] : offsets[i + 1]]).decode()
            assert np.array_equal(flat[set_offsets[i] : set_offsets[i + 1]], shingle_hashes(normalized, 5))
            assert exact[i].astype(">u8").tobytes().hex() == exact_key(normalized)


def test_signatures_equal_in_another_process():
    code = (
        "from data_code.dedupe.core import MinHasher, shingle_hashes, normalize_text;"
        "s = MinHasher(112, 7).signatures([shingle_hashes(normalize_text(t), 5) for t in ['Alpha beta, gamma! delta "
        "epsilon zeta', 'Ünïcode text here too ok']]);print(s.tolist())"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    texts = ["Alpha beta, gamma! delta epsilon zeta", "Ünïcode text here too ok"]
    here = MinHasher(112, 7).signatures([shingle_hashes(normalize_text(t), 5) for t in texts])
    assert eval(there) == here.tolist()


def test_exact_key_and_jaccard():
    assert exact_key("abc") == "acac34e7bb94b3fa99d5824610dca9e7"
    assert exact_key("a b") != exact_key("ab") and exact_key("a b") != exact_key("b a")
    assert exact_key(normalize_text("Hello, World")) == exact_key(normalize_text("hello world!!"))
    a = np.array([1, 2, 3, 4], np.uint64)
    assert jaccard(a, np.array([3, 4, 5, 6], np.uint64)) == pytest.approx(2 / 6)
    assert jaccard(a, a) == 1.0 and jaccard(a, np.empty(0, np.uint64)) == 0.0


def test_choose_bands_rows_uses_datasketch_weights():
    assert choose_bands_rows(0.8, 112) == (8, 14)  # bands * rows == num_perm
    assert choose_bands_rows(0.8, 112, exact_product=False) == (9, 12)  # datasketch's _optimal_param itself
    bands, rows = choose_bands_rows(0.5, 128, fp_weight=0.9, fn_weight=0.1)
    assert bands * rows == 128 and rows >= choose_bands_rows(0.5, 128)[1]  # fewer false positives: longer bands


def test_representative_order_key():
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    candidates = [
        (None, early, "a"),
        (0.5, late, "b"),
        (0.9, late, "z"),
        (0.9, early, "y"),
        (0.9, early, "x"),
        (0.9, None, "c"),
        (float("nan"), early, "d"),
    ]
    ordered = sorted(candidates, key=lambda c: representative_order_key(*c))
    assert [c[2] for c in ordered] == ["x", "y", "z", "c", "b", "a", "d"]


def test_config_validation_and_versioning():
    with pytest.raises(ValueError, match="bands \\* rows must equal num_perm"):
        DedupeConfig(bands=10, rows=8)
    with pytest.raises(ValueError, match="engine"):
        DedupeConfig(engine="dask")
    with pytest.raises(ValueError, match="threshold"):
        DedupeConfig(threshold=0)
    with pytest.raises(ValueError, match="workers"):
        DedupeConfig(workers=0)
    versioned = versioned_fields(DedupeConfig())
    assert {"engine", "workers", "batch_size", "spark_master"}.isdisjoint(versioned)
    assert {"ngram", "num_perm", "bands", "rows", "threshold", "seed", "max_text_chars"} <= set(versioned)


def test_predicted_memory_grows_with_documents_and_batch():
    config = DedupeConfig(workers=2, batch_size=256)  # both corpora below fill the pipeline (5 batches in flight)
    small = predict_peak_memory_bytes(10_000, 1000, config)
    assert predict_peak_memory_bytes(20_000, 1000, config) - small == 10_000 * (76 + 8 * config.bands)
    assert predict_peak_memory_bytes(10_000, 1000, DedupeConfig(workers=2, batch_size=1024)) > small


def test_predicted_memory_of_a_small_corpus_counts_only_its_own_batch():
    config = DedupeConfig(workers=2, batch_size=2048)
    tiny, one_batch = predict_peak_memory_bytes(100, 10_000, config), predict_peak_memory_bytes(2048, 10_000, config)
    assert tiny < one_batch / 2  # 100 documents are not hashed as five full batches of 2,048
    assert tiny < 100 * 2**20


def test_arrow_batch_normalization_equals_the_reference():
    texts = [
        "Hello, World!",
        "",
        "Café — naïve",
        "  spaced   out  ",
        "x" * 50 + " tail",
        "ÀÉ" * 30,
        "!!",
        "A" * 40 + "É",
    ]
    buffer, offsets = normalize_arrow(pa.array(texts).slice(0), max_chars=40)
    batch = [bytes(buffer[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    assert batch == [normalize_bytes(t[:40]) for t in texts]  # truncation counts characters, not bytes
    sliced_buffer, sliced_offsets = normalize_arrow(pa.array(texts).slice(2, 2), max_chars=100)
    assert bytes(sliced_buffer).decode() == normalize_text(texts[2]) + normalize_text(texts[3])
    assert sliced_offsets.tolist() == [0, len(normalize_text(texts[2])), len(sliced_buffer)]
    flat, shingle_offsets = buffer_shingle_hashes(buffer, offsets, 2)
    assert np.array_equal(np.unique(flat[shingle_offsets[2] : shingle_offsets[3]]), shingle_hashes("cafe naive", 2))
    keys = exact_key_words(buffer, offsets)
    assert keys[0].astype(">u8").tobytes().hex() == exact_key("hello world")
