"""Dedupe against history: unchanged pages, duplicates of earlier days, superseded versions, and the index parts."""

import hashlib
import json
import random
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.history import (
    KEYS_FILE,
    PART_FILE,
    REBUILD_COMMAND,
    DayArtifact,
    HistoryError,
    HistoryIndex,
    history_days,
    part_is_current,
    write_part,
)
from data_code.dedupe.stage import deduplicate
from data_code.document import DOCUMENT_SCHEMA

CONFIG = DedupeConfig(workers=1)
DAY1, DAY2, DAY3 = "2026-03-01", "2026-03-02", "2026-03-03"
_WORDS = [f"word{i}" for i in range(5000)]


def text(seed: int, words: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def edited(original: str, position: int, word: str = "changed") -> str:
    words = original.split()
    words[position] = word
    return " ".join(words)


def document(url: str, body: str) -> dict:
    doc_id = hashlib.sha256(f"{url}\n{body}".encode()).hexdigest()[:24]
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    return {"doc_id": doc_id, "url": url, "domain": "site.test", "text": body, "fetch_time": fetched}


def write_day(tmp_path, name: str, pages: dict[str, str]) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist([document(u, t) for u, t in pages.items()], schema=DOCUMENT_SCHEMA), path)
    return str(path)


def dedupe_day(tmp_path, day: str, pages: dict[str, str], earlier: list[DayArtifact], config=CONFIG, **kwargs):
    """One day through the stage, then its part written: what the asset does."""
    out = tmp_path / f"out-{day}"
    stats = deduplicate(write_day(tmp_path, day, pages), out, config, history=HistoryIndex.load(earlier, config),
                        day=day, **kwargs)  # fmt: skip
    artifact = DayArtifact(day, f"v-{day}", str(out / "documents.parquet"), str(out / "superseded.parquet"),
                           tmp_path / "index" / day)  # fmt: skip
    write_part(artifact, config)
    return stats, artifact, out


PAGES = {f"https://site.test/{i}": text(i) for i in range(12)}


