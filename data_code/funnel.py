"""The corpus funnel: documents and approximate tokens left after each stage, overall and per domain."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class FunnelStep:
    stage: str  # e.g. "documents", "exact_dedupe", "near_dedupe", "language", "gopher_quality"
    documents: int  # documents left after this stage
    tokens: int  # approximate tokens (whitespace words) left after this stage
    domains: dict[str, int] = field(default_factory=dict)  # documents left per domain


def funnel_markdown(steps: list[FunnelStep], *, top_domains: int = 10) -> str:
    """Markdown: one row per stage with counts and share of the input; then the largest domains per stage."""
    if not steps:
        return "_empty funnel_"
    first = steps[0]
    lines = ["| stage | documents | % docs | tokens | % tokens |", "|---|---:|---:|---:|---:|"]
    for step in steps:
        lines.append(
            f"| {step.stage} | {step.documents:,} | {_share(step.documents, first.documents)} "
            f"| {step.tokens:,} | {_share(step.tokens, first.tokens)} |"
        )
    domains = sorted(first.domains, key=lambda name: (-first.domains[name], name))[:top_domains]
    if domains:
        lines += ["", "| domain | " + " | ".join(step.stage for step in steps) + " |"]
        lines.append("|---|" + "---:|" * len(steps))
        for domain in domains:
            lines.append(f"| {domain} | " + " | ".join(str(step.domains.get(domain, 0)) for step in steps) + " |")
    return "\n".join(lines)


def language_funnel_markdown(filter_stats: dict) -> str:
    """Markdown: documents kept per language after each filter, from the language filter on ('' if none ran).

    Before the language filter a document's language is only declared (html lang), so the table starts there.
    """
    filters = filter_stats.get("filters", {})
    order = [name for name in filter_stats.get("filter_order", list(filters)) if name in filters]
    if "language" not in order:
        return ""
    steps = order[order.index("language") :]
    languages = filters["language"].get("languages", {})
    lines = ["| language | detected | " + " | ".join(steps) + " | % kept |", "|---|---:|" + "---:|" * (len(steps) + 1)]
    for language, counts in languages.items():
        kept = [filters[name].get("languages", {}).get(language, {}).get("documents_kept", 0) for name in steps]
        cells = " | ".join(f"{count:,}" for count in kept)
        detected = counts["documents_in"]
        lines.append(f"| {language or '?'} | {detected:,} | {cells} | {_share(kept[-1], detected)} |")
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def plot_funnel(steps: list[FunnelStep], path: Path) -> Path:
    """Horizontal bars of documents and tokens kept per stage, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    names = [step.stage for step in steps][::-1]
    figure, (docs_axis, tokens_axis) = plt.subplots(1, 2, figsize=(11, 0.45 * len(steps) + 1.6), sharey=True)
    docs_axis.barh(names, [step.documents for step in steps][::-1], color="#4C72B0")
    docs_axis.set_title("documents kept")
    tokens_axis.barh(names, [step.tokens for step in steps][::-1], color="#DD8452")
    tokens_axis.set_title("approx. tokens kept")
    for axis in (docs_axis, tokens_axis):
        axis.grid(axis="x", alpha=0.3)
        axis.xaxis.set_major_formatter(FuncFormatter(_compact))
        for bar in axis.patches:
            axis.annotate(
                _compact(bar.get_width()),
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    figure.suptitle("corpus funnel")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _compact(value: float, _position=None) -> str:
    """12345 -> '12.3k', 2500000 -> '2.5M' (axis labels that do not collide)."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def write_funnel(steps: list[FunnelStep], directory: Path) -> dict[str, Path]:
    """funnel.json, funnel.md and funnel.png in `directory`."""
    paths = {"json": directory / "funnel.json", "md": directory / "funnel.md", "png": directory / "funnel.png"}
    paths["json"].write_text(json.dumps([asdict(step) for step in steps], indent=2))
    paths["md"].write_text(funnel_markdown(steps) + "\n")
    plot_funnel(steps, paths["png"])
    return paths
