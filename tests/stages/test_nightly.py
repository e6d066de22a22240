"""Nights that accumulate, through the real data_refresh job: history dedupe, one version per URL, a frozen
tokenizer, per-day shards in one shard set, nights with no new data, opt-outs, and a lost history part."""

import json
import shutil

import pytest
from dagster import DagsterInstance

from cli import main as cli
from data_code.dedupe.history import REBUILD_COMMAND
from lineage.audit import build_audit
from lineage.settings import Settings
from lineage.store import ArtifactStore
from pipelines.definitions import defs
from tests.stages.prose_site import PAGES, article, page, write_prose_site
from tests.stages.site import serve_directory

pytestmark = pytest.mark.slow
SITE_PORT = 18646  # fixed: URLs, so doc ids and splits, are the same every run
NIGHT1, NIGHT2, NIGHT3, NIGHT4, NIGHT5 = (f"2026-05-0{n}" for n in range(1, 6))


def config(site: str, **tokenizer) -> dict:
    return {
        "ops": {
            "raw_crawl": {"config": {"seeds": [site], "max_pages": 40, "max_depth": 2}},
            "quality_classifier": {"config": {"epoch": 5, "bucket": 20000}},
            "filtered_documents": {"config": {"quality_threshold": 0.0}},
            "tokenizer": {"config": {"vocab_size": 600, **tokenizer}},
            "token_shards": {"config": {"seq_len": 64, "validation_fraction": 0.3}},
        }
    }


def night(instance, root, partition, **tokenizer):
    with serve_directory(root, port=SITE_PORT) as site:
        return defs.resolve_job_def("data_refresh").execute_in_process(
            run_config=config(site, **tokenizer), instance=instance, partition_key=partition, raise_on_error=False
        )


def made(result) -> dict:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def failure(result) -> str:
    return " ".join(
        str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )


