"""Registry versions side by side: the numbers the gate compares, and the loss curves of the models behind them.

rows = registry_comparison(Registry(client), store)     # newest first
comparison_markdown(rows)                               # one table, for the Dagster UI and MLflow
plot_loss_comparison(loss_histories(store, rows), path)  # every version's base/SFT/DPO loss on one figure
"""

from __future__ import annotations

from pathlib import Path

from data_code.files import read_jsonl
from lineage.registry import Registry
from lineage.store import ArtifactStore

TRAINING_ASSETS = ("base_model", "sft_model", "dpo_model")  # the loss curves worth overlaying, in chain order
METRICS_FILE = "metrics.jsonl"


def registry_comparison(registry: Registry, store: ArtifactStore, limit: int = 8) -> list[dict]:
    """The newest `limit` registered versions: version, aliases, gate, artifact, and the evaluation it was gated on."""
    rows = []
    for found in registry.client.search_model_versions(f"name='{registry.name}'"):
        version = registry.get(str(found.version))
        stats = _stats(store, version.asset, version.artifact_version)
        evaluation = stats.get("evaluation") or {}
        drafter = stats.get("drafter") or {}
        rows.append({
            "version": int(version.version),
            "aliases": ", ".join(version.aliases) or "-",
            "gate": version.gate or "-",
            "artifact": version.artifact_version,
            "perplexity": evaluation.get("perplexity"),
            "bits_per_byte": evaluation.get("bits_per_byte"),
            "quant_ppl_delta_pct": evaluation.get("quant_perplexity_delta_pct"),
            "drafter_acceptance": drafter.get("acceptance"),
        })  # fmt: skip
    return sorted(rows, key=lambda row: -row["version"])[:limit]


def comparison_markdown(rows: list[dict]) -> str:
    if not rows:
        return "no registered version yet"
    lines = ["| version | aliases | gate | perplexity | bits/byte | Q8_0 Δ ppl | drafter acceptance | artifact |",
             "|---:|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| v{row['version']} | {row['aliases']} | {row['gate']} | {_number(row['perplexity'], 3)} | "
            f"{_number(row['bits_per_byte'], 4)} | {_number(row['quant_ppl_delta_pct'], 2, '%')} | "
            f"{_number(row['drafter_acceptance'], 3)} | `{row['artifact']}` |"
        )
    return "\n".join(lines)


def loss_histories(store: ArtifactStore, rows: list[dict]) -> dict[str, list[dict]]:
    """{"v3 base_model": metrics records, ...}: each version's training histories, found along its lineage."""
    histories = {}
    for row in rows:
        for asset, version in _chain(store, "serving_model", row["artifact"]):
            path = store.local_path(asset, version) / METRICS_FILE
            records = read_jsonl(path, missing_ok=True) if store.is_local else []
            if any(record.get("loss") is not None for record in records):
                histories[f"v{row['version']} {asset}"] = records
    return histories


def plot_loss_comparison(histories: dict[str, list[dict]], path: Path) -> Path | None:
    """One figure per training stage (base, SFT, DPO), every version's train loss overlaid; None without data."""
    if not histories:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [asset for asset in TRAINING_ASSETS if any(label.endswith(asset) for label in histories)]
    figure, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), squeeze=False)
    for axis, asset in zip(axes[0], stages, strict=True):
        for label, records in histories.items():
            if label.endswith(asset):
                points = [(r.get("tokens_seen", r["step"]), r["loss"]) for r in records if r.get("loss") is not None]
                axis.plot(*zip(*points, strict=True), label=label.split()[0])
        axis.set_title(asset)
        axis.set_xlabel("tokens seen" if asset == "base_model" else "step or tokens")
        axis.set_ylabel("train loss")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _chain(store: ArtifactStore, asset: str, version: str) -> list[tuple[str, str]]:
    """(asset, version) of the training artifacts behind a serving artifact, DPO back to the base model."""
    found, seen = [], {(asset, version)}
    frontier = [(asset, version)]
    while frontier:
        current = frontier.pop()
        try:
            manifest = store.read_manifest(*current)
        except FileNotFoundError:
            continue
        for ref in manifest.upstream:
            key = (ref.asset, ref.version)
            if ref.asset in (*TRAINING_ASSETS, "quantized_model", "model_evaluation") and key not in seen:
                seen.add(key)
                frontier.append(key)
                if ref.asset in TRAINING_ASSETS:
                    found.append(key)
    order = {name: index for index, name in enumerate(TRAINING_ASSETS)}
    return sorted(found, key=lambda key: order[key[0]])


def _stats(store: ArtifactStore, asset: str, version: str) -> dict:
    try:
        return store.read_manifest(asset, version).stats
    except FileNotFoundError:
        return {}


def _number(value, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"
