"""The promotion gate: does a challenger model beat (or hold level with) the serving champion?

    decision = decide(challenger, champion, GateConfig())
    decision.passed, decision.reasons, comparison_markdown(decision)

A model's evaluation is one dict:

    {"perplexity": 41.2, "bits_per_byte": 1.31,          # validation_perplexity(...) on the same held-out shards
     "tasks": {"lmforge_cloze": {"acc": 0.31}, ...},     # run_lm_eval(...) on the same task directory
     "quant_perplexity_delta_pct": 0.8, "quant_kl": 0.004}  # its quantized artifact against its own full precision

Comparative checks (perplexity, bits_per_byte, task_scores) need the champion measured on the same shards and
tasks as the challenger: re-evaluate the champion, do not reuse numbers measured on other data. Absolute checks
(the quantization ones) judge the challenger alone, so they apply even when there is no champion yet; without a
champion every comparative check passes, saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Comparative metrics, lower is better, allowed to rise by a percentage of the champion's value.
_RELATIVE = {"perplexity": "max_perplexity_increase_pct", "bits_per_byte": "max_bits_per_byte_increase_pct"}
# Absolute metrics of the challenger alone, lower is better, with their ceiling.
_ABSOLUTE = {"quant_perplexity_delta_pct": "max_quant_ppl_delta_pct", "quant_kl": "max_quant_kl"}
TASK_SCORES = "task_scores"
# Per night of the shard set: the older nights may worsen by max_old_night_increase_pct at most (forgetting), the
# newest must not worsen beyond max_new_night_increase_pct (a continued model has just learned it).
FORGETTING = "forgetting"
KNOWN_METRICS = (*_RELATIVE, TASK_SCORES, FORGETTING, *_ABSOLUTE)
# lm-eval metrics where lower is better: not task scores (held-out perplexity is the gate's perplexity check).
_LOWER_IS_BETTER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"}


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the promotion gate. Invalid values raise ValueError naming the field."""

    metrics: tuple[str, ...] = KNOWN_METRICS  # the checks the gate runs (names from KNOWN_METRICS)
    max_perplexity_increase_pct: float = 2.0  # challenger perplexity may exceed the champion's by this % at most
    max_bits_per_byte_increase_pct: float = 2.0  # same for bits per byte
    min_task_score_delta: float = (
        0.0  # each task score (challenger - champion, absolute) at least this; < 0 allows a drop
    )
    max_old_night_increase_pct: float = 2.0  # perplexity on each older night's validation rows, % above champion
    max_new_night_increase_pct: float = 0.0  # and on the newest night's: better or equal by default
    max_quant_ppl_delta_pct: float = 5.0  # quantized perplexity above the full-precision one by this % at most
    max_quant_kl: float = 0.05  # mean KL(full precision || quantized) per token, nats, at most

    def __post_init__(self):
        if isinstance(self.metrics, str) or not self.metrics:
            raise ValueError(
                f"metrics must be a non-empty tuple of names from {list(KNOWN_METRICS)}, got {self.metrics!r}"
            )
        unknown = [name for name in self.metrics if name not in KNOWN_METRICS]
        if unknown:
            raise ValueError(f"metrics has unknown names {unknown}; known metrics: {list(KNOWN_METRICS)}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics names a check twice: {list(self.metrics)}")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for name in (
            "max_perplexity_increase_pct",
            "max_bits_per_byte_increase_pct",
            "min_task_score_delta",
            "max_old_night_increase_pct",
            "max_new_night_increase_pct",
            "max_quant_ppl_delta_pct",
            "max_quant_kl",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if name.startswith("max_") and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class GateDecision:
    """The verdict: passed, one plain-words reason per check, and one table row per compared value."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    # Rows: {"metric", "challenger", "champion" (None without one), "delta" (text), "allowed" (text), "verdict"}.
    table: list[dict] = field(default_factory=list)


def decide(challenger: dict, champion: dict | None, config: GateConfig | None = None) -> GateDecision:
    """Run every check of config.metrics (default GateConfig()). Returns a GateDecision, passed when all rows pass."""
    config = config or GateConfig()
    rows: list[dict] = []
    for metric in config.metrics:
        if metric in _RELATIVE:
            rows.append(_relative_row(metric, challenger, champion, getattr(config, _RELATIVE[metric])))
        elif metric == TASK_SCORES:
            rows.extend(_task_rows(challenger, champion, config.min_task_score_delta))
        elif metric == FORGETTING:
            rows.extend(_night_rows(challenger, champion, config))
        else:
            rows.append(_absolute_row(metric, challenger, getattr(config, _ABSOLUTE[metric])))
    reasons = [row.pop("reason") for row in rows]
    if champion is None:
        reasons.insert(0, "no champion yet: comparative checks pass, the challenger becomes the first champion")
    return GateDecision(passed=all(row["verdict"] == "pass" for row in rows), reasons=reasons, table=rows)


def comparison_markdown(decision: GateDecision) -> str:
    """A Markdown table of decision.table (for the Dagster UI), headed by the verdict."""
    header = "| metric | challenger | champion | delta | allowed | verdict |"
    lines = [f"**Gate: {'PASSED' if decision.passed else 'FAILED'}**", "", header, "|---|---:|---:|---:|---:|---|"]
    for row in decision.table:
        cells = [
            row["metric"],
            _number(row["challenger"]),
            _number(row["champion"]),
            row["delta"],
            row["allowed"],
            row["verdict"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _relative_row(metric: str, challenger: dict, champion: dict | None, allowed_pct: float) -> dict:
    new, old = challenger.get(metric), (champion or {}).get(metric)
    allowed = f"+{allowed_pct:.1f}%"
    if new is None:
        return _row(metric, new, old, "-", allowed, "fail", f"{metric}: the challenger has no value")
    if champion is None or old is None:
        why = "no champion" if champion is None else "the champion has no value"
        return _row(metric, new, old, "-", allowed, "pass", f"{metric} {new:.4g}: {why} to compare with: pass")
    change_pct = 100.0 * (new - old) / old if old else (0.0 if new == old else math.inf)
    verdict = "pass" if change_pct <= allowed_pct else "fail"
    reason = f"{metric} {new:.4g} vs champion {old:.4g} ({change_pct:+.1f}%, allowed {allowed}): {verdict}"
    return _row(metric, new, old, f"{change_pct:+.1f}%", allowed, verdict, reason)


def _night_rows(challenger: dict, champion: dict | None, config: GateConfig) -> list[dict]:
    """One row per night both were measured on (perplexity_by_night); none when either has no nights."""
    new = {n["day"]: n["perplexity"] for n in challenger.get("perplexity_by_night") or []}
    old = {n["day"]: n["perplexity"] for n in (champion or {}).get("perplexity_by_night") or []}
    if not new or not old:
        return []
    newest = max(new)
    rows = []
    for day in sorted(set(new) & set(old)):
        allowed = config.max_new_night_increase_pct if day == newest else config.max_old_night_increase_pct
        row = _relative_row("perplexity", {"perplexity": new[day]}, {"perplexity": old[day]}, allowed)
        which = "newest night" if day == newest else "older night"
        row["metric"] = f"perplexity {day} ({which})"
        row["reason"] = f"{which} {day}: " + row["reason"]
        rows.append(row)
    return rows


def _task_rows(challenger: dict, champion: dict | None, min_delta: float) -> list[dict]:
    """One row per (task, higher-is-better metric) of the challenger, and per champion score it lacks."""
    new_tasks, old_tasks = challenger.get("tasks") or {}, (champion or {}).get("tasks") or {}
    if not new_tasks:
        return [_row(TASK_SCORES, None, None, "-", f"{min_delta:+g}", "fail", "task scores: the challenger has none")]
    names = sorted(
        {
            (task, metric)
            for source in (new_tasks, old_tasks)
            for task, scores in source.items()
            for metric in scores
            if metric not in _LOWER_IS_BETTER
        }
    )
    return [_task_row(task, metric, new_tasks, old_tasks, champion is None, min_delta) for task, metric in names]


def _task_row(task: str, metric: str, new_tasks: dict, old_tasks: dict, no_champion: bool, min_delta: float) -> dict:
    name, allowed = f"{task}/{metric}", f"{min_delta:+g}"
    new, old = new_tasks.get(task, {}).get(metric), old_tasks.get(task, {}).get(metric)
    if new is None:
        return _row(name, new, old, "-", allowed, "fail", f"{name}: the champion has a score, the challenger none")
    if old is None:
        why = "no champion" if no_champion else "the champion has no score"
        return _row(name, new, old, "-", allowed, "pass", f"{name} {new:.4g}: {why} to compare with: pass")
    delta = new - old
    verdict = "pass" if delta >= min_delta - 1e-12 else "fail"  # 1e-12: equal scores pass despite float noise
    reason = f"{name} {new:.4g} vs champion {old:.4g} ({delta:+.4g}, allowed {allowed}): {verdict}"
    return _row(name, new, old, f"{delta:+.4g}", allowed, verdict, reason)


def _absolute_row(key: str, challenger: dict, limit: float) -> dict:
    value, allowed = challenger.get(key), f"<= {limit:g}"
    if value is None:
        return _row(key, None, None, "-", allowed, "fail", f"{key}: the challenger has no value")
    verdict = "pass" if value <= limit else "fail"
    return _row(key, value, None, "-", allowed, verdict, f"{key} {value:.4g} (allowed {allowed}): {verdict}")


def _row(metric, challenger, champion, delta: str, allowed: str, verdict: str, reason: str) -> dict:
    return {
        "metric": metric,
        "challenger": challenger,
        "champion": champion,
        "delta": delta,
        "allowed": allowed,
        "verdict": verdict,
        "reason": reason,
    }


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"
