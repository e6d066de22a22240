"""Rule sets per language: the shipped files, their errors, word segmentation, routing and the unruled policy."""

import shutil
from pathlib import Path

import pytest

from data_code.filters import FilterConfig, FilterPipeline, build_filters
from data_code.filters.gopher import GopherQualityFilter
from data_code.filters.rules import SHIPPED_RULES, load_rule_sets, read_stop_words, rules_digest
from data_code.filters.segment import segmenter, word_view
from data_code.filters.stage import FilterStats
from data_code.funnel import language_funnel_markdown

ROUTED = ("language", "gopher_quality", "gopher_repetition", "c4", "fineweb", "pii")

CHINESE = (
    "自由软件是指用户可以自由地运行、复制、分发、学习、修改和改进的软件。"
    "自由软件基金会在一九八五年成立，它的目标是推广自由软件的理念。"
    "许多程序员在世界各地为自由软件贡献代码，他们认为软件的自由对于社会是重要的。"
    "在今天，很多人每天都在使用由志愿者开发的操作系统和应用程序，这些程序的质量也越来越高。"
)
JAPANESE = (
    "フリーソフトウェアとは、利用者が自由に実行、複製、配布、研究、変更することができるソフトウェアのことである。"
    "多くの開発者が世界中でこの考え方に賛同し、様々なプログラムを作成してきた。"
    "日本でも多くの利用者がこれらのプログラムを日常的に使っており、その品質は年々向上している。"
    "開発者たちは互いに協力して問題を解決し、新しい機能を追加している。"
)
THAI = (
    "ซอฟต์แวร์เสรีเป็นซอฟต์แวร์ที่ผู้ใช้มีอิสระในการใช้งาน ศึกษา แก้ไข และแจกจ่าย "
    "นักพัฒนาจำนวนมากทั่วโลกได้ร่วมกันสร้างโปรแกรมที่มีคุณภาพสูงและเปิดให้ทุกคนใช้งานได้ "
    "ในประเทศไทยมีผู้ใช้จำนวนมากที่ใช้ระบบปฏิบัติการเสรีในการทำงานและการศึกษา "
    "การมีส่วนร่วมของชุมชนเป็นสิ่งที่สำคัญมากสำหรับการพัฒนาซอฟต์แวร์เสรีให้ดีขึ้น"
)
GERMAN = (
    "Freie Software ist Software, die der Nutzer für jeden Zweck ausführen, untersuchen, verändern und verbreiten "
    "darf. Die Free Software Foundation wurde im Jahr 1985 gegründet und setzt sich für die Freiheit der Nutzer "
    "ein. Viele Entwickler in der ganzen Welt arbeiten an den Programmen mit, und das Betriebssystem wird von "
    "Freiwilligen gepflegt. Die Qualität der Programme ist mit den Jahren immer besser geworden, und heute nutzen "
    "viele Menschen in ihrem Alltag freie Software, ohne es zu wissen."
)


def doc(text: str, language: str | None = None, doc_id: str = "d") -> dict:
    return {
        "doc_id": doc_id,
        "url": f"http://127.0.0.1/{doc_id}",
        "domain": "127.0.0.1",
        "text": text,
        "language": language,
    }


def test_shipped_rule_sets_load_with_fineweb2_thresholds():
    rule_sets = load_rule_sets(FilterConfig())
    assert set(rule_sets) == {"en", "de", "fr", "es", "zh", "ja", "th"}
    assert rule_sets["en"].config == FilterConfig() and rule_sets["en"].stop_words == GopherQualityFilter().stop_words
    zh = rule_sets["zh"]
    assert zh.segmenter == "jieba" and zh.skip == {"c4", "quality"} and "的" in zh.stop_words
    assert zh.config.gopher_max_mean_word_length == 5 and zh.config.gopher_min_alpha_words_ratio == 0.735
    assert zh.config.gopher_dup_ngram_char_fracs[0] == (5, 0.198) and zh.config.gopher_dup_para_frac is None
    assert rule_sets["ja"].segmenter == "sudachi" and rule_sets["th"].segmenter == "pythainlp"
    assert rule_sets["de"].config.fineweb_line_punct_ratio is None  # FineWeb-2's 0.0: never drops
    assert rule_sets["fr"].config.gopher_top_ngram_char_fracs == ((2, 0.161), (3, 0.149), (4, 0.134))
    assert rule_sets["es"].source == "shipped:es.rules"


