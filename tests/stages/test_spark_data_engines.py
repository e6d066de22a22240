"""engine: spark gives the local engine's output, byte for byte: extraction (a task per WARC file), the filters and
tokenization (mapInArrow), on Spark local[2] here and on a real standalone cluster (master + worker on 127.0.0.1).

    .venv/bin/pytest -q -m spark tests/stages/test_spark_data_engines.py

The corpus is real: pages of the Python manual (Debian's python3.11-doc; the prose site when it is missing) in
three WARC files, and a fourth WARC file that breaks mid-way: the records before the break are kept, and its
rejection names the file and the byte offset, on both engines alike.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cli.demo_site import PYTHON_MANUAL
from data_code.extract.config import ExtractConfig
from data_code.extract.pipeline import extract_to_parquet
from data_code.filters.config import FilterConfig
from data_code.filters.rules import SHIPPED_RULES
from data_code.filters.stage import OUTPUT_FILES, filter_documents
from data_code.shards.build import build_shards
from data_code.shards.config import ShardConfig
from data_code.spark import build_spark_session, ordered_map, ship_files, shipped_path
from data_code.tokenizer.config import TokenizerConfig
from data_code.tokenizer.train import train_tokenizer
from tests.extract.warcs import Exchange, write_crawl_warc
from tests.spark_cluster import free_port, standalone_cluster
from tests.stages.prose_site import write_prose_site

pytestmark = pytest.mark.spark
PAGES_PER_WARC = 12


def real_pages(tmp_path: Path, count: int) -> list[tuple[str, bytes]]:
    """(url, html) of `count` real pages: the Python manual's library reference, else the prose site."""
    root = PYTHON_MANUAL / "library"
    if not root.is_dir():
        root = tmp_path / "prose"
        write_prose_site(root)
    files = sorted(root.glob("*.html"))[:count]
    return [(f"http://docs.example.org/library/{file.name}", file.read_bytes()) for file in files]


@pytest.fixture(scope="module")
def warcs(tmp_path_factory) -> list[str]:
    """Three WARC files of real pages, then one cut in the middle of its third record."""
    directory = tmp_path_factory.mktemp("warcs")
    pages = real_pages(directory, 4 * PAGES_PER_WARC)
    paths = []
    for number in range(4):
        chunk = pages[number * PAGES_PER_WARC : (number + 1) * PAGES_PER_WARC]
        path = directory / f"night-{number}.warc.gz"
        written = write_crawl_warc(path, [Exchange(url, body) for url, body in chunk])
        paths.append(path)
    broken = paths[-1]
    cut = written[2][0] + 40  # inside the third response record
    broken.write_bytes(broken.read_bytes()[:cut] + gzip.compress(b"WARC/1.1\r\nnot a record"))
    return [str(path) for path in paths]


@pytest.fixture(scope="module")
def spark():
    session = build_spark_session("local[2]", "lmforge-test-data-engines")
    yield session
    session.stop()  # one SparkContext per process: leave none behind for the next module


