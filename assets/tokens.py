"""tokenizer, token_shards and shard_set: the byte-level BPE trained once and then frozen, each day's packed and
traceable token shards, and the set of day shards that training reads.

token_shards carries blocking checks (token ids in range, no empty shard file, one EOS per document, no document in
both splits); shard_set carries its own (both splits present, no document in both splits, no excluded document
readable): training never reads shards that fail them.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from functools import partial

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.common import Stage, dagster_config, dataclass_from_config, materialize_result, recent_metadata
from assets.corpus import training_corpus
from assets.filters import filtered_documents
from assets.metadata import key_numbers
from assets.partitions import daily_partitions
from data_code.corpus import excluded_ids, opted_out_ids, read_elsewhere
from data_code.document import DOCUMENTS_FILE, SPLITS
from data_code.shards import (
    ShardConfig,
    build_shards,
    check_eos_count,
    check_nonempty,
    check_split_disjoint,
    check_token_ids,
)
from data_code.shards.shard_set import DayShards, build_shard_set, check_exclusions
from data_code.tokenizer import TokenizerConfig, train_tokenizer
from lineage.identity import VERSION_KEY, versioned_fields
from lineage.manifest import Manifest
from resources.lake import ArtifactStoreResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

TOKENIZER_CODE_VERSION = "tokenizer-1"
SHARDS_CODE_VERSION = "token_shards-2"
SHARD_SET_CODE_VERSION = "shard_set-2"  # 2: shard_set.json lists the opted-out documents apart
TOKENIZER_KEYS = ("vocab_size", "fingerprint", "pre_tokenizer_family", "documents")
SHARD_CHECKS = {
    "token_ids_in_vocabulary": check_token_ids,
    # A night's few new documents may all fall into one split: only the shard set must have both.
    "no_empty_shard": partial(check_nonempty, required=()),
    "eos_per_document": check_eos_count,
    "splits_disjoint": check_split_disjoint,
}
SET_CHECKS = {
    "both_splits_present": partial(check_nonempty, required=SPLITS),
    "splits_disjoint_across_days": check_split_disjoint,
    "no_excluded_document_readable": check_exclusions,
}
CHECK_DESCRIPTIONS = {
    "token_ids_in_vocabulary": "Every token id is below the tokenizer's vocabulary size.",
    "no_empty_shard": "No shard file is empty (a night's few documents may all fall into one split).",
    "eos_per_document": "Exactly one end-of-text token per document: documents are packed, never merged.",
    "splits_disjoint": "No document has tokens in both the train and the validation split.",
    "both_splits_present": "The shard set has train and validation tokens: training and its held-out loss can run.",
    "splits_disjoint_across_days": "No document is in train on one day and in validation on another.",
    "no_excluded_document_readable": "No row of an excluded (superseded or opted-out) document can be read.",
}
TOKENIZER_DESCRIPTION = (
    "The byte-level BPE, trained once on the corpus and then frozen (fingerprinted): every later night reuses it, "
    "unless its config changes or a retrain is asked for."
)
SHARDS_DESCRIPTION = (
    "One crawl day's documents tokenized and packed into rows of seq_len + 1 tokens, with a token-to-document sidecar "
    "and a train/validation split by document; blocking checks guard what training may read."
)
SHARD_SET_DESCRIPTION = (
    "The set of day shards training reads: which days, which rows are excluded (superseded or opted-out documents), "
    "and the nights each day came from."
)

TokenizerDagsterConfig = dagster_config(TokenizerConfig, "TokenizerDagsterConfig")


@asset(
    deps=[training_corpus],
    code_version=TOKENIZER_CODE_VERSION,
    group_name="model",
    kinds={"huggingface"},
    description=TOKENIZER_DESCRIPTION,
)
def tokenizer(
    context: AssetExecutionContext,
    config: TokenizerDagsterConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """Byte-level BPE (HF tokenizers) with <|endoftext|>, <|im_start|>, <|im_end|>, <|pad|> and a chat template,
    trained on the first corpus and reused by every later night (same version, same fingerprint)."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, TOKENIZER_CODE_VERSION)
    tokenizer_config = dataclass_from_config(TokenizerConfig, config)
    corpus = stage.upstream("training_corpus")
    previous = stage.latest("tokenizer")
    reason = retrain_reason(previous, tokenizer_config)
    trained_on = corpus if reason else stage.store.read_manifest("training_corpus", trained_on_version(previous))
    corpus_path = stage.file(trained_on)
    produced = stage.produce(
        tokenizer_config,
        [trained_on],
        lambda directory: train_tokenizer(corpus_path, directory, tokenizer_config),
        log_files=("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"),
    )
    # The nights this tokenizer has served, tonight's included: the first trained it, every later one reused it.
    tonight = context.run.tags.get("dagster/partition") or context.run_id
    served = {tonight} | {
        entry.get("night")
        for entry in recent_metadata(context.instance, "tokenizer")
        if entry.get(VERSION_KEY) == produced.manifest.version
    }
    reused = len(served - {None}) - 1
    if reason:
        context.log.warning(
            f"new tokenizer ({reason}): models trained with the previous one cannot be continued; the next base_model "
            "trains from scratch"
        )
    metadata = key_numbers(produced.manifest.stats, TOKENIZER_KEYS)
    return materialize_result(
        produced,
        {
            **metadata,
            "characters": produced.manifest.stats["chars"],
            "trained_on": f"training_corpus/{trained_on.version} ({produced.manifest.stats['documents']} documents)",
            "serving_corpus": corpus.version,
            "night": tonight,
            "nights_reused": reused,
            "tokenizer_event": f"new tokenizer: {reason}" if reason else f"tokenizer reused ({reused} night(s) since)",
        },
    )


