"""model_code.gate: pass, each kind of failure, unknown metric names, no champion, the Markdown table."""

from __future__ import annotations

import pytest

from model_code.gate import KNOWN_METRICS, GateConfig, comparison_markdown, decide

CHAMPION = {
    "perplexity": 40.9,
    "bits_per_byte": 1.30,
    "tasks": {"cloze": {"acc": 0.30, "perplexity": 90.0}, "repeat": {"exact_match": 0.50}},
}
CHALLENGER = {
    "perplexity": 41.2,
    "bits_per_byte": 1.30,
    "tasks": {"cloze": {"acc": 0.31, "perplexity": 95.0}, "repeat": {"exact_match": 0.50}},
    "quant_perplexity_delta_pct": 0.8,
    "quant_kl": 0.004,
}


def with_values(base: dict, **changes) -> dict:
    return {**base, **changes}


def test_a_challenger_within_every_threshold_passes():
    decision = decide(CHALLENGER, CHAMPION, GateConfig())
    assert decision.passed
    assert decision.reasons[0] == "perplexity 41.2 vs champion 40.9 (+0.7%, allowed +2.0%): pass"
    assert "cloze/acc 0.31 vs champion 0.3 (+0.01, allowed +0): pass" in decision.reasons
    assert "repeat/exact_match 0.5 vs champion 0.5 (+0, allowed +0): pass" in decision.reasons
    assert [row["metric"] for row in decision.table] == [
        "perplexity",
        "bits_per_byte",
        "cloze/acc",
        "repeat/exact_match",
        "quant_perplexity_delta_pct",
        "quant_kl",
    ]
    assert all(row["verdict"] == "pass" for row in decision.table)  # cloze/perplexity (lower is better) not a score


@pytest.mark.parametrize(
    ("changes", "failing", "reason"),
    [
        ({"perplexity": 41.9}, "perplexity", "perplexity 41.9 vs champion 40.9 (+2.4%, allowed +2.0%): fail"),
        ({"bits_per_byte": 1.40}, "bits_per_byte", "bits_per_byte 1.4 vs champion 1.3 (+7.7%, allowed +2.0%): fail"),
        (
            {"tasks": {"cloze": {"acc": 0.29}, "repeat": {"exact_match": 0.5}}},
            "cloze/acc",
            "cloze/acc 0.29 vs champion 0.3 (-0.01, allowed +0): fail",
        ),
        (
            {"tasks": {"cloze": {"acc": 0.4}}},
            "repeat/exact_match",
            "repeat/exact_match: the champion has a score, the challenger none",
        ),
        (
            {"quant_perplexity_delta_pct": 7.5},
            "quant_perplexity_delta_pct",
            "quant_perplexity_delta_pct 7.5 (allowed <= 5): fail",
        ),
        ({"quant_kl": 0.2}, "quant_kl", "quant_kl 0.2 (allowed <= 0.05): fail"),
        ({"perplexity": None}, "perplexity", "perplexity: the challenger has no value"),
    ],
)
def test_each_kind_of_failure_fails_the_gate_with_its_reason(changes, failing, reason):
    decision = decide(with_values(CHALLENGER, **changes), CHAMPION, GateConfig())
    assert not decision.passed
    assert [row["metric"] for row in decision.table if row["verdict"] == "fail"] == [failing]
    assert reason in decision.reasons


def test_thresholds_are_configurable():
    worse = with_values(CHALLENGER, perplexity=41.9, tasks={"cloze": {"acc": 0.29}, "repeat": {"exact_match": 0.5}})
    assert not decide(worse, CHAMPION, GateConfig()).passed
    assert decide(worse, CHAMPION, GateConfig(max_perplexity_increase_pct=3.0, min_task_score_delta=-0.02)).passed


def test_only_the_named_metrics_are_checked():
    worse = with_values(CHALLENGER, perplexity=60.0, quant_kl=None)
    decision = decide(worse, CHAMPION, GateConfig(metrics=("task_scores", "bits_per_byte")))
    assert decision.passed and {row["metric"] for row in decision.table} == {
        "cloze/acc",
        "repeat/exact_match",
        "bits_per_byte",
    }


def test_unknown_metric_names_are_refused_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown names \['acuracy'\]; known metrics: \['perplexity'") as error:
        GateConfig(metrics=("perplexity", "acuracy"))
    assert all(name in str(error.value) for name in KNOWN_METRICS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_perplexity_increase_pct", -1.0),
        ("max_quant_kl", float("nan")),
        ("min_task_score_delta", "0"),
        ("metrics", ()),
        ("metrics", "perplexity"),
    ],
)
def test_invalid_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GateConfig(**{field: value})


def test_without_a_champion_the_challenger_passes_saying_so():
    decision = decide(CHALLENGER, None, GateConfig())
    assert decision.passed
    assert decision.reasons[0].startswith("no champion yet")
    assert "perplexity 41.2: no champion to compare with: pass" in decision.reasons
    assert all(row["champion"] is None for row in decision.table)


def test_without_a_champion_a_broken_quantization_still_fails():
    decision = decide(with_values(CHALLENGER, quant_kl=0.3), None, GateConfig())
    assert not decision.passed and "quant_kl 0.3 (allowed <= 0.05): fail" in decision.reasons


def test_comparison_markdown_is_a_table_of_every_row():
    decision = decide(with_values(CHALLENGER, perplexity=41.9), CHAMPION, GateConfig())
    lines = comparison_markdown(decision).splitlines()
    assert lines[0] == "**Gate: FAILED**"
    assert lines[2] == "| metric | challenger | champion | delta | allowed | verdict |"
    assert "| perplexity | 41.9 | 40.9 | +2.4% | +2.0% | fail |" in lines
    assert "| quant_kl | 0.004 | - | - | <= 0.05 | pass |" in lines
    assert len(lines) == 4 + len(decision.table)


def test_forgetting_allows_a_little_on_older_nights_and_nothing_on_the_newest():
    from model_code.gate import FORGETTING, GateConfig, decide

    def nights(*values):
        return {"perplexity_by_night": [{"day": f"2026-01-0{i + 1}", "perplexity": v} for i, v in enumerate(values)]}

    config = GateConfig(metrics=(FORGETTING,))
    champion = nights(100.0, 100.0, 120.0)
    assert decide(nights(101.5, 100.0, 110.0), champion, config).passed  # +1.5 % on an old night, better on the new
    forgot = decide(nights(103.0, 100.0, 110.0), champion, config)
    assert not forgot.passed and any("older night 2026-01-01" in r and "fail" in r for r in forgot.reasons)
    worse_new = decide(nights(100.0, 100.0, 121.0), champion, config)
    assert not worse_new.passed and any("newest night 2026-01-03" in r for r in worse_new.reasons)
    assert decide(nights(500.0), {"perplexity": 1.0}, config).passed  # a champion measured without nights
    with pytest.raises(ValueError, match="max_old_night_increase_pct"):
        GateConfig(max_old_night_increase_pct=-1)