def extract(warcs: list[str], out: Path, engine: str, spark=None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    config = ExtractConfig(engine=engine, workers=2, batch_records=5)
    stats = extract_to_parquet(warcs, str(out / OUTPUT_FILES[0]), str(out / OUTPUT_FILES[1]), config, spark=spark)
    return comparable(stats.as_stats())


def filter_(documents: Path, out: Path, engine: str, quality_model: str, spark=None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    config = FilterConfig(engine=engine, workers=2, batch_documents=7, languages=("en",), quality_threshold=0.2)
    model = os.path.join(quality_model, "model.bin")
    return comparable(filter_documents(str(documents), out, config, quality_model_path=model, spark=spark).as_stats())


def tokenize(documents: Path, tokenizer_dir: str, out: Path, engine: str, spark=None) -> dict:
    """Token shards of `documents` (small shards, so that there are several, and a small shuffle buffer)."""
    config = ShardConfig(engine=engine, seq_len=64, shard_tokens=65 * 40, shuffle_buffer=16, validation_fraction=0.2)
    config = dataclasses.replace(config, batch_documents=5)
    stats = build_shards(str(documents), tokenizer_dir, out, config, spark=spark)
    return {key: value for key, value in stats.items() if key not in ("elapsed_s", "tokens_per_s", "engine")}


def trained_tokenizer(documents: Path, out: Path) -> str:
    train_tokenizer(str(documents), out, TokenizerConfig(vocab_size=800))
    return str(out)


def shard_files(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file())


def comparable(stats: dict) -> dict:
    return {key: value for key, value in stats.items() if key not in ("elapsed_s", "engine")}


def same_bytes(left: Path, right: Path, names) -> None:
    for name in names:
        assert (left / name).read_bytes() == (right / name).read_bytes(), name


@pytest.mark.slow
def test_extraction_and_filters_on_spark_equal_the_local_engine(spark, warcs, tmp_path, quality_model):
    local, remote = tmp_path / "local", tmp_path / "spark"
    extracted = extract(warcs, local / "documents", "local")
    assert extract(warcs, remote / "documents", "spark", spark) == extracted
    same_bytes(local / "documents", remote / "documents", OUTPUT_FILES[:2])
    assert extracted["documents"] >= 3 * PAGES_PER_WARC - 6 and extracted["rejections_by_reason"]["corrupt_warc"] == 1

    filtered = filter_(local / "documents" / OUTPUT_FILES[0], local / "filtered", "local", quality_model[0])
    on_spark = filter_(remote / "documents" / OUTPUT_FILES[0], remote / "filtered", "spark", quality_model[0], spark)
    assert on_spark == filtered  # the funnel, every count, every reason
    same_bytes(local / "filtered", remote / "filtered", OUTPUT_FILES)  # kept, rejections, rejected samples
    assert 0 < filtered["documents_kept"] < filtered["documents_in"]  # the filters decided something

    kept = local / "filtered" / OUTPUT_FILES[0]
    tokenizer = trained_tokenizer(kept, tmp_path / "tokenizer")
    shards = tokenize(kept, tokenizer, local / "shards", "local")
    assert tokenize(kept, tokenizer, remote / "shards", "spark", spark) == shards
    files = shard_files(local / "shards")
    assert files == shard_files(remote / "shards") and shards["shards"] > 2
    same_bytes(local / "shards", remote / "shards", files)  # token ids, sidecars (token -> doc_id), index


def test_language_rule_sets_on_spark_equal_the_local_engine(spark, tmp_path, quality_model):
    """Debian's translated manual through the per-language rules, with a rules_dir the executors receive whole."""
    reference = Path("/usr/share/debian-reference")
    pages = [
        page for name in ("en", "de", "fr", "ja", "zh-cn") for page in sorted(reference.glob(f"ch0[1-4].{name}.html"))
    ]
    assert pages, "Debian's translated documentation is not installed (bash scripts/setup.sh)"
    warc = tmp_path / "debian.warc.gz"
    write_crawl_warc(warc, [Exchange(f"http://docs.example.org/{page.name}", page.read_bytes()) for page in pages])
    extract([str(warc)], tmp_path / "documents", "local")
    rules = tmp_path / "my-rules"
    shutil.copytree(SHIPPED_RULES, rules)
    japanese = (
        (rules / "ja.rules")
        .read_text()
        .replace("gopher_min_alpha_words_ratio = 0.759", "gopher_min_alpha_words_ratio = 0.5")
    )
    (rules / "ja.rules").write_text(japanese)  # the technical pages keep more Japanese
    config = FilterConfig(
        workers=2,
        batch_documents=3,
        languages=("en", "de", "fr", "ja", "zh"),
        rules_dir=str(rules),
        quality_threshold=0.2,
    )
    model = os.path.join(quality_model[0], "model.bin")
    made = {}
    for engine, session in (("local", None), ("spark", spark)):
        out = tmp_path / engine
        out.mkdir()
        stats = filter_documents(
            str(tmp_path / "documents" / OUTPUT_FILES[0]),
            out,
            dataclasses.replace(config, engine=engine),
            quality_model_path=model,
            spark=session,
        )
        made[engine] = comparable(stats.as_stats())
    assert made["spark"] == made["local"]
    same_bytes(tmp_path / "local", tmp_path / "spark", OUTPUT_FILES)
    languages = made["local"]["filters"]["gopher_quality"]["languages"]
    assert {"en", "de", "fr", "ja", "zh"} <= set(languages) and languages["ja"]["documents_kept"] > 0


def test_the_break_in_a_warc_file_is_named_with_its_offset(spark, warcs, tmp_path):
    import pyarrow.parquet as pq

    extract(warcs, tmp_path, "spark", spark)
    [corrupt] = [
        row for row in pq.read_table(tmp_path / OUTPUT_FILES[1]).to_pylist() if row["reason"] == "corrupt_warc"
    ]
    assert "night-3.warc.gz" in corrupt["detail"] and "offset" in corrupt["detail"]


def test_spark_without_a_session_and_an_unknown_engine_are_refused(warcs, tmp_path):
    with pytest.raises(ValueError, match="engine 'spark' needs a SparkSession"):
        extract(warcs, tmp_path, "spark")
    with pytest.raises(ValueError, match="engine must be one of"):
        ExtractConfig(engine="ray")
    with pytest.raises(ValueError, match="engine must be 'local' or 'spark'"):
        FilterConfig(engine="ray")


def test_files_of_the_same_name_reach_the_executors_each_with_its_own_content(spark, tmp_path):
    # Two artifacts' model.bin and two rules directories: SparkFiles keys by base name, lmforge by content too.
    paths = []
    for number in range(2):
        directory = tmp_path / f"artifact-{number}"
        (directory / "rules").mkdir(parents=True)
        (directory / "model.bin").write_text(f"model {number}")
        (directory / "rules" / "de.rules").write_text(f"min_doc_words = {number + 10}")
        paths += [str(directory / "model.bin"), str(directory / "rules")]
    names = ship_files(spark, [*paths, None])
    assert len(set(names[:4])) == 4 and names[4] is None
    assert ship_files(spark, paths[:1]) == names[:1]  # the same content again: the same name, sent once

    def read(name):
        path = shipped_path(name)
        return Path(path).read_text() if os.path.isfile(path) else (Path(path) / "de.rules").read_text()

    seen = list(ordered_map(spark, names[:4], read))
    assert seen == ["model 0", "min_doc_words = 10", "model 1", "min_doc_words = 11"]


def test_a_missing_file_on_an_executor_fails_naming_it(spark, tmp_path):
    missing = str(tmp_path / "gone.warc.gz")
    with pytest.raises(RuntimeError, match="gone.warc.gz"):
        list(ordered_map(spark, [missing], lambda path: Path(path).read_bytes()))


def test_an_unreachable_master_fails_before_any_work():
    master = f"spark://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=f"Spark master {master} cannot be reached"):
        build_spark_session(master, "lmforge-test-unreachable")


CLUSTER_DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from data_code.spark import build_spark_session, ordered_map, ship_files, shipped_path
    from tests.stages.test_spark_data_engines import extract, filter_, tokenize

    master, warcs, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    model, marker, tokenizer = sys.argv[4:]
    conf = {"spark.executor.memory": "1g", "spark.executor.cores": "1", "spark.task.maxFailures": "4"}
    spark = build_spark_session(master, "lmforge-cluster-data-engines", driver_memory="1g", extra_conf=conf)

    def lose_the_executor_once(item):
        # The first attempt kills this task's executor JVM (the parent of the Python daemon that forked this
        # worker): the executor is lost mid-stage, the worker starts a new one, Spark runs the task again.
        if not os.path.exists(marker):
            Path(marker).write_text("lost")
            daemon = os.getppid()
            executor = int(Path(f"/proc/{daemon}/stat").read_text().rsplit(")", 1)[1].split()[1])
            os.kill(executor, signal.SIGKILL)
        return item * 10

    retried = list(ordered_map(spark, list(range(6)), lose_the_executor_once))
    stats = {"extract": extract(warcs, out / "documents", "spark", spark)}
    stats["filter"] = filter_(out / "documents" / "documents.parquet", out / "filtered", "spark", model, spark)
    stats["shards"] = tokenize(out / "filtered" / "documents.parquet", tokenizer, out / "shards", "spark", spark)
    print(json.dumps({"retried": retried, "stats": stats}))
    spark.stop()
    """
)


@pytest.mark.slow
def test_on_a_standalone_cluster_with_a_lost_executor_the_output_is_the_same(warcs, tmp_path, quality_model):
    local = tmp_path / "local"
    expected = {"extract": extract(warcs, local / "documents", "local")}
    expected["filter"] = filter_(local / "documents" / OUTPUT_FILES[0], local / "filtered", "local", quality_model[0])
    tokenizer = trained_tokenizer(local / "filtered" / OUTPUT_FILES[0], tmp_path / "tokenizer")
    expected["shards"] = tokenize(local / "filtered" / OUTPUT_FILES[0], tokenizer, local / "shards", "local")
    marker = tmp_path / "executor-lost"
    with standalone_cluster(tmp_path / "cluster", cores=1, memory="1g") as cluster:
        arguments = [cluster.master_url, json.dumps(warcs), str(tmp_path / "spark"), quality_model[0], str(marker)]
        arguments.append(tokenizer)
        run = subprocess.run(
            [sys.executable, "-c", CLUSTER_DRIVER, *arguments], capture_output=True, text=True, timeout=300
        )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert marker.read_text() == "lost" and result["retried"] == [0, 10, 20, 30, 40, 50]
    assert result["stats"] == json.loads(json.dumps(expected))
    same_bytes(local / "documents", tmp_path / "spark" / "documents", OUTPUT_FILES[:2])
    same_bytes(local / "filtered", tmp_path / "spark" / "filtered", OUTPUT_FILES)
    same_bytes(local / "shards", tmp_path / "spark" / "shards", shard_files(local / "shards"))
