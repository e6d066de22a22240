"""Which models saw a URL: URL/domain -> doc_ids -> token_shards whose span sidecars hold them, and instruction /
preference datasets whose examples were derived from them (`source_doc_ids`) -> every artifact downstream of
those (manifests' upstream refs followed in reverse) -> the models among them.

A document held out of pretraining (validation split) can still be trained on by SFT or DPO through an example
made from it: the dataset rows say so (split "train"), and the model counts as trained on it.

The index is cached under the store root, keyed by the set of complete artifacts: a new artifact changes the key,
so a stale index is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from data_code.corpus import is_corpus, read_documents
from data_code.document import DOCUMENTS_FILE
from data_code.shards.shard_set import SET_FILE
from lineage.audit.chain import (
    all_artifacts,
    artifact_key,
    descendants,
    downstream_map,
    is_model_asset,
    load_manifests,
    read_json_file,
    read_table,
)
from lineage.settings import Settings
from lineage.store import ArtifactStore

CACHE_DIR = "audit_cache"  # under the store root, beside lake/
SPLITS = ("train", "validation")
INDEX_FORMAT = "url-index-2"  # part of the cache key: a cache built by older code is never read
DATASETS = ("instruction_data", "preference_data")  # examples with source_doc_ids (assets/instruct.py)
EXAMPLES_FILE = "examples.parquet"
INDEX_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("domain", pa.string()),
        ("doc_id", pa.string()),
        ("token_shards", pa.string()),
        ("split", pa.string()),
    ]
)


@dataclass
class UrlIndex:
    """One row per (document, token_shards version, split) and the downstream closure of each shards version."""

    key: str  # digest of the set of artifacts the index was built from
    rows: pa.Table  # INDEX_SCHEMA
    downstream: dict[str, list[str]]  # 'token_shards/<version>' -> every artifact downstream of it


def build_url_index(store: ArtifactStore, use_cache: bool = True) -> UrlIndex:
    """The URL index of the whole store, read from the cache when the store has not changed since it was built."""
    artifacts = all_artifacts(store)
    listed = "\n".join([INDEX_FORMAT, *(artifact_key(a, v) for a, v in artifacts)])
    key = hashlib.sha256(listed.encode()).hexdigest()[:16]
    cache = _cache_dir(store)
    if use_cache and cache is not None and (cache / f"{key}.json").exists():
        return UrlIndex(key, pq.read_table(cache / f"{key}.parquet"), json.loads((cache / f"{key}.json").read_text()))
    manifests = load_manifests(store)
    children = downstream_map(store, manifests)
    tables, downstream = [], {}
    for name, manifest in manifests.items():
        if manifest.asset == "token_shards":
            tables.append(_shard_rows(store, manifest))
            downstream[name] = descendants(children, name)
        elif manifest.asset in DATASETS:
            tables.append(_example_rows(store, manifest))
            downstream[name] = descendants(children, name)
        elif manifest.asset == "shard_set":  # what it excludes hides documents from its descendants
            downstream[name] = descendants(children, name)
    rows = pa.concat_tables(tables) if tables else INDEX_SCHEMA.empty_table()
    index = UrlIndex(key, rows, downstream)
    if cache is not None:
        _write_cache(cache, index)
    return index


def which_models(
    store: ArtifactStore, url: str | None = None, domain: str | None = None, client: MlflowClient | None = None
) -> list[dict[str, Any]]:
    """Model artifacts (assets named *_model) whose training chain holds a document of `url` (exact) or `domain`
    (that host or any subdomain). Each: {asset, version, uri, token_shards, datasets, splits, trained, documents, urls,
    registered}; `trained` is False when the documents are only in validation splits; `registered` lists the
    MLflow model versions {name, version, aliases} of that artifact (with a client; else [])."""
    if (url is None) == (domain is None):
        raise ValueError("which_models needs exactly one of url= or domain=")
    index = build_url_index(store)
    hits = _matching_rows(index.rows, url, domain.lower().rstrip(".") if domain else None)
    found: dict[str, dict[str, Any]] = {}
    excluding = _shard_set_exclusions(store, index)
    for hit in hits.to_pylist():
        for key in _models_that_read(index, excluding, hit["token_shards"], hit["doc_id"]):
            asset, version = key.split("/", 1)
            _add_hit(found.setdefault(key, _new_entry(store, asset, version)), hit)
    registered = _registered_versions(client) if client is not None else {}
    return [_finish(entry, registered) for _, entry in sorted(found.items())]


def _models_that_read(index: UrlIndex, excluding: dict[str, set[str]], source: str, doc_id: str) -> set[str]:
    """Model artifacts downstream of `source` that read `doc_id`: through a shard set that does not exclude it
    (superseded and opted-out documents are excluded by later shard sets), or, with no shard set between (instruction
    datasets), every model downstream."""
    downstream = index.downstream.get(source, [])
    shard_sets = [key for key in downstream if key.startswith("shard_set/")]
    if not shard_sets:
        return {key for key in downstream if is_model_asset(key.split("/", 1)[0])}
    reading = [key for key in shard_sets if doc_id not in excluding.get(key, ())]
    return {key for s in reading for key in index.downstream.get(s, []) if is_model_asset(key.split("/", 1)[0])}


def _shard_set_exclusions(store: ArtifactStore, index: UrlIndex) -> dict[str, set[str]]:
    """'shard_set/<version>' -> the doc_ids it excludes, for every shard set downstream of an indexed artifact."""
    keys = {key for closure in index.downstream.values() for key in closure if key.startswith("shard_set/")}
    found = {}
    for key in keys:
        description = read_json_file(store, "shard_set", key.split("/", 1)[1], SET_FILE) or {}
        found[key] = set(description.get("excluded_documents", []))
    return found


def _new_entry(store: ArtifactStore, asset: str, version: str) -> dict[str, Any]:
    sets = {name: set() for name in ("token_shards", "datasets", "splits", "doc_ids", "urls")}
    return {"asset": asset, "version": version, "uri": store.uri(asset, version), **sets}


def _add_hit(entry: dict[str, Any], hit: dict[str, Any]) -> None:
    source_asset, source_version = hit["token_shards"].split("/", 1)  # a token_shards or dataset artifact
    if source_asset == "token_shards":
        entry["token_shards"].add(source_version)
    else:
        entry["datasets"].add(hit["token_shards"])
    entry["splits"].add(hit["split"])
    entry["doc_ids"].add(hit["doc_id"])
    entry["urls"].add(hit["url"])


def _shard_rows(store: ArtifactStore, manifest) -> pa.Table:
    """(url, domain, doc_id, token_shards, split) for every document in one token_shards artifact."""
    urls = _corpus_urls(store, manifest)
    name = artifact_key(manifest.asset, manifest.version)
    columns: dict[str, list] = {field: [] for field in INDEX_SCHEMA.names}
    for split in SPLITS:
        doc_ids = set()
        for entry in manifest.files:
            if entry.path.startswith(f"{split}/") and entry.path.endswith(".spans.parquet"):
                spans = read_table(store, manifest.asset, manifest.version, entry.path, columns=["doc_id"])
                doc_ids.update(spans.column("doc_id").to_pylist())
        for doc_id in sorted(doc_ids):
            url, domain = urls.get(doc_id, (None, None))
            for field, value in zip(INDEX_SCHEMA.names, (url, domain, doc_id, name, split), strict=True):
                columns[field].append(value)
    return pa.table(columns, schema=INDEX_SCHEMA)


def _example_rows(store: ArtifactStore, manifest) -> pa.Table:
    """(url, domain, doc_id, dataset key, split) for every document an example of one dataset was derived from;
    split "train" for training examples, "validation" for held-out ones."""
    table = read_table(store, manifest.asset, manifest.version, EXAMPLES_FILE)
    if table is None or "source_doc_ids" not in table.column_names:
        return INDEX_SCHEMA.empty_table()
    urls = _corpus_urls(store, manifest)
    splits = table.column("split").to_pylist() if "split" in table.column_names else ["train"] * table.num_rows
    pairs = {
        (doc_id, "train" if split in (None, "train") else "validation")
        for doc_ids, split in zip(table.column("source_doc_ids").to_pylist(), splits, strict=True)
        for doc_id in doc_ids or []
    }
    name = artifact_key(manifest.asset, manifest.version)
    rows = [(*urls.get(doc_id, (None, None)), doc_id, name, split) for doc_id, split in sorted(pairs)]
    return pa.table(
        {field: [row[i] for row in rows] for i, field in enumerate(INDEX_SCHEMA.names)}, schema=INDEX_SCHEMA
    )


def _corpus_urls(store: ArtifactStore, shards) -> dict[str, tuple[str, str]]:
    """doc_id -> (url, domain) from the documents of the artifact's upstream: a day's documents.parquet, or the
    day files a training_corpus reads."""
    found: dict[str, tuple[str, str]] = {}
    for ref in shards.upstream:
        directory = store.local_path(ref.asset, ref.version) if store.is_local else None
        if directory is not None and is_corpus(directory):
            table = read_documents(directory, ["doc_id", "url", "domain"])
        else:
            table = read_table(store, ref.asset, ref.version, DOCUMENTS_FILE, columns=["doc_id", "url", "domain"])
        if table is not None:
            columns = (table.column(name).to_pylist() for name in ("doc_id", "url", "domain"))
            found.update({doc_id: (url, domain) for doc_id, url, domain in zip(*columns, strict=True)})
    return found


def _matching_rows(rows: pa.Table, url: str | None, domain: str | None) -> pa.Table:
    import pyarrow.compute as pc

    if url is not None:
        return rows.filter(pc.equal(rows.column("url"), url))
    domains = pc.utf8_lower(rows.column("domain"))
    mask = pc.or_(pc.equal(domains, domain), pc.ends_with(domains, "." + domain))
    return rows.filter(pc.fill_null(mask, False))


def _registered_versions(client: MlflowClient) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(asset, artifact version) -> MLflow model versions registered for that artifact, with their aliases."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for version in client.search_model_versions(f"name='{Settings.from_env().model_name}'"):
        tags = dict(version.tags)
        key = (tags.get("lmforge.asset", ""), tags.get("lmforge.version", ""))
        aliases = sorted(client.get_model_version(version.name, version.version).aliases)
        found.setdefault(key, []).append({"name": version.name, "version": str(version.version), "aliases": aliases})
    return found


def _finish(entry: dict[str, Any], registered: dict) -> dict[str, Any]:
    splits = sorted(entry["splits"])
    return {
        "asset": entry["asset"],
        "version": entry["version"],
        "uri": entry["uri"],
        "token_shards": sorted(entry["token_shards"]),
        "datasets": sorted(entry["datasets"]),
        "splits": splits,
        "trained": "train" in splits,
        "documents": len(entry["doc_ids"]),
        "urls": sorted(entry["urls"]),
        "registered": sorted(registered.get((entry["asset"], entry["version"]), []), key=lambda r: int(r["version"])),
    }


def _cache_dir(store: ArtifactStore) -> Path | None:
    """Local cache directory (None on a remote store: rebuilding there is cheaper than a second object store)."""
    return Path(store.root.path) / CACHE_DIR / "url_index" if store.is_local else None


def _write_cache(cache: Path, index: UrlIndex) -> None:
    """Write the index under its key (atomically: temp names then rename) and drop entries of older keys."""
    cache.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    table_tmp, json_tmp = cache / f"{index.key}.parquet{suffix}", cache / f"{index.key}.json{suffix}"
    pq.write_table(index.rows, table_tmp)
    json_tmp.write_text(json.dumps(index.downstream, sort_keys=True))
    os.replace(table_tmp, cache / f"{index.key}.parquet")
    os.replace(json_tmp, cache / f"{index.key}.json")  # last: the .json marks a complete entry
    for old in cache.iterdir():
        if not old.name.startswith(index.key) and ".tmp-" not in old.name:
            old.unlink(missing_ok=True)
