"""The opt-out list: URLs and domains whose owners asked not to be trained on, in `$LMFORGE_HOME/optout.txt`.

Same format as the filter stage's blocklist (data_code/filters/blocklist.py): one domain (`example.com`, which also
covers its subdomains) or URL prefix (`https://example.org/private/`) per line, `#` starts a comment. The filter
stage excludes these documents (its version includes `optout_digest`, so a changed list means a new corpus), and
`compliance_violations` finds opted-out documents that are already in an artifact's training data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from data_code.filters.blocklist import Blocklist
from data_code.shards.shard_set import SET_FILE
from lineage.audit.chain import read_json_file, walk_chain
from lineage.audit.index import build_url_index
from lineage.settings import Settings
from lineage.store import ArtifactStore

OPTOUT_FILE = "optout.txt"


def optout_path(settings: Settings | None = None) -> Path:
    """Where the opt-out list lives: $LMFORGE_HOME/optout.txt."""
    return (settings or Settings.from_env()).home / OPTOUT_FILE


def add_optout(entry: str, note: str | None = None, path: str | Path | None = None) -> Path:
    """Append `entry` (a domain or a URL prefix, with an optional note kept as a comment) to the opt-out list;
    a malformed entry raises ValueError before anything is written. Returns the list's path."""
    if not entry:
        raise ValueError("an opt-out entry is a domain (example.com) or a URL prefix (https://...), got nothing")
    Blocklist.from_lines([entry], source="the new entry")  # refuses a malformed entry
    path = Path(path) if path is not None else optout_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(entry + (f"  # {note}" if note else "") + "\n")
    return path


def load_optout(path: str | Path | None = None) -> Blocklist:
    """The opt-out list at `path` (default $LMFORGE_HOME/optout.txt); a missing file is an empty list.
    A malformed line raises ValueError naming the file and line."""
    path = Path(path) if path is not None else optout_path()
    return Blocklist.from_file(path) if path.is_file() else Blocklist()


def optout_digest(path: str | Path | None = None) -> str:
    """'sha256:<hex>' of the list's entries (sorted, normalized): comments, blank lines and order do not change it,
    an added or removed entry does. A missing file digests like an empty one."""
    optout = load_optout(path)
    canonical = json.dumps({"domains": sorted(optout.domains), "url_prefixes": sorted(optout.url_prefixes)})
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def compliance_violations(store: ArtifactStore, asset: str, version: str, optout: Blocklist) -> list[dict[str, Any]]:
    """Opted-out documents in the training data of `asset/version`: the documents of every token_shards artifact
    in its upstream chain (itself included). Each: {url, domain, doc_id, entry, reason, token_shards, split},
    sorted by url. Empty when the list is empty or nothing in the chain matches."""
    if not optout.domains and not optout.url_prefixes:
        return []
    chain = walk_chain(store, asset, version)
    shards = {node.key for node in chain.ordered() if node.manifest.asset == "token_shards"}
    if not shards:
        return []
    # A document is read through a shard set of the chain that holds its day's shards and does not exclude it (the
    # opt-out reaches it without rewriting the day shards); a continued model's ancestors read older sets, which
    # never held the later days' shards.
    readers: dict[str, list[set[str]]] = {}  # token_shards key -> what each shard set holding it excludes
    for node in chain.ordered():
        if node.manifest.asset != "shard_set":
            continue
        gone = set((read_json_file(store, "shard_set", node.manifest.version, SET_FILE) or {}).get(
            "excluded_documents", []))  # fmt: skip
        for ref in node.manifest.upstream:
            if ref.asset == "token_shards":
                readers.setdefault(f"{ref.asset}/{ref.version}", []).append(gone)
    rows = build_url_index(store).rows
    violations = []
    for row in rows.to_pylist():
        if row["token_shards"] not in shards or row["url"] is None:
            continue
        sets = readers.get(row["token_shards"])
        if sets and all(row["doc_id"] in gone for gone in sets):
            continue
        matched = optout.match(row["url"], row["domain"] or "")
        if matched is not None:
            reason, entry = matched
            violations.append(
                {
                    "url": row["url"],
                    "domain": row["domain"],
                    "doc_id": row["doc_id"],
                    "entry": entry,
                    "reason": reason,
                    "token_shards": row["token_shards"].split("/", 1)[1],
                    "split": row["split"],
                }
            )
    return sorted(violations, key=lambda item: (item["url"], item["token_shards"], item["split"]))
