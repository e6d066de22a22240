"""write_report: the audit as report.json, report.md, report.html, an ML-BOM, a model card and a datasheet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lineage.audit.bom import build_mlbom
from lineage.audit.cards import datasheet_markdown, model_card_markdown
from lineage.audit.render import Block, to_html, to_markdown

REPORT_FILES = ("report.json", "report.md", "report.html", "mlbom.cdx.json", "model_card.md", "datasheet.md")


def write_report(audit: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write every report file into `out_dir` (created if needed; the caller stages and publishes it).

    Returns {file name: path} for REPORT_FILES. The ML-BOM is validated against CycloneDX 1.6 before it is
    written (RuntimeError naming the schema violation otherwise).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"Audit of {audit['target']['asset']}/{audit['target']['version']}"
    blocks = report_blocks(audit)
    contents = {
        "report.json": json.dumps(audit, indent=2, sort_keys=False, default=str),
        "report.md": to_markdown(blocks),
        "report.html": to_html(blocks, title),
        "mlbom.cdx.json": build_mlbom(audit),
        "model_card.md": model_card_markdown(audit),
        "datasheet.md": datasheet_markdown(audit),
    }
    written = {}
    for name in REPORT_FILES:
        (out / name).write_text(contents[name], encoding="utf-8")
        written[name] = out / name
    return written


def report_blocks(audit: dict[str, Any]) -> list[Block]:
    target = audit["target"]
    blocks: list[Block] = [
        ("h", 1, f"Audit of {target['asset']}/{target['version']}"),
        ("p", f"Generated {audit['generated_at']} from the lineage of `{target['uri']}`."),
    ]
    if target.get("registry"):
        registry = target["registry"]
        blocks.append(
            (
                "p",
                f"Registered as model `{registry['name']}` version {registry['version']} "
                f"(aliases: {', '.join(registry['aliases']) or 'none'}; gate: {registry.get('gate') or '-'} "
                f"{registry.get('gate_reason') or ''}).",
            )
        )
    blocks += _verification_blocks(audit.get("verification"))
    blocks += [("h", 2, "Summary"), ("table", ["fact", "value"], list(audit["summary"].items()))]
    blocks += _lineage_blocks(audit["artifacts"])
    for artifact in audit["artifacts"]:
        blocks += artifact_blocks(artifact)
    blocks += _package_blocks(audit["artifacts"])
    return blocks


def _verification_blocks(verification: dict[str, Any] | None) -> list[Block]:
    if verification is None:
        return [("h", 2, "Verification"), ("p", "Not run.")]
    verdict = "**PASS**" if verification["verified"] else "**FAIL**"
    blocks: list[Block] = [
        ("h", 2, "Verification"),
        (
            "p",
            f"{verdict}: {verification['artifacts_checked']} artifacts, {verification['files_checked']} files, "
            f"{verification['bytes_hashed']:,} bytes re-hashed in {verification['elapsed_s']} s; versions re-derived "
            "from the recorded config, code version and upstream versions.",
        ),
    ]
    headers = ["asset", "version", "kind", "path", "detail"]
    for title, items in (("Mismatches", verification["mismatches"]), ("Warnings", verification["warnings"])):
        rows = [[item.get(name) for name in headers] for item in items]
        blocks += [("h", 3, f"{title} ({len(items)})"), ("table", headers, rows)]
    return blocks


def _lineage_blocks(artifacts: list[dict[str, Any]]) -> list[Block]:
    headers = ["asset", "version", "partition", "created", "code version", "git commit", "dagster run", "mlflow run"]
    rows = [
        [
            a["asset"],
            a["version"],
            a["partition"],
            a["created_at"],
            a["code_version"],
            (a["git_commit"] or "-")[:12],
            a["dagster_run_id"],
            a["mlflow_run_url"],
        ]
        for a in artifacts
    ]
    return [("h", 2, "Lineage (ancestors first)"), ("table", headers, rows)]


def artifact_blocks(artifact: dict[str, Any]) -> list[Block]:
    """Config, upstream, headline stats and stage detail of one artifact."""
    upstream = (
        ", ".join(
            f"{u['asset']}/{u['version']}" + (f"[{u['partition']}]" if u["partition"] else "")
            for u in artifact["upstream"]
        )
        or "none"
    )
    stats = [(key, value) for key, value in artifact["stats"].items() if not isinstance(value, (dict, list))]
    blocks: list[Block] = [
        (
            "h",
            2,
            f"{artifact['asset']}/{artifact['version']}"
            + (f" [{artifact['partition']}]" if artifact["partition"] else ""),
        ),
        (
            "p",
            f"`{artifact['uri']}` · {artifact['files']['count']} files, {artifact['files']['bytes']:,} bytes · "
            f"upstream: {upstream}",
        ),
        ("h", 3, "Config"),
        ("table", ["field", "value"], sorted(artifact["config"].items())),
        ("h", 3, "Stats"),
        ("table", ["stat", "value"], stats),
    ]
    return blocks + detail_blocks(artifact["asset"], artifact["detail"])


def detail_blocks(asset: str, detail: dict[str, Any]) -> list[Block]:
    """Tables for the stage detail: counts as (value, count) tables, lists of records as tables."""
    blocks: list[Block] = [("h", 3, "Detail")]
    scalars = [(key, value) for key, value in detail.items() if not isinstance(value, (dict, list))]
    if scalars:
        blocks.append(("table", ["fact", "value"], scalars))
    for key, value in detail.items():
        if key in ("fetches", "document_signals"):
            blocks.append(("p", f"{key}: {len(value)} records, listed in full in report.json."))
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
            blocks += [("h", 4, key), ("table", ["value", "count"], list(value.items()))]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            blocks += [("h", 4, key), _records_table(value)]
        elif isinstance(value, dict) and value:
            blocks += [("h", 4, key), _nested_table(value)]
    return blocks


def _records_table(records: list[dict[str, Any]]) -> Block:
    headers = list(dict.fromkeys(name for record in records for name in record))
    return ("table", headers, [[record.get(name) for name in headers] for record in records])


def _nested_table(value: dict[str, Any]) -> Block:
    """A dict of records (e.g. rejections {total, by_stage_reason}) or of scalars, flattened one level."""
    rows = []
    for key, item in value.items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            rows += [(f"{key}[{i}]", record) for i, record in enumerate(item)]
        else:
            rows.append((key, item))
    return ("table", ["key", "value"], rows)


def _package_blocks(artifacts: list[dict[str, Any]]) -> list[Block]:
    seen: dict[str, set[str]] = {}
    for artifact in artifacts:
        for name, version in (artifact.get("packages") or {}).items():
            seen.setdefault(name, set()).add(version)
    rows = [(name, ", ".join(sorted(versions))) for name, versions in sorted(seen.items())]
    return [("h", 2, "Package versions (all artifacts)"), ("table", ["package", "versions"], rows)]
