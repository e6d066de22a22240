"""The filters beyond English, on a real multilingual site: the documentation Debian ships translated.

The Debian Reference (en, de, fr, es, ja, zh-cn) and the Debian FAQ (de, fr, ja, zh-cn, ko) are served on
127.0.0.1 and go through the crawl, extraction, dedupe and filter assets. Each page's language is known from its
file name (ch01.de.html), so the test can check what the language filter found, the keep rate per language, that
no duplicate cluster joins two languages, and that Korean, which has no rule set, is handled by policy.
"""

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, materialize

from assets.common import VERSION_KEY
from assets.crawl import raw_crawl
from assets.dedupe import deduplicated_documents
from assets.documents import documents
from assets.filters import filtered_documents
from data_code.filters.gopher import GopherQualityFilter
from pipelines.definitions import resources
from tests.stages.site import serve_directory

pytestmark = pytest.mark.slow

SITE_PORT = 18655
PARTITION = "2026-12-01"
REFERENCE = Path("/usr/share/debian-reference")
FAQ = Path("/usr/share/doc/debian/FAQ")
REFERENCE_LANGUAGES = {"en": "en", "de": "de", "fr": "fr", "es": "es", "ja": "ja", "zh-cn": "zh"}  # file -> lid.176
FAQ_LANGUAGES = {"de": "de", "fr": "fr", "ja": "ja", "zh-cn": "zh", "ko": "ko"}
RULED = ["en", "de", "fr", "es", "ja", "zh"]


def write_debian_site(root: Path) -> None:
    """The Debian Reference and FAQ in every installed translation, linked from one index page."""
    missing = [f"{REFERENCE}/index.{name}.html" for name in REFERENCE_LANGUAGES]
    missing += [f"{FAQ}/{name}/index.{name}.html" for name in FAQ_LANGUAGES]
    missing = [path for path in missing if not Path(path).is_file()]
    assert not missing, f"Debian's translated documentation is not installed (bash scripts/setup.sh): {missing}"
    (root / "reference").mkdir(parents=True)
    links = []
    for name in REFERENCE_LANGUAGES:
        for page in REFERENCE.glob(f"*.{name}.html"):
            shutil.copy(page, root / "reference" / page.name)
        links.append(f"reference/index.{name}.html")
    for name in FAQ_LANGUAGES:
        shutil.copytree(FAQ / name, root / "faq" / name, ignore=shutil.ignore_patterns("*.css", "images"))
        links.append(f"faq/{name}/index.{name}.html")
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    (root / "index.html").write_text(f"<html><body><h1>Debian documentation</h1><ul>{anchors}</ul></body></html>")


def language_of(url: str) -> str | None:
    """The translation a page belongs to, from its file name (index.zh-cn.html -> zh); None for the site index."""
    name = url.rsplit("/", 1)[-1]
    parts = name.split(".")
    if len(parts) < 3:
        return None
    return {**REFERENCE_LANGUAGES, **FAQ_LANGUAGES}[parts[-2]]


def metadata_of(result, name):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(name)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_debian_translations_are_judged_by_their_own_rules(instance, tmp_path, lmforge_home):
    write_debian_site(tmp_path / "site")
    filters = {"languages": [*RULED, "ko"], "unruled_languages": "drop"}
    with serve_directory(tmp_path / "site", port=SITE_PORT) as site:
        result = materialize(
            [raw_crawl, documents, deduplicated_documents, filtered_documents],
            instance=instance,
            resources=resources(),
            partition_key=PARTITION,
            run_config={
                "ops": {
                    "raw_crawl": {"config": {"seeds": [site], "max_pages": 400, "requests_per_second_per_host": 50.0}},
                    "filtered_documents": {"config": filters},
                }
            },
        )
    assert result.success
    lake = lmforge_home / "lake"
    dedupe_dir = lake / "deduplicated_documents" / metadata_of(result, "deduplicated_documents")[VERSION_KEY]
    filtered = metadata_of(result, "filtered_documents")
    filtered_dir = lake / "filtered_documents" / filtered[VERSION_KEY]
    crawled = pq.read_table(lake / "documents" / metadata_of(result, "documents")[VERSION_KEY] / "documents.parquet")
    truth = {row["doc_id"]: language_of(row["url"]) for row in crawled.select(["doc_id", "url"]).to_pylist()}
    pages = Counter(language for language in truth.values() if language)
    assert set(pages) == {*RULED, "ko"} and min(pages.values()) >= 14, pages

    # No duplicate cluster joins two translations (they share commands, tables and URLs, not prose).
    clusters = defaultdict(set)
    for row in pq.read_table(dedupe_dir / "duplicate_clusters.parquet").to_pylist():
        clusters[row["cluster_id"]].update({truth[row["doc_id"]], truth[row["representative"]]})
    assert all(len(languages) == 1 for languages in clusters.values()), dict(clusters)

    # The language filter finds each page's translation.
    rejections = pq.read_table(filtered_dir / "rejections.parquet").to_pylist()
    kept = pq.read_table(filtered_dir / "documents.parquet").to_pylist()
    detected = {row["doc_id"]: row["language"] for row in [*rejections, *kept] if row.get("language")}
    agree = sum(detected.get(doc_id) == language for doc_id, language in truth.items() if language)
    assert agree / sum(pages.values()) >= 0.95

    # Korean has no rule set: dropped by policy, every page counted, none judged by another language's rules.
    korean = [row for row in rejections if row["language"] == "ko"]
    assert korean and all(row["reason"] == "language_without_rules:ko" for row in korean)
    stats = filtered
    assert f"language_without_rules:ko | {len(korean)}" in _table_text(stats["rejected_by_language"])

    # Each ruled language keeps a share of its pages, judged by its own rules. (The pages are technical: commands,
    # tables and package lists fail the repetition, alpha-word and line-punctuation rules in every language.)
    kept_by_language = Counter(row["language"] for row in kept)
    for language in RULED:
        in_language = sum(1 for value in detected.values() if value == language)
        assert kept_by_language[language] / in_language >= 0.15, (language, kept_by_language, in_language)
    # English rules would have dropped every Chinese page kept, and most Japanese ones: too few spaced words.
    english = GopherQualityFilter()
    for language, most in (("zh", 1.0), ("ja", 0.5)):
        pages_kept = [row for row in kept if row["language"] == language]
        english_drops = sum(english.filter(dict(row)) is not True for row in pages_kept)
        assert english_drops >= most * len(pages_kept), (language, english_drops, len(pages_kept))

    # The rejections and the funnel show the language of each decision.
    assert all(row["language"] for row in rejections if row["stage"] not in ("non_empty", "language"))
    for language in RULED:
        assert f"| {language} |" in filtered["funnel_by_language"]


def _table_text(table) -> str:
    """A Dagster table's records as 'language reason | count' lines, for substring checks."""
    return "\n".join(f"{r.data['language']}:{r.data['reason']} | {r.data['count']}" for r in table.records)
