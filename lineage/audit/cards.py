"""Model card (Mitchell et al. 2019, "Model Cards for Model Reporting") and datasheet (Gebru et al. 2021,
"Datasheets for Datasets") generated from an audit: every sentence states a recorded fact, nothing is hand-written
about a particular model.
"""

from __future__ import annotations

from typing import Any

from lineage.audit.chain import is_model_asset
from lineage.audit.render import Block, to_markdown

TRAINING_STAGES = {
    "base_model": "pretraining",
    "sft_model": "supervised fine-tuning (SFT)",
    "dpo_model": "preference optimization (DPO)",
}
METRIC_KEYS = ("final_loss", "val_loss", "val_bpb", "perplexity", "accuracy")


def target_artifact(audit: dict[str, Any]) -> dict[str, Any]:
    """The audited artifact (the last one: artifacts are ordered ancestors first)."""
    return audit["artifacts"][-1]


def artifacts_of(audit: dict[str, Any], asset: str) -> list[dict[str, Any]]:
    return [artifact for artifact in audit["artifacts"] if artifact["asset"] == asset]


def nearest(audit: dict[str, Any], asset: str) -> dict[str, Any] | None:
    """The artifact of `asset` closest to the target (None when the chain has none)."""
    found = artifacts_of(audit, asset)
    return min(found, key=lambda artifact: artifact["depth"]) if found else None