def test_second_day_keeps_only_what_is_new_and_names_every_removal(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    tonight = {url: body for url, body in PAGES.items() if url not in ("https://site.test/5", "https://site.test/6")}
    tonight["https://site.test/0"] = edited(PAGES["https://site.test/0"], 7)  # a sentence changed
    tonight["https://site.test/copy"] = PAGES["https://site.test/5"]  # another URL, same text
    tonight["https://site.test/near"] = edited(PAGES["https://site.test/6"], 150, "zzz")  # another URL, 1 word off
    tonight["https://site.test/fresh"] = text(99)
    stats, _, out = dedupe_day(tmp_path, DAY2, tonight, [first])
    assert (stats.new, stats.superseding, stats.unchanged) == (1, 1, 9)  # pages 5 and 6 left the site tonight
    assert (stats.exact_duplicates_of_history, stats.near_duplicates_of_history) == (1, 1)
    kept = pq.read_table(out / "documents.parquet").column("url").to_pylist()
    assert sorted(kept) == ["https://site.test/0", "https://site.test/fresh"]
    reasons = {row["url"]: row["reason"] for row in pq.read_table(out / "rejections.parquet").to_pylist()}
    five, six = (
        document("https://site.test/5", PAGES["https://site.test/5"]),
        document("https://site.test/6", PAGES["https://site.test/6"]),
    )
    assert reasons["https://site.test/copy"] == f"exact_duplicate_of_history:{five['doc_id']}@{DAY1}"
    assert reasons["https://site.test/near"] == f"near_duplicate_of_history:{six['doc_id']}@{DAY1}"
    assert reasons["https://site.test/3"].startswith("unchanged:") and reasons["https://site.test/3"].endswith(DAY1)
    [superseded] = pq.read_table(out / "superseded.parquet").to_pylist()
    old = document("https://site.test/0", PAGES["https://site.test/0"])
    new = document("https://site.test/0", tonight["https://site.test/0"])
    assert superseded == {"url": "https://site.test/0", "doc_id": old["doc_id"], "day": DAY1,
                          "new_doc_id": new["doc_id"], "new_day": DAY2, "new_kept": True}  # fmt: skip


def test_a_superseded_version_no_longer_counts_as_history(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    changed = {**PAGES, "https://site.test/0": text(500)}  # rewritten entirely
    _, second, _ = dedupe_day(tmp_path, DAY2, changed, [first])
    index = HistoryIndex.load([first, second], CONFIG)
    old = document("https://site.test/0", PAGES["https://site.test/0"])["doc_id"]
    assert old not in index.doc_ids and len(index) == len(PAGES)
    # Night 3 brings the old text back under another URL: it is no longer in the training set, so it is kept.
    revived = {"https://site.test/revived": PAGES["https://site.test/0"]}
    stats, _, _ = dedupe_day(tmp_path, DAY3, revived, [first, second])
    assert stats.new == 1 and stats.exact_duplicates_of_history == 0


def test_a_changed_page_removed_as_a_duplicate_within_the_day_still_supersedes(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    moved = text(700)
    tonight = {"https://site.test/0": moved, "https://site.test/other": moved}
    stats, _, out = dedupe_day(tmp_path, DAY2, tonight, [first])
    [superseded] = pq.read_table(out / "superseded.parquet").to_pylist()
    assert superseded["url"] == "https://site.test/0" and stats.superseded == 1


def test_history_none_is_per_day_dedupe(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    config = DedupeConfig(workers=1, history="none")
    stats = deduplicate(write_day(tmp_path, "again", PAGES), tmp_path / "none", config)
    assert stats.documents_kept == len(PAGES) and stats.unchanged == 0 and stats.new == len(PAGES)
    assert history_days("none", DAY2, [DAY1]) == []


def test_history_windows():
    earlier = ["2026-02-20", "2026-02-27", "2026-02-28", DAY1, DAY2]
    assert history_days("all", DAY2, earlier) == ["2026-02-20", "2026-02-27", "2026-02-28", DAY1]
    assert history_days("last_2_days", DAY2, earlier) == ["2026-02-28", DAY1]
    assert history_days("last_1_day", DAY2, earlier) == [DAY1]


@pytest.mark.parametrize("bad", ["some", "last_0_days", "last_x_days", "", 3])
def test_a_bad_history_setting_is_refused(bad):
    with pytest.raises(ValueError, match="history must be 'all', 'none' or 'last_N_days'"):
        DedupeConfig(history=bad)


def test_a_missing_part_is_a_clear_error_naming_it(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    for name in (PART_FILE, KEYS_FILE):
        (first.part / name).unlink()
        with pytest.raises(HistoryError, match=f"{DAY1}.*{first.version}.*{REBUILD_COMMAND}"):
            HistoryIndex.load([first], CONFIG)
        write_part(first, CONFIG)  # the rebuild: from the day artifact
        assert len(HistoryIndex.load([first], CONFIG)) == len(PAGES)


def test_a_corrupt_part_is_a_clear_error_and_a_rebuild_repairs_it(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    keys = first.part / KEYS_FILE
    data = bytearray(keys.read_bytes())
    data[len(data) // 2] ^= 0xFF
    keys.write_bytes(bytes(data))
    with pytest.raises(HistoryError, match=f"corrupt.*{KEYS_FILE}.*{REBUILD_COMMAND}"):
        HistoryIndex.load([first], CONFIG)
    (first.part / PART_FILE).write_text("{not json")
    with pytest.raises(HistoryError, match="corrupt"):
        HistoryIndex.load([first], CONFIG)
    write_part(first, CONFIG)
    assert len(HistoryIndex.load([first], CONFIG)) == len(PAGES)


def test_a_part_of_another_version_or_other_lsh_parameters_is_refused(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    stale = DayArtifact(first.day, "another-version", first.documents, first.superseded, first.part)
    assert not part_is_current(stale, CONFIG)
    with pytest.raises(HistoryError, match="was made from version"):
        HistoryIndex.load([stale], CONFIG)
    other = DedupeConfig(workers=1, num_perm=128, bands=16, rows=8)
    with pytest.raises(HistoryError, match="hashed with"):
        HistoryIndex.load([first], other)


def test_a_day_rematerialized_replaces_its_part_and_never_duplicates_it(tmp_path):
    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    again = DayArtifact(first.day, "v-other-config", first.documents, first.superseded, first.part)
    write_part(again, CONFIG)
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == [DAY1]  # one part per day, no leftovers
    assert json.loads((first.part / PART_FILE).read_text())["version"] == "v-other-config"
    assert len(HistoryIndex.load([again], CONFIG)) == len(PAGES)


@pytest.mark.spark
def test_local_and_spark_engines_give_the_same_answer_against_history(tmp_path):
    from data_code.spark import build_spark_session

    _, first, _ = dedupe_day(tmp_path, DAY1, PAGES, [])
    tonight = {**PAGES, "https://site.test/0": edited(PAGES["https://site.test/0"], 3),
               "https://site.test/near": edited(PAGES["https://site.test/6"], 150, "zzz"),
               "https://site.test/near2": edited(PAGES["https://site.test/6"], 151, "yyy")}  # fmt: skip
    path = write_day(tmp_path, "tonight", tonight)
    session = build_spark_session("local[2]", "lmforge-test-history")
    try:
        outputs = {}
        for engine in ("local", "spark"):
            config = DedupeConfig(workers=1, engine=engine)
            out = tmp_path / engine
            deduplicate(path, out, config, spark_session=session, history=HistoryIndex.load([first], config), day=DAY2)
            outputs[engine] = [
                pq.read_table(out / name).sort_by("doc_id").to_pylist()
                for name in ("documents.parquet", "rejections.parquet", "superseded.parquet")
            ]
    finally:
        session.stop()
    assert outputs["local"] == outputs["spark"]
