"""Stage detail for the audit: what each known kind of artifact says about the data and the model.

`stage_detail(store, manifest)` returns a JSON-able dict. Known stages add their specifics (crawl: every URL with
fetch time, status, robots decision, licence and opt-out signals; filters: funnel and rejections; ...); every
other stage gets its file list, so a stage added later is still described.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from data_code.corpus import exclusions, is_corpus, read_documents
from data_code.dedupe.history import SUPERSEDED_FILE
from data_code.document import DOCUMENTS_FILE, REJECTIONS_FILE
from data_code.shards.shard_set import SET_FILE, check_exclusions
from lineage.audit.chain import read_json_file, read_table
from lineage.manifest import Manifest
from lineage.store import ArtifactStore

FETCH_COLUMNS = [
    "url",
    "final_url",
    "fetched_at",
    "http_status",
    "outcome",
    "robots_decision",
    "robots_meta",
    "license",
    "detail",
]
SIGNAL_COLUMNS = ["doc_id", "url", "domain", "fetch_time", "http_status", "license", "robots", "robots_meta"]
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "nofollow", "none", "noarchive")  # robots meta / X-Robots-Tag
ARCHITECTURE_KEYS = (
    "architectures",
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "max_position_embeddings",
    "num_local_experts",
)
MAX_LISTED_FILES = 50  # generic stages: list at most this many file names


def stage_detail(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """Stage-specific facts about one artifact (generic: its files) as a JSON-able dict."""
    describe = DETAILS.get(manifest.asset, _generic)
    return describe(store, manifest)


def _crawl(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    table = read_table(store, manifest.asset, manifest.version, "fetches.parquet")
    if table is None:
        return {"fetches": [], "note": "no fetches.parquet"}
    table = table.select([name for name in FETCH_COLUMNS if name in table.column_names])
    rows = _plain_rows(table)
    return {
        "urls": len(rows),
        "by_outcome": _count(rows, "outcome"),
        "by_http_status": _count(rows, "http_status"),
        "by_robots_decision": _count(rows, "robots_decision"),
        "licenses": _count(rows, "license"),
        "opt_out_signals": _directive_counts(rows, "robots_meta"),
        "fetches": rows,  # the full list: url, fetch time, status, robots decision, licence, opt-out directives
    }


def _documents(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """Extracted, deduplicated or filtered documents: licence / robots / opt-out signals and rejections."""
    detail = _document_signals(store, manifest, listed=False)  # the full list: raw_crawl and training_corpus
    detail["rejections"] = _rejections(store, manifest)
    return detail


def _dedupe(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    stats = manifest.stats
    detail = {
        "documents_in": stats.get("documents_in"),
        "documents_kept": stats.get("documents_kept"),
        "duplicates_removed": _difference(stats.get("documents_in"), stats.get("documents_kept")),
        "exact_duplicates": stats.get("exact_duplicates"),
        "near_duplicates": stats.get("near_duplicates"),
        "clusters": stats.get("clusters"),
        "rejections": _rejections(store, manifest),
    }
    for key in ("history", "history_days", "new", "unchanged", "superseding", "superseded"):
        detail[key] = stats.get(key)
    superseded = read_table(store, manifest.asset, manifest.version, SUPERSEDED_FILE)
    detail["superseded_versions"] = _plain_rows(superseded) if superseded is not None else []
    return detail


def _filtered(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    detail = _documents(store, manifest)
    detail["funnel"] = read_json_file(store, manifest.asset, manifest.version, "funnel.json") or []
    detail["contract"] = manifest.stats.get("contract")
    detail["documents_in"] = manifest.stats.get("documents_in")
    detail["documents_kept"] = manifest.stats.get("documents_kept")
    return detail


def _corpus(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """A corpus: the signals of the documents it trains on, its nights, and every document it leaves out (the older
    versions its changed pages superseded, the opted-out ones) with the reason."""
    directory = store.local_path(manifest.asset, manifest.version) if store.is_local else None
    if directory is not None and is_corpus(directory):
        rows = _plain_rows(read_documents(directory, SIGNAL_COLUMNS))
        detail = _signals(rows, listed=True)
        left_out = exclusions(directory).to_pylist()
        detail["superseded"] = [row for row in left_out if row["reason"].startswith("superseded:")]
        detail["excluded"] = [row for row in left_out if not row["reason"].startswith("superseded:")]
    else:
        detail = _document_signals(store, manifest)
    detail.update({key: manifest.stats.get(key) for key in ("documents", "tokens", "domains", "nights", "excluded")})
    return detail


def _shard_set(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """A shard set: its day shards and exclusions, and the exclusions proved again from the sidecars."""
    detail = _shards(store, manifest)
    description = read_json_file(store, manifest.asset, manifest.version, SET_FILE) or {}
    detail["days"] = description.get("days", [])
    detail["excluded_documents"] = description.get("excluded_documents", [])
    if store.is_local:
        passed, message = check_exclusions(store.local_path(manifest.asset, manifest.version))
        detail["exclusions_verified"] = {"passed": passed, "message": message}
    return detail


def _tokenizer(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    return {"fingerprint": read_json_file(store, manifest.asset, manifest.version, "fingerprint.json")}


def _shards(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    shards = read_json_file(store, manifest.asset, manifest.version, "shards.json") or {}
    return {
        "tokenizer_fingerprint": shards.get("tokenizer_fingerprint", manifest.stats.get("fingerprint")),
        "splits": shards.get("splits", {}),
        "seq_len": shards.get("seq_len"),
        "dtype": shards.get("dtype"),
        "checks": manifest.stats.get("checks", {}),
    }


def _model(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """A trained model: data order and tokens seen (pretraining), training numbers, and its files."""
    stats = manifest.stats
    data_order = read_json_file(store, manifest.asset, manifest.version, "data_order.json") or stats.get("data_order")
    keys = (
        "steps",
        "tokens_seen",
        "parameters",
        "final_loss",
        "val_loss",
        "val_bpb",
        "device",
        "processes",
        "mixed_precision",
        "resumed_from_step",
    )
    detail = {key: stats[key] for key in keys if key in stats}
    if "start_reason" in stats:  # a base model: continued from its parent (an upstream), or from scratch, and why
        detail["start"] = stats["start_reason"]
        detail["nights"] = stats.get("nights")
        detail["parent"] = next((ref.version for ref in manifest.upstream if ref.asset == manifest.asset), None)
        detail["rebuild_of"] = stats.get("rebuild_of")  # made instead of this version, because of an opt-out
    if data_order is not None:
        detail["data_order"] = data_order
        detail.setdefault("tokens_seen", data_order.get("tokens_seen"))
    architecture = _architecture(store, manifest)
    if architecture:
        detail["architecture"] = architecture
    detail["files"] = _file_list(manifest)
    return detail


def _architecture(store: ArtifactStore, manifest: Manifest) -> dict[str, Any] | None:
    """Key numbers of the HF config.json inside a model artifact (model/config.json or config.json)."""
    for relative in ("model/config.json", "config.json"):
        config = read_json_file(store, manifest.asset, manifest.version, relative)
        if isinstance(config, dict):
            return {key: config[key] for key in ARCHITECTURE_KEYS if key in config}
    return None


def _generic(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    return {"files": _file_list(manifest)}


def _document_signals(store: ArtifactStore, manifest: Manifest, listed: bool = True) -> dict[str, Any]:
    table = read_table(store, manifest.asset, manifest.version, DOCUMENTS_FILE)
    if table is None:
        return {"documents": 0, "note": "no documents.parquet"}
    table = table.select([name for name in SIGNAL_COLUMNS if name in table.column_names])
    return _signals(_plain_rows(table), listed)


def _signals(rows: list[dict], listed: bool) -> dict[str, Any]:
    detail = {
        "documents": len(rows),
        "domains": _count(rows, "domain"),
        "licenses": _count(rows, "license"),
        "robots": _count(rows, "robots"),
        "opt_out_signals": _directive_counts(rows, "robots_meta"),
    }
    if listed:
        detail["document_signals"] = rows  # per document: url, fetch time, status, licence, robots, opt-out
    return detail


def _rejections(store: ArtifactStore, manifest: Manifest) -> dict[str, Any]:
    """Rejections counted by stage and reason, and by the language of the decision where the rows carry it."""
    table = read_table(store, manifest.asset, manifest.version, REJECTIONS_FILE)
    if table is None:
        return {"total": 0, "by_stage_reason": []}
    keys = [name for name in ("stage", "reason", "language") if name in table.column_names]  # older rows: no language
    counts = Counter(zip(*(table.column(name).to_pylist() for name in keys), strict=True))
    rows = [dict(zip(keys, key, strict=True)) | {"count": count} for key, count in counts.most_common()]
    return {"total": table.num_rows, "by_stage_reason": rows}


def _plain_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts of JSON-able values (timestamps as ISO 8601 strings)."""
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    return rows