def retrain_reason(previous: Manifest | None, config: TokenizerConfig) -> str | None:
    """Why tonight trains a new tokenizer, or None when yesterday's is reused."""
    if previous is None:
        return "first corpus"
    if config.retrain:
        return "retrain: true"
    if previous.code_version != TOKENIZER_CODE_VERSION:
        return f"its code changed ({previous.code_version} -> {TOKENIZER_CODE_VERSION})"
    wanted = versioned_fields(config)
    changed = sorted(name for name, value in wanted.items() if previous.identity.get(name) != value)
    return f"its config changed ({', '.join(changed)})" if changed else None


def trained_on_version(tokenizer_manifest: Manifest) -> str:
    return next(ref.version for ref in tokenizer_manifest.upstream if ref.asset == "training_corpus")


TokenShardsConfig = dagster_config(ShardConfig, "TokenShardsConfig")


@asset(
    partitions_def=daily_partitions,
    deps=[filtered_documents, tokenizer],
    code_version=SHARDS_CODE_VERSION,
    group_name="model",
    kinds={"numpy"},
    description=SHARDS_DESCRIPTION,
    check_specs=[
        AssetCheckSpec(name, asset="token_shards", blocking=True, description=CHECK_DESCRIPTIONS[name])
        for name in SHARD_CHECKS
    ],
)
def token_shards(
    context: AssetExecutionContext,
    config: TokenShardsConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    spark: SparkResource,
) -> MaterializeResult:
    """The day's new and superseding documents only: tokenized on all cores, EOS per document, packed to seq_len,
    split by document, mixed, shuffled."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, SHARDS_CODE_VERSION)
    shard_config = dataclass_from_config(ShardConfig, config)
    day, trained = stage.upstream("filtered_documents", context.partition_key), stage.upstream("tokenizer")
    has_documents = bool(day.stats.get("documents_kept"))

    def build(directory):
        documents = stage.file(day, DOCUMENTS_FILE)
        session = spark.session_for(shard_config.engine)
        stats = build_shards(documents, stage.file(trained), directory, shard_config, allow_empty=True, spark=session)
        return {**stats, "checks": run_checks(SHARD_CHECKS, directory)}

    produced = stage.produce(shard_config, [day, trained], build, log_files=("index.json", "shards.json"))
    if not has_documents:
        context.log.info(f"no new data on {context.partition_key}: no token shards added")
    metadata = shards_metadata(produced.manifest.stats)
    metadata["tokens_added"] = sum(produced.manifest.stats.get(f"tokens_{split}", 0) for split in SPLITS)
    return materialize_result(produced, metadata, check_results=check_results(produced.manifest.stats["checks"]))


@asset(
    deps=[token_shards, training_corpus, tokenizer],
    code_version=SHARD_SET_CODE_VERSION,
    group_name="model",
    kinds={"numpy"},
    description=SHARD_SET_DESCRIPTION,
    check_specs=[
        AssetCheckSpec(name, asset="shard_set", blocking=True, description=CHECK_DESCRIPTIONS[name])
        for name in SET_CHECKS
    ],
)
def shard_set(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """The token_shards of every day of the corpus, read in place, minus the rows of the documents it excludes."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, SHARD_SET_CODE_VERSION)
    corpus, trained = stage.upstream("training_corpus"), stage.upstream("tokenizer")
    shards = stage.partitions("token_shards")
    days = [day_shards(stage, shards, night) for night in corpus.stats["nights"]]
    excluded = excluded_ids(stage.file(corpus))
    fingerprint = trained.stats["fingerprint"]
    final = stage.store.local_path("shard_set", stage.version({}, [corpus, trained, *days]))

    def build(directory):
        entries = [DayShards(m.partition, m.version, stage.store.local_path(m.asset, m.version)) for m in days]
        source = stage.file(corpus)
        stats = build_shard_set(
            entries, excluded, directory, final, fingerprint, read_elsewhere(source), opted_out_ids(source)
        )
        return {**stats, "checks": run_checks(SET_CHECKS, directory)}

    produced = stage.produce({}, [corpus, trained, *days], build, log_files=("shard_set.json",))
    stats = produced.manifest.stats
    if produced.reused:
        context.log.info("no new data: the shard set is the one already made from these days")
    metadata = {
        "days": stats["days"],
        "tokens": stats["tokens"],
        "fingerprint": stats["fingerprint"],
        "excluded_documents": stats["excluded_documents"],
        "opted_out_documents": stats.get("opted_out_documents", 0),
        **{f"{key}_{split}": stats[f"{key}_{split}"] for key in ("sequences", "excluded_rows") for split in SPLITS},
        "nights": MetadataValue.md(
            "\n".join(
                ["| day | tokens | weight |", "|---|---:|---:|"]
                + [f"| {n['day']} | {n['tokens']} | {n['weight']} |" for n in stats["nights"][-30:]]
            )
        ),
    }
    return materialize_result(produced, metadata, check_results=check_results(stats["checks"]))


