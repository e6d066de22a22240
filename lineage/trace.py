"""From a token of a shard_set (the day token shards training reads) back to its document, URL, licence and fetch time.

lmforge trace train 0 1234            # or: trace_token(store, "train", 0, 1234)
"""

from __future__ import annotations

from typing import Any

from data_code.corpus import corpus_files
from data_code.shards import trace
from lineage.store import ArtifactStore


def trace_token(
    store: ArtifactStore, split: str, shard: int, offset: int, shards_version: str | None = None
) -> dict[str, Any]:
    """The document that token `offset` of shard `shard` of `split` came from, in shard_set `shards_version`
    (default: the newest), resolved through the set's training_corpus: the day files it reads."""
    version = shards_version or store.latest("shard_set")
    shards = store.read_manifest("shard_set", version)
    corpus = next((ref for ref in shards.upstream if ref.asset == "training_corpus"), None)
    if corpus is None:
        raise ValueError(f"shard_set/{version} records no training_corpus upstream")
    documents = corpus_files(store.local_path("training_corpus", corpus.version))
    found = trace(store.file_uri("shard_set", version, ""), split, shard, offset, documents)
    return {"shard_set": version, **found}
