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

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result
from assets.corpus import training_corpus
from assets.metadata import key_numbers
from data_code.document import DOCUMENTS_FILE, SPLITS
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
TOKENIZER_KEYS = ("vocab_size", "fingerprint", "pre_tokenizer_family", "documents")
SHARD_CHECKS = {
    "token_ids_in_vocabulary": check_token_ids,
    "no_empty_shard": check_nonempty,
    "eos_per_document": check_eos_count,
    "splits_disjoint": check_split_disjoint,
}

TokenizerDagsterConfig = dagster_config(TokenizerConfig, "TokenizerDagsterConfig")


@asset(
    deps=[training_corpus],
    code_version=TOKENIZER_CODE_VERSION,
    group_name="model",
    kinds={"huggingface"},
    description=__doc__,
)
def tokenizer(
    context: AssetExecutionContext,
    config: TokenizerDagsterConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Byte-level BPE (HF tokenizers) with <|endoftext|>, <|im_start|>, <|im_end|>, <|pad|> and a chat template."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, TOKENIZER_CODE_VERSION)
    tokenizer_config = dataclass_from_config(TokenizerConfig, config)
    corpus = stage.upstream("training_corpus")
    corpus_path = stage.file(corpus, DOCUMENTS_FILE)
    produced = stage.produce(
        tokenizer_config,
        [corpus],
        lambda directory: train_tokenizer(corpus_path, directory, tokenizer_config),
        log_files=("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"),
    )
    metadata = key_numbers(produced.manifest.stats, TOKENIZER_KEYS)
    return materialize_result(produced, {**metadata, "characters": produced.manifest.stats["chars"]})


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
    stage = Stage.of(context, artifact_store, mlflow_tracking, SHARDS_CODE_VERSION)
    shard_config = dataclass_from_config(ShardConfig, config)
    corpus, trained = stage.upstream("training_corpus"), stage.upstream("tokenizer")

    def build(directory):
        stats = build_shards(stage.file(corpus, DOCUMENTS_FILE), stage.file(trained), directory, shard_config)
        return {**stats, "checks": run_shard_checks(directory)}

    produced = stage.produce(shard_config, [corpus, trained], build, log_files=("index.json", "shards.json"))
    result = materialize_result(produced, shards_metadata(produced.manifest.stats))
    checks = [
        AssetCheckResult(
            check_name=name,
            passed=outcome["passed"],
            severity=AssetCheckSeverity.ERROR,
            description=outcome["message"],
        )
        for name, outcome in produced.manifest.stats["checks"].items()
    ]
    return MaterializeResult(data_version=result.data_version, metadata=result.metadata, check_results=checks)


def run_shard_checks(directory) -> dict:
    """{check name: {passed, message}} of every blocking shard check, recorded in the artifact's stats."""
    results = {name: check(directory) for name, check in SHARD_CHECKS.items()}
    return {name: {"passed": passed, "message": message} for name, (passed, message) in results.items()}


def shards_metadata(stats: dict) -> dict:
    """Token, document and sequence counts per split, shard files, speed, and the source mixture table."""
    metadata = {key: stats[key] for key in ("fingerprint", "seq_len", "dtype")}
    metadata |= {
        f"{count}_{split}": stats.get(f"{count}_{split}", 0)
        for count in ("tokens", "documents", "sequences")
        for split in SPLITS
    }
    metadata |= {"shard_files": stats["shards"], "tokens_per_s": round(stats.get("tokens_per_s", 0))}
    if stats.get("mixture"):
        metadata["mixture"] = MetadataValue.md(_mixture_markdown(stats["mixture"]))
    return metadata


def _mixture_markdown(rows: list[dict]) -> str:
    lines = ["| source | documents | sampling rate | expected after |", "|---|---:|---:|---:|"]
    lines += [f"| {r['source']} | {r['documents']} | {r['rate']} | {r['expected']} |" for r in rows]
    return "\n".join(lines)