def test_segmenters_find_words_in_unspaced_scripts():
    assert word_view("我们在北京大学学习。\n第二行", "jieba") == "我们 在 北京大学 学习 。\n第二行"
    assert word_view("東京都に住んでいます", "sudachi").split() == ["東京", "都", "に", "住ん", "で", "い", "ます"]
    assert word_view("ภาษาไทยเป็นภาษา", "pythainlp").split() == ["ภาษาไทย", "เป็น", "ภาษา"]
    assert word_view("plain  text\n", "whitespace") == "plain  text\n"  # the text itself
    assert len(word_view("長" * 40_000, "sudachi")) >= 40_000  # longer than SudachiPy takes at once
    with pytest.raises(ValueError, match="unknown segmenter 'mecab'"):
        segmenter("mecab")


@pytest.mark.parametrize(("text", "language"), [(CHINESE, "zh"), (JAPANESE, "ja"), (THAI, "th"), (GERMAN, "de")])
def test_each_language_is_judged_by_its_own_rules(text, language):
    filters = build_filters(FilterConfig(languages=(language,), enabled=ROUTED), None)
    result = FilterPipeline(filters).run([doc(text)])
    assert len(result.kept) == 1, result.rejections
    assert result.kept[0]["language"] == language
    if language in ("zh", "ja", "th"):  # the English rules drop the same page: it has almost no spaces
        assert GopherQualityFilter().filter(doc(text))[1] == "gopher_short_document"
    assert result.counts["c4"].counters[f"unjudged:{language}"] == 1  # C4's rules are English


def test_a_language_without_rules_is_dropped_or_kept_by_policy_and_counted():
    korean = (
        "자유 소프트웨어는 사용자가 프로그램을 실행하고 연구하고 수정하고 배포할 자유를 가진 소프트웨어입니다. " * 12
    )
    config = FilterConfig(languages=("en", "ko"), enabled=ROUTED)
    dropped = FilterPipeline(build_filters(config, None)).run([doc(korean)])
    assert [row["reason"] for row in dropped.rejections] == ["language_without_rules:ko"]
    assert dropped.rejections[0]["language"] == "ko" and dropped.counts["language"].counters["unruled:ko"] == 1

    keep = FilterConfig(languages=("en", "ko"), enabled=ROUTED, unruled_languages="keep")
    kept = FilterPipeline(build_filters(keep, None)).run([doc(korean)])
    assert len(kept.kept) == 1 and kept.counts["language"].counters["unruled:ko"] == 1
    for name in ("gopher_quality", "gopher_repetition", "c4", "fineweb"):  # never judged by English rules
        assert kept.counts[name].counters["unjudged:ko"] == 1
    with pytest.raises(ValueError, match="unruled_languages must be 'drop' or 'keep'"):
        FilterConfig(unruled_languages="judge")


def test_without_the_language_filter_everything_is_judged_as_english():
    enabled = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
    result = FilterPipeline(build_filters(FilterConfig(enabled=enabled), None)).run([doc(CHINESE, "zh-CN")])
    assert [row["reason"] for row in result.rejections] == ["gopher_short_document"]
    with pytest.raises(ValueError, match="must run 'language' before"):
        FilterConfig(enabled=("gopher_quality", "language"))


def test_stats_and_funnel_show_the_language_of_each_decision():
    config = FilterConfig(languages=("en", "zh", "de"), enabled=ROUTED)
    documents = [doc(CHINESE, doc_id="zh"), doc(GERMAN, doc_id="de"), doc("短。" * 30, doc_id="zh-short")]
    result = FilterPipeline(build_filters(config, None)).run(documents)
    stats = FilterStats(filters={})
    stats.add(result)
    summary = stats.as_stats()
    assert summary["rejected_by_language"]["zh"] == {"gopher_short_document": 1}
    assert summary["filters"]["gopher_quality"]["languages"]["zh"] == {"documents_in": 2, "documents_kept": 1}
    summary["filter_order"] = list(result.counts)
    table = language_funnel_markdown(summary)
    assert "| zh | 2 | 2 | 1 |" in table and "| de | 1 | 1 | 1 |" in table