@pytest.fixture
def instance(lmforge_home, monkeypatch):
    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def test_nights_accumulate(instance, tmp_path, lmforge_home, capsys):
    root = tmp_path / "site"
    write_prose_site(root)
    first = night(instance, root, NIGHT1)
    assert first.success, failure(first)
    one = made(first)
    assert one["tokenizer"]["tokenizer_event"] == "new tokenizer: first corpus"
    assert one["deduplicated_documents"]["deduped_against_history"].startswith("no earlier day")

    # Night 2: page4 gets a sentence changed, page9 appears, page3 moves to mirror.html.
    edited = article(4)  # page0, 3, 4 and 6 pass the filters on night 1 (the others repeat n-grams: Gopher)
    edited[4] = "This sentence was changed overnight by the editors of the site. " + edited[4]
    (root / "page4.html").write_text(page("Topic 4", edited))
    (root / "page9.html").write_text(page("Topic 9", article(PAGES + 3)))
    (root / "mirror.html").write_text(page("Topic 3 mirror", article(3)))
    (root / "page3.html").unlink()  # page3 moved: its text now lives at mirror.html
    (root / "index.html").write_text(page("Index", article(PAGES)).replace("</nav>", '<a href="page9.html">9</a>'
                                     '<a href="mirror.html">m</a></nav>'))  # fmt: skip
    second = night(instance, root, NIGHT2)
    assert second.success, failure(second)
    two = made(second)
    dedupe = two["deduplicated_documents"]
    assert dedupe["deduped_against_history"].startswith("1 earlier day(s)")
    assert dedupe["documents_superseding"] == 1 and dedupe["documents_new"] == 1  # page4, page9
    assert dedupe["duplicates_of_history"] == 1  # mirror.html: page3's text, kept on night 1, under another URL
    assert dedupe["documents_unchanged"] >= 5
    assert two["tokenizer"]["tokenizer_event"] == "tokenizer reused (1 night(s) since)"
    assert two["tokenizer"]["nights_reused"] == 1
    assert two["tokenizer"]["fingerprint"] == one["tokenizer"]["fingerprint"]
    assert two["token_shards"]["tokens_added"] < one["token_shards"]["tokens_added"]  # only what is new
    assert two["shard_set"]["days"] == 2

    store = ArtifactStore(Settings.from_env().store_root)
    corpus_version = two["training_corpus"]["lmforge/version"]
    audit = build_audit(store, "shard_set", two["shard_set"]["lmforge/version"], verify=False)
    corpus = next(a for a in audit["artifacts"] if a["version"] == corpus_version)["detail"]
    superseded_urls = {row["url"] for row in corpus["superseded"]}
    assert [url.rsplit("/", 1)[1] for url in superseded_urls] == ["page4.html"]
    urls = [row["url"] for row in corpus["document_signals"]]
    assert len(urls) == len(set(urls))  # one version per URL in what is trained on
    assert not any(url.endswith("/mirror.html") for url in urls)

    # A token of night 2's shard traces back to night 2's document, through the shard set.
    set_dir = store.local_path("shard_set", two["shard_set"]["lmforge/version"])
    splits = json.loads((set_dir / "index.json").read_text())["splits"]
    split, number = next(  # night 2's two new documents may both be held out: look in either split
        (name, i) for name, entries in splits.items() for i, entry in enumerate(entries) if entry["day"] == NIGHT2
    )
    assert cli.main(["trace", split, str(number), "0"]) == 0
    traced = json.loads(capsys.readouterr().out)
    assert traced["shard_set"] == two["shard_set"]["lmforge/version"]
    assert traced["url"].rsplit("/", 1)[1] in ("page4.html", "page9.html")

    # Night 3: nothing changed. Night 4: the crawl fetched nothing. Neither adds data; the corpus keeps its version.
    third = night(instance, root, NIGHT3)
    assert third.success, failure(third)
    three = made(third)
    assert three["deduplicated_documents"]["documents_kept"] == 0 and three["token_shards"]["tokens_added"] == 0
    assert three["training_corpus"]["reused"] and three["training_corpus"]["lmforge/version"] == corpus_version
    assert three["shard_set"]["reused"] and NIGHT3 in three["training_corpus"]["days_without_new_data"]
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    fourth = night(instance, root, NIGHT4)
    (root / "robots.txt").unlink()
    assert fourth.success, failure(fourth)
    assert made(fourth)["training_corpus"]["lmforge/version"] == corpus_version

    # An opt-out of a page first seen on night 1: no day file is rewritten, the shard set stops reading it.
    page6 = next(url for url in urls if url.endswith("/page6.html"))
    assert cli.main(["optout", "add", page6]) == 0
    fifth = night(instance, root, NIGHT5)
    assert fifth.success, failure(fifth)
    five = made(fifth)
    assert five["shard_set"]["excluded_documents"] == 2  # page4's older version, and page6
    shard_set = build_audit(store, "shard_set", five["shard_set"]["lmforge/version"], verify=True)
    target = shard_set["artifacts"][-1]["detail"]
    assert target["exclusions_verified"]["passed"] and len(target["excluded_documents"]) == 2
    assert shard_set["verified"]

    # A lost history part: a clear error naming it and the rebuild command; the rebuild repairs it.
    shutil.rmtree(lmforge_home / "index" / "deduplicated_documents" / NIGHT1)
    (root / "page10.html").write_text(page("Topic 10", article(PAGES + 4)))
    broken = night(instance, root, "2026-05-06")
    assert not broken.success
    assert NIGHT1 in failure(broken) and REBUILD_COMMAND in failure(broken) and "missing" in failure(broken)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DagsterInstance, "get", staticmethod(lambda: _borrowed(instance)))
        assert cli.main(["history", "rebuild"]) == 0
    assert "history index rebuilt: 5 day part(s)" in capsys.readouterr().out
    assert night(instance, root, "2026-05-06").success

    # A new tokenizer is an explicit event: the older days' shards no longer match, and the shard set says so.
    retrained = night(instance, root, "2026-05-07", retrain=True)
    assert not retrained.success
    assert "were made with tokenizer" in failure(retrained) and "re-materialize token_shards" in failure(retrained)


class _borrowed:
    """The test's instance as `DagsterInstance.get()` hands it out (a context manager that does not dispose it)."""

    def __init__(self, instance):
        self.instance = instance

    def __enter__(self):
        return self.instance

    def __exit__(self, *exc):
        return False