def day_shards(stage: Stage, shards: dict[str, Manifest], night: dict) -> Manifest:
    """The token_shards of one corpus day, made from the very filtered_documents version the corpus holds."""
    manifest = shards.get(night["day"])
    made_from = (
        next((ref.version for ref in manifest.upstream if ref.asset == "filtered_documents"), None)
        if manifest
        else None
    )
    if made_from != night["version"]:
        state = "have not been made" if manifest is None else f"were made from filtered_documents/{made_from}"
        raise ValueError(
            f"token_shards of {night['day']} {state}, but the corpus holds filtered_documents/{night['version']}: "
            f"materialize token_shards for {night['day']} first (lmforge run nightly --partition {night['day']})"
        )
    return manifest


def run_checks(checks: dict, directory) -> dict:
    """{check name: {passed, message}} of blocking checks, recorded in the artifact's stats."""
    results = {name: check(directory) for name, check in checks.items()}
    return {name: {"passed": passed, "message": message} for name, (passed, message) in results.items()}


def check_results(checks: dict) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
            check_name=name,
            passed=outcome["passed"],
            severity=AssetCheckSeverity.ERROR,
            description=outcome["message"],
        )
        for name, outcome in checks.items()
    ]


def shards_metadata(stats: dict) -> dict:
    """Token, document and sequence counts per split, shard files, speed, and the source mixture table."""
    metadata = {key: stats[key] for key in ("fingerprint", "seq_len", "dtype")}
    metadata |= {
        f"{count}_{split}": stats.get(f"{count}_{split}", 0)
        for count in ("tokens", "documents", "sequences")
        for split in SPLITS
    }
    metadata |= {"shard_files": stats["shards"], "tokens_per_s": round(stats.get("tokens_per_s", 0))}
    metadata["engine"] = stats.get("engine", "local")  # artifacts made before it was recorded ran locally
    if stats.get("mixture"):
        metadata["mixture"] = MetadataValue.md(_mixture_markdown(stats["mixture"]))
    return metadata


def _mixture_markdown(rows: list[dict]) -> str:
    lines = ["| source | documents | sampling rate | expected after |", "|---|---:|---:|---:|"]
    lines += [f"| {r['source']} | {r['documents']} | {r['rate']} | {r['expected']} |" for r in rows]
    return "\n".join(lines)