def model_metrics(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """[{artifact, metric, value}] for the numeric training/evaluation metrics recorded in the chain."""
    rows = []
    for artifact in audit["artifacts"]:
        if not (is_model_asset(artifact["asset"]) or artifact["asset"] == "model_evaluation"):
            continue
        for key, value in artifact["stats"].items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and (key in METRIC_KEYS or artifact["asset"] == "model_evaluation"):
                rows.append({"artifact": f"{artifact['asset']}/{artifact['version']}", "metric": key, "value": value})
    return rows


def model_card_markdown(audit: dict[str, Any]) -> str:
    """The model card of the audited artifact as Markdown (the deployment writes it into the serving artifact)."""
    target = target_artifact(audit)
    blocks: list[Block] = [("h", 1, f"Model card: {target['asset']} {target['version']}")]
    blocks += _model_details(audit, target)
    blocks += _intended_use(audit)
    blocks += _factors(audit)
    metrics = model_metrics(audit)
    blocks += [("h", 2, "Metrics"), ("list", sorted({row["metric"] for row in metrics}) or ["none recorded"])]
    blocks += _evaluation_data(audit)
    blocks += [("h", 2, "Training data")] + _training_data(audit)
    blocks += [
        ("h", 2, "Quantitative analyses"),
        (
            "table",
            ["artifact", "metric", "value"],
            [[row["artifact"], row["metric"], row["value"]] for row in metrics],
        ),
    ]
    blocks += _ethical_considerations(audit)
    blocks += _caveats(audit)
    return to_markdown(blocks)


def _model_details(audit: dict[str, Any], target: dict[str, Any]) -> list[Block]:
    trained = [a for a in audit["artifacts"] if a["asset"] in TRAINING_STAGES]
    architecture = next((a["detail"]["architecture"] for a in reversed(trained) if "architecture" in a["detail"]), {})
    rows = [
        ("artifact", f"{target['asset']}/{target['version']}"),
        ("uri", target["uri"]),
        ("created", target["created_at"]),
        ("code version", target["code_version"]),
        ("git commit", target["git_commit"]),
        ("training stages", ", ".join(TRAINING_STAGES[a["asset"]] for a in trained) or "none in the chain"),
        ("architecture", architecture or "-"),
        (
            "parameters",
            next((a["stats"].get("parameters") for a in reversed(trained) if "parameters" in a["stats"]), None),
        ),
        (
            "training preset",
            next((a["config"].get("preset") for a in reversed(trained) if "preset" in a["config"]), None),
        ),
        ("frameworks", {k: v for k, v in target["packages"].items() if k in ("torch", "transformers", "peft", "trl")}),
    ]
    registry = audit["target"].get("registry")
    if registry:
        rows.append(
            (
                "registry",
                f"{registry['name']} v{registry['version']} aliases={registry['aliases']} gate={registry.get('gate')}",
            )
        )
    return [("h", 2, "Model details"), ("table", ["field", "value"], rows)]


def _intended_use(audit: dict[str, Any]) -> list[Block]:
    stages = [TRAINING_STAGES[a["asset"]] for a in audit["artifacts"] if a["asset"] in TRAINING_STAGES]
    tuned = any(stage != "pretraining" for stage in stages)
    kind = "an instruction/chat model (chat template applied)" if tuned else "a text-continuation model (no "
    kind += "" if tuned else "instruction tuning in its lineage)"
    facts = [f"Lineage shows {kind}: {' → '.join(stages) or 'no training stage'}."]
    summary = audit["summary"]
    if summary.get("training_domains"):
        domains = summary["training_domains"]
        facts.append(
            f"In scope: text like its training data ({summary.get('training_documents')} documents from "
            f"{len(domains)} domain(s): {', '.join(domains)})."
        )
    languages = _languages(audit)
    if languages:
        facts.append(
            f"Out of scope: languages other than {', '.join(languages)} (the language filter kept only these)."
        )
    registry = audit["target"].get("registry")
    if registry:
        facts.append(
            f"Deployment status: aliases {registry['aliases'] or 'none'}, evaluation gate "
            f"{registry.get('gate') or 'not recorded'}."
        )
    return [("h", 2, "Intended use"), ("list", facts)]


def _languages(audit: dict[str, Any]) -> list[str]:
    filtered = nearest(audit, "filtered_documents")
    return list(filtered["config"].get("languages", [])) if filtered else []


def _factors(audit: dict[str, Any]) -> list[Block]:
    summary = audit["summary"]
    rows = [
        ("languages kept", _languages(audit) or "-"),
        ("domains", summary.get("training_domains") or "-"),
        ("crawl days", summary.get("crawl_days") or "-"),
        ("licence signals", summary.get("training_licenses") or "-"),
    ]
    return [("h", 2, "Factors"), ("table", ["factor", "training data"], rows)]


def _evaluation_data(audit: dict[str, Any]) -> list[Block]:
    shards = nearest(audit, "shard_set")
    rows = []
    if shards:
        validation = shards["detail"].get("splits", {}).get("validation", {})
        rows.append(
            (
                "held-out split",
                f"shard_set/{shards['version']} validation: "
                f"{validation.get('documents')} documents, {validation.get('tokens')} tokens",
            )
        )
    for evaluation in artifacts_of(audit, "model_evaluation"):
        rows.append(("evaluation", f"model_evaluation/{evaluation['version']}: {evaluation['config']}"))
    return [("h", 2, "Evaluation data"), ("table", ["data", "description"], rows)]


def _training_data(audit: dict[str, Any]) -> list[Block]:
    summary = audit["summary"]
    shards = nearest(audit, "shard_set")
    train = shards["detail"].get("splits", {}).get("train", {}) if shards else {}
    rows = [
        ("documents", summary.get("training_documents")),
        ("train split", f"{train.get('documents')} documents, {train.get('tokens')} tokens" if train else "-"),
        ("tokens seen in training", summary.get("tokens_seen")),
        ("URLs fetched", summary.get("urls_fetched")),
        ("duplicates removed", summary.get("duplicates_removed")),
        ("documents rejected by filters", summary.get("filter_rejections")),
        ("tokenizer fingerprint", shards["detail"].get("tokenizer_fingerprint") if shards else None),
    ]
    return [("table", ["fact", "value"], rows)]


def _ethical_considerations(audit: dict[str, Any]) -> list[Block]:
    summary = audit["summary"]
    filtered = nearest(audit, "filtered_documents")
    pii = filtered["stats"].get("pii") if filtered else None
    crawl = artifacts_of(audit, "raw_crawl")
    robots: dict[str, int] = {}
    for artifact in crawl:
        for decision, count in artifact["detail"].get("by_robots_decision", {}).items():
            robots[decision] = robots.get(decision, 0) + count
    rows = [
        ("licence signals in training data", summary.get("training_licenses") or "-"),
        ("opt-out directives in training data", summary.get("training_opt_out_signals") or "none"),
        ("robots.txt decisions at crawl time", robots or "-"),
        ("PII redacted (by type)", pii or "none recorded"),
        (
            "policy filter",
            (filtered["stats"].get("filters", {}).get("policy") or {}).get("rejected_by_reason") if filtered else "-",
        ),
    ]
    return [("h", 2, "Ethical considerations"), ("table", ["consideration", "recorded"], rows)]


def _caveats(audit: dict[str, Any]) -> list[Block]:
    verification = audit.get("verification") or {}
    verdict = "passed" if verification.get("verified") else "FAILED" if verification else "not run"
    facts = [
        f"Reproducibility check: {verdict}"
        f" ({len(verification.get('mismatches', []))} mismatches, {len(verification.get('warnings', []))} warnings).",
        f"Generated from lineage at {audit['generated_at']}; {len(audit['artifacts'])} artifacts in the chain.",
    ]
    facts += [
        f"Unverified identity: {w['asset']}/{w['version']}: {w['detail']}" for w in verification.get("warnings", [])
    ]
    facts += [
        f"Missing upstream: {m['asset']}/{m['version']} (named by {m['referenced_by']})"
        for m in audit.get("missing_upstream", [])
    ]
    return [("h", 2, "Caveats and recommendations"), ("list", facts)]


def datasheet_markdown(audit: dict[str, Any]) -> str:
    """A datasheet of the audited artifact's training data, as Markdown."""
    target = target_artifact(audit)
    name = f"{target['asset']}/{target['version']}"
    data = [a for a in audit["artifacts"] if not is_model_asset(a["asset"])]
    stages = " → ".join(dict.fromkeys(a["asset"] for a in data))
    blocks: list[Block] = [("h", 1, f"Datasheet: training data of {target['asset']} {target['version']}")]
    blocks += [
        ("h", 2, "Motivation"),
        ("list", [f"Assembled to train {name} by the lmforge pipeline.", f"Stages: {stages}."]),
    ]
    blocks += [("h", 2, "Composition"), *_training_data(audit), _factors(audit)[1]]
    blocks += [("h", 2, "Collection process"), _collection_table(audit)]
    blocks += [("h", 2, "Preprocessing, cleaning, labeling"), _preprocessing_table(data)]
    uses = f"Trains {name}; `lineage.audit.which_models` lists every model trained on a given URL or domain."
    blocks += [("h", 2, "Uses"), ("list", [uses])]
    rows = [[_name(a), a["uri"], a["files"]["count"], a["files"]["bytes"]] for a in data]
    blocks += [("h", 2, "Distribution"), ("table", ["artifact", "uri", "files", "bytes"], rows)]
    rows = [[_name(a), a["code_version"], a["git_commit"], a["created_at"]] for a in data]
    blocks += [("h", 2, "Maintenance"), ("table", ["artifact", "code version", "git commit", "created"], rows)]
    return to_markdown(blocks)


def _collection_table(audit: dict[str, Any]) -> Block:
    rows = [
        [
            a["version"],
            a["partition"],
            a["config"].get("seeds"),
            a["config"].get("user_agent"),
            a["detail"].get("by_outcome"),
            a["detail"].get("by_robots_decision"),
        ]
        for a in artifacts_of(audit, "raw_crawl")
    ]
    return ("table", ["crawl", "day", "seeds", "user agent", "fetch outcomes", "robots decisions"], rows)


def _preprocessing_table(data: list[dict[str, Any]]) -> Block:
    rows = [
        [
            _name(a),
            a["detail"].get("documents_in"),
            a["detail"].get("documents_kept"),
            a["detail"]["rejections"]["total"],
        ]
        for a in data
        if "rejections" in a["detail"]
    ]
    return ("table", ["stage", "documents in", "kept", "rejections"], rows)


def _name(artifact: dict[str, Any]) -> str:
    return f"{artifact['asset']}/{artifact['version']}"
