"""tokenizer and token_shards: the byte-level BPE trained on the corpus, and the packed, traceable token shards.

token_shards carries blocking checks (token ids in range, no empty shard, one EOS per document, no document in
both splits): training never reads shards that fail them.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.common import (
    dagster_config,
    dataclass_from_config,
    materialize_result,
    produce_artifact,
    upstream_manifest,
)
from assets.corpus import CORPUS_FILE, training_corpus
from data_code.shards import (
    ShardConfig,
    build_shards,
    check_eos_count,
    check_nonempty,
    check_split_disjoint,
    check_token_ids,
)
from data_code.tokenizer import TokenizerConfig, train_tokenizer
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

TOKENIZER_CODE_VERSION = "tokenizer-1"
SHARDS_CODE_VERSION = "token_shards-1"
SHARD_CHECKS = {
    "token_ids_in_vocabulary": check_token_ids,
    "no_empty_shard": check_nonempty,
    "eos_per_document": check_eos_count,
    "splits_disjoint": check_split_disjoint,
}

TokenizerDagsterConfig = dagster_config(TokenizerConfig, "TokenizerDagsterConfig")


@asset(deps=[training_corpus], code_version=TOKENIZER_CODE_VERSION, group_name="model", kinds={"huggingface"},
       description=__doc__)  # fmt: skip
def tokenizer(
    context: AssetExecutionContext,
    config: TokenizerDagsterConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Byte-level BPE (HF tokenizers) with <|endoftext|>, <|im_start|>, <|im_end|>, <|pad|> and a chat template."""
    store = artifact_store.store()
    tokenizer_config = dataclass_from_config(TokenizerConfig, config)
    corpus = upstream_manifest(context, store, "training_corpus")
    corpus_path = store.file_uri(corpus.asset, corpus.version, CORPUS_FILE)
    produced = produce_artifact(
        context,
        store=store,
        tracker=mlflow_tracking.tracker(),
        code_version=TOKENIZER_CODE_VERSION,
        config=tokenizer_config,
        upstream=[corpus],
        build=lambda directory: train_tokenizer(corpus_path, directory, tokenizer_config),
        log_files=("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"),
    )
    stats = produced.manifest.stats
    return materialize_result(
        produced,
        {
            "vocab_size": stats["vocab_size"],
            "fingerprint": stats["fingerprint"],
            "pre_tokenizer_family": stats["pre_tokenizer_family"],
            "documents": stats["documents"],
            "characters": stats["chars"],
        },
    )


TokenShardsConfig = dagster_config(ShardConfig, "TokenShardsConfig")


@asset(
    deps=[training_corpus, tokenizer],
    code_version=SHARDS_CODE_VERSION,
    group_name="model",
    kinds={"numpy"},
    description=__doc__,
    check_specs=[AssetCheckSpec(name, asset="token_shards", blocking=True) for name in SHARD_CHECKS],
)
def token_shards(
    context: AssetExecutionContext,
    config: TokenShardsConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Tokenized on all cores, EOS per document, packed to seq_len, split by document, mixed, shuffled."""
    store = artifact_store.store()
    shard_config = dataclass_from_config(ShardConfig, config)
    corpus = upstream_manifest(context, store, "training_corpus")
    trained = upstream_manifest(context, store, "tokenizer")
    corpus_path = store.file_uri(corpus.asset, corpus.version, CORPUS_FILE)
    tokenizer_dir = store.file_uri(trained.asset, trained.version, "")

    def build(directory):
        stats = build_shards(corpus_path, tokenizer_dir, directory, shard_config)
        checks = {name: check(directory) for name, check in SHARD_CHECKS.items()}
        return {
            **stats,
            "checks": {name: {"passed": ok, "message": message} for name, (ok, message) in checks.items()},
        }

    produced = produce_artifact(
        context,
        store=store,
        tracker=mlflow_tracking.tracker(),
        code_version=SHARDS_CODE_VERSION,
        config=shard_config,
        upstream=[corpus, trained],
        build=build,
        log_files=("index.json", "shards.json"),
    )
    stats = produced.manifest.stats
    metadata = {
        "fingerprint": stats["fingerprint"],
        "seq_len": stats["seq_len"],
        "dtype": stats["dtype"],
        "tokens_train": stats.get("tokens_train", 0),
        "tokens_validation": stats.get("tokens_validation", 0),
        "documents_train": stats.get("documents_train", 0),
        "documents_validation": stats.get("documents_validation", 0),
        "sequences_train": stats.get("sequences_train", 0),
        "sequences_validation": stats.get("sequences_validation", 0),
        "shard_files": stats["shards"],
        "tokens_per_s": round(stats.get("tokens_per_s", 0)),
    }
    if stats.get("mixture"):
        metadata["mixture"] = MetadataValue.md(_mixture_markdown(stats["mixture"]))
    result = materialize_result(produced, metadata)
    checks = [
        AssetCheckResult(
            check_name=name,
            passed=outcome["passed"],
            severity=AssetCheckSeverity.ERROR,
            description=outcome["message"],
        )  # fmt: skip
        for name, outcome in stats["checks"].items()
    ]
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata, check_results=checks)


def _mixture_markdown(rows: list[dict]) -> str:
    lines = ["| source | documents | sampling rate | expected after |", "|---|---:|---:|---:|"]
    lines += [f"| {r['source']} | {r['documents']} | {r['rate']} | {r['expected']} |" for r in rows]
    return "\n".join(lines)