def write_rules(directory: Path, language: str, rules: str, stop_words: str = "und\n") -> Path:
    directory.mkdir(exist_ok=True)
    (directory / f"{language}.rules").write_text(rules, encoding="utf-8")
    (directory / f"{language}.stopwords").write_text(stop_words, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("segmenter = whitespace\ngopher_min_words\n", r"de\.rules:2: expected 'key = value', got 'gopher_min_words'"),
        ("gopher_min_wordz = 5\n", r"de\.rules:1: unknown key 'gopher_min_wordz'"),
        ("# comment\ngopher_min_words = many\n", r"de\.rules:2: gopher_min_words must be an integer, got 'many'"),
        ("gopher_dup_line_frac = 1.5\n", r"de\.rules:1: gopher_dup_line_frac must be within \[0, 1\]"),
        ("gopher_min_words = off\n", r"de\.rules:1: gopher_min_words cannot be off"),
        ("gopher_dup_ngram_char_fracs = 5-0.1\n", r"de\.rules:1: gopher_dup_ngram_char_fracs must be pairs"),
        ("segmenter = mecab\n", r"de\.rules:1: unknown segmenter 'mecab'"),
        ("skip = c4 pii\n", r"de\.rules:1: skip names filters .* got \['pii'\]"),
        (
            "gopher_min_words = 5\n\ngopher_min_words = 6\n",
            r"de\.rules:3: gopher_min_words is set twice \(first on line 1\)",
        ),
    ],
)
def test_a_bad_rules_line_names_the_file_and_line(tmp_path, rules, message):
    directory = write_rules(tmp_path / "rules", "de", rules)
    with pytest.raises(ValueError, match=message):
        load_rule_sets(FilterConfig(rules_dir=str(directory)))


def test_a_bad_stop_word_file_names_the_file_and_line(tmp_path):
    directory = write_rules(tmp_path / "rules", "de", "segmenter = whitespace\n", "und\n# a comment\nder die\n")
    with pytest.raises(ValueError, match=r"de\.stopwords:3: one stop word per line, got 'der die'"):
        load_rule_sets(FilterConfig(rules_dir=str(directory)))
    (directory / "de.stopwords").write_text("# nothing but a comment\n")
    with pytest.raises(ValueError, match=r"de\.stopwords: no stop words"):
        read_stop_words(directory / "de.stopwords")
    (directory / "de.stopwords").unlink()
    with pytest.raises(FileNotFoundError, match=r"the stop words of 'de' are missing"):
        load_rule_sets(FilterConfig(rules_dir=str(directory)))
    with pytest.raises(FileNotFoundError, match="rules_dir is not a directory"):
        load_rule_sets(FilterConfig(rules_dir=str(tmp_path / "nowhere")))


def test_a_rules_dir_adds_and_replaces_languages_and_changes_the_digest(tmp_path):
    directory = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, directory)
    config = FilterConfig(languages=("de",), enabled=ROUTED, rules_dir=str(directory))
    assert rules_digest(config) == rules_digest(FilterConfig())
    assert len(FilterPipeline(build_filters(config, None)).run([doc(GERMAN)]).kept) == 1
    rules = (directory / "de.rules").read_text() + "gopher_min_words = 500\n"
    write_rules(directory, "de", rules, (directory / "de.stopwords").read_text())
    write_rules(directory, "pl", "segmenter = whitespace\n", "i\nw\n")
    assert rules_digest(config) != rules_digest(FilterConfig())
    rule_sets = load_rule_sets(config)
    assert rule_sets["pl"].stop_words == {"i", "w"} and rule_sets["de"].source == str(directory / "de.rules")
    result = FilterPipeline(build_filters(config, None)).run([doc(GERMAN)])
    assert [(row["reason"], row["language"]) for row in result.rejections] == [("gopher_short_document", "de")]


def test_odd_documents_get_their_reason_under_every_rule_set():
    languages = ("en", "de", "fr", "es", "zh", "ja", "th")
    pipeline = FilterPipeline(build_filters(FilterConfig(languages=languages, enabled=ROUTED), None))
    odd = {
        "punctuation": ("!!! ... ??? --- ;;; ((( ))) " * 20, ("gopher_quality", "gopher_short_document")),
        "emoji": ("😀🎉🔥 👍🏽 🚀✨ " * 30, ("language", "language_not_allowed:it")),
        "cjk punctuation": ("。，、「」『』！？" * 40, ("gopher_quality", "gopher_short_document")),
        "thai digits": ("๑๒๓๔๕ ๖๗๘๙๐ " * 40, ("language", "language_undetected")),
        "zero-width": ("\u200b\u200c\u200d" * 100, ("language", "language_undetected")),
    }
    for name, (text, expected) in odd.items():
        result = pipeline.run([doc(text, doc_id=name)])
        assert [(row["stage"], row["reason"]) for row in result.rejections] == [expected], name
    mixed = "Linux 内核是一个自由软件。The kernel is free software. カーネルはフリーソフトウェアです。"
    result = pipeline.run([doc(mixed * 10)])  # judged by the rules of the script lid.176 finds most of
    assert result.rejections[0]["language"] in ("zh", "ja") and result.rejections[0]["reason"] == "gopher_top_2_gram"