def _count(rows: list[dict], column: str) -> dict[str, int]:
    """value -> count, most frequent first; a missing value counts as 'none'."""
    counts = Counter("none" if row.get(column) in (None, "") else str(row[column]) for row in rows)
    return dict(counts.most_common())


def _directive_counts(rows: list[dict], column: str) -> dict[str, int]:
    """Documents carrying each opt-out directive (a row may carry several, comma-separated)."""
    counts: Counter[str] = Counter()
    for row in rows:
        directives = {part.strip().lower() for part in (row.get(column) or "").split(",") if part.strip()}
        counts.update(directive for directive in directives if directive in OPT_OUT_DIRECTIVES)
    return dict(counts.most_common())


def _difference(total: Any, kept: Any) -> int | None:
    return total - kept if isinstance(total, int) and isinstance(kept, int) else None


def _file_list(manifest: Manifest) -> dict[str, Any]:
    names = [{"path": entry.path, "size": entry.size, "sha256": entry.sha256} for entry in manifest.files]
    return {
        "count": len(names),
        "bytes": sum(entry.size for entry in manifest.files),
        "listed": names[:MAX_LISTED_FILES],
    }


DETAILS: dict[str, Callable[[ArtifactStore, Manifest], dict[str, Any]]] = {
    "raw_crawl": _crawl,
    "documents": _documents,
    "deduplicated_documents": _dedupe,
    "filtered_documents": _filtered,
    "training_corpus": _corpus,
    "tokenizer": _tokenizer,
    "token_shards": _shards,
    "shard_set": _shard_set,
    "base_model": _model,
    "sft_model": _model,
    "dpo_model": _model,
    "serving_model": _model,
}
