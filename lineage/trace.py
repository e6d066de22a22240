"""From a token of a token_shards artifact back to its document, URL, licence and fetch time.

lmforge trace train 0 1234            # or: trace_token(store, "train", 0, 1234)
"""

from __future__ import annotations

from typing import Any

from data_code.document import DOCUMENTS_FILE
from data_code.shards import trace
from lineage.store import ArtifactStore


def trace_token(
    store: ArtifactStore, split: str, shard: int, offset: int, shards_version: str | None = None
) -> dict[str, Any]:
    """The document that token `offset` of shard `shard` of `split` came from, in token_shards `shards_version`
    (default: the newest), resolved through the shards' own training_corpus upstream."""
    version = shards_version or store.latest("token_shards")
    shards = store.read_manifest("token_shards", version)
    corpus = next((ref for ref in shards.upstream if ref.asset == "training_corpus"), None)
    if corpus is None:
        raise ValueError(f"token_shards/{version} records no training_corpus upstream")
    documents = store.file_uri("training_corpus", corpus.version, DOCUMENTS_FILE)
    found = trace(store.file_uri("token_shards", version, ""), split, shard, offset, documents)
    return {"token_shards": version, **found}
