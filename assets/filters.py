"""quality_classifier and filtered_documents: the DCLM-style quality model, and the corpus after every filter.

filtered_documents carries a blocking data contract (Great Expectations): when it fails, nothing downstream runs.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

import sys
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)
from pydantic import Field

from assets.common import Produced, Stage, dagster_config, dataclass_from_config, materialize_result
from assets.dedupe import deduplicated_documents
from assets.images import png_markdown
from assets.metadata import count_table, key_numbers
from assets.partitions import daily_partitions
from data_code.contracts import CorpusContract, validate_corpus
from data_code.document import DOCUMENTS_FILE
from data_code.files import file_sha256
from data_code.filters.config import FilterConfig
from data_code.filters.quality_classifier import QualityClassifierConfig, train_quality_classifier
from data_code.filters.quality_examples import default_training_examples, load_examples
from data_code.filters.rules import rules_digest
from data_code.filters.stage import filter_documents
from data_code.funnel import FunnelStep, funnel_markdown, language_funnel_markdown, write_funnel
from lineage.optout import optout_digest, optout_path
from resources.lake import ArtifactStoreResource
from resources.spark import SparkResource
from resources.tracking import MlflowTrackingResource

CLASSIFIER_CODE_VERSION = "quality_classifier-1"
FILTERED_CODE_VERSION = "filtered_documents-1"
CONTRACT_CHECK = "corpus_contract"
CLASSIFIER_KEYS = ("accuracy", "precision", "recall", "f1", "train_examples", "validation_examples")
FUNNEL_FILES = ("funnel.png", "funnel.md", "funnel.json", "validation.json")

QualityClassifierDagsterConfig = dagster_config(
    QualityClassifierConfig,
    "QualityClassifierDagsterConfig",
    positives_path=(str | None, Field(default=None, description="High-quality examples (.txt/.jsonl/.parquet)")),
    negatives_path=(str | None, Field(default=None, description="Low-quality examples (.txt/.jsonl/.parquet)")),
)


CLASSIFIER_DESCRIPTION = (
    "The DCLM-style quality model: a fastText classifier trained on reference prose against low-quality pages, "
    "which filtered_documents scores every document with."
)
FILTERED_DESCRIPTION = (
    "One crawl day's deduplicated documents after every filter (language, Gopher, C4, FineWeb, quality, PII "
    "redaction), with the funnel and rejected samples; a blocking data contract stops what is downstream."
)


@asset(code_version=CLASSIFIER_CODE_VERSION, group_name="data", kinds={"fasttext"}, description=CLASSIFIER_DESCRIPTION)
def quality_classifier(
    context: AssetExecutionContext,
    config: QualityClassifierDagsterConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
) -> MaterializeResult:
    """fastText hq/lq classifier trained on configured examples (demo default: stdlib prose vs generated spam)."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CLASSIFIER_CODE_VERSION)
    training = dataclass_from_config(QualityClassifierConfig, config)
    examples = {side: _examples_identity(getattr(config, f"{side}_path")) for side in ("positives", "negatives")}

    def build(directory):
        positives, negatives = training_examples(config.positives_path, config.negatives_path)
        return train_quality_classifier(positives, negatives, directory, training)

    produced = stage.produce(training, [], build, extra_identity=examples, log_files=("labels.json",))
    return materialize_result(produced, key_numbers(produced.manifest.stats, CLASSIFIER_KEYS))


def training_examples(positives_path: str | None, negatives_path: str | None) -> tuple[list[str], list[str]]:
    """(positives, negatives) from the configured files; the demo defaults when no positives file is given."""
    positives, negatives = default_training_examples() if not positives_path else ([], [])
    if positives_path:
        positives = load_examples(positives_path)
    if negatives_path:
        negatives = load_examples(negatives_path)
    return positives, negatives


def _examples_identity(path: str | None) -> str:
    """What the examples are, for the artifact version: the file's digest, or the demo defaults + Python."""
    if path is None:
        return f"stdlib-defaults-py{sys.version_info.major}.{sys.version_info.minor}"
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"quality classifier examples not found: {path}")
    return "sha256:" + file_sha256(file)


FilteredConfig = dagster_config(
    FilterConfig,
    "FilteredConfig",
    exclude=("gopher_top_ngram_char_fracs", "gopher_dup_ngram_char_fracs"),  # (n, fraction) pairs: code defaults
)


@asset(
    partitions_def=daily_partitions,
    deps=[deduplicated_documents, quality_classifier],
    code_version=FILTERED_CODE_VERSION,
    group_name="data",
    kinds={"parquet"},
    description=FILTERED_DESCRIPTION,
    check_specs=[
        AssetCheckSpec(
            CONTRACT_CHECK,
            asset="filtered_documents",
            blocking=True,
            description="Great Expectations suite: ids unique/non-null, text length, language share, no PII, "
            "no exact duplicates, not empty. Blocks downstream assets when it fails.",
        )
    ],
)
def filtered_documents(
    context: AssetExecutionContext,
    config: FilteredConfig,
    artifact_store: ArtifactStoreResource,
    mlflow_tracking: MlflowTrackingResource,
    spark: SparkResource,
) -> MaterializeResult:
    """Opt-out/licence policy, blocklist, language ID, Gopher, C4, FineWeb, quality classifier, PII redaction."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, FILTERED_CODE_VERSION)
    filter_config = dataclass_from_config(FilterConfig, config, optout_path=config.optout_path or str(optout_path()))
    dedupe = stage.upstream("deduplicated_documents", context.partition_key)
    classifier = stage.upstream("quality_classifier")
    model_path = stage.file(classifier, classifier.stats.get("model_file", "model.bin"))
    # A day whose dedupe kept nothing (nothing fetched, or every page unchanged) brings no new data: its empty
    # artifact passes, and the corpus simply adds nothing. A day whose filters drop everything still fails.
    contract = CorpusContract(
        languages=filter_config.languages,
        max_text_chars=filter_config.max_text_chars,
        min_documents=1 if dedupe.stats.get("documents_kept") else 0,
    )

    def build(directory):
        documents = stage.file(dedupe, DOCUMENTS_FILE)
        session = spark.session_for(filter_config.engine)
        stats = filter_documents(
            documents, directory, filter_config, quality_model_path=model_path, spark=session
        ).as_stats()
        write_funnel(funnel_steps(dedupe.stats, stats), directory)
        result = validate_corpus(str(directory / DOCUMENTS_FILE), contract)
        (directory / "validation.json").write_text(result.to_json())
        return {**stats, "contract": {"success": result.success, "failures": result.failures}}

    identity = {
        "contract": repr(contract),
        "optout": optout_digest(filter_config.optout_path),
        "rules": rules_digest(filter_config),  # the language rule sets' files, shipped and rules_dir's
    }
    produced = stage.produce(
        filter_config, [dedupe, classifier], build, extra_identity=identity, log_files=FUNNEL_FILES
    )
    check = contract_check(produced.manifest.stats["contract"])
    return materialize_result(produced, filtered_metadata(produced, dedupe), check_results=[check])


def filtered_metadata(produced: Produced, dedupe) -> dict:
    """Counts, the funnel (table and plot), rejection reasons, PII redactions and languages."""
    stats = produced.manifest.stats
    metadata = {
        "documents_in": stats["documents_in"],
        "documents_kept": stats["documents_kept"],
        "tokens_kept": stats["tokens_kept"],
        "engine": stats.get("engine", "local"),  # artifacts made before it was recorded ran locally
        "funnel": MetadataValue.md(funnel_markdown(funnel_steps(dedupe.stats, stats))),
        # Its own entry: the UI folds a long Markdown value behind a button, and the funnel must stay in view.
        "funnel_by_language": MetadataValue.md(language_funnel_markdown(stats) or "no language filter ran"),
        "rejected_by_reason": count_table(stats["rejected_by_reason"], "reason"),
        "rejected_by_language": rejected_by_language_table(stats.get("rejected_by_language", {})),
        "pii_redacted": count_table(stats.get("pii", {}), "type"),
        "languages": count_table(stats.get("languages", {}), "language"),
    }
    if produced.path is not None and (produced.path / "funnel.png").exists():
        metadata["funnel_plot"] = png_markdown(produced.path / "funnel.png", "corpus funnel")
    if produced.path is not None and (produced.path / "rejected_samples.parquet").exists():
        metadata["rejected_samples"] = rejected_samples_table(produced.path / "rejected_samples.parquet")
    return metadata


def rejected_by_language_table(rejected: dict[str, dict[str, int]]) -> MetadataValue:
    """(language, reason, documents): every drop with the language it was judged in."""
    schema = TableSchema(
        columns=[TableColumn("language", "string"), TableColumn("reason", "string"), TableColumn("count", "int")]
    )
    rows = sorted(
        ((language, reason, count) for language, reasons in rejected.items() for reason, count in reasons.items()),
        key=lambda row: (-row[2], row[0], row[1]),
    )
    records = [
        TableRecord({"language": lang or "?", "reason": reason, "count": count}) for lang, reason, count in rows
    ]
    return MetadataValue.table(records, schema=schema)


def rejected_samples_table(path, per_reason: int = 3, chars: int = 160) -> MetadataValue:
    """A few rejected documents per reason: what each filter threw away, in the words of the page."""
    import pyarrow.parquet as pq

    rows, shown = [], {}
    for row in pq.read_table(path).to_pylist():
        key = (row["stage"], row["reason"])
        if shown.get(key, 0) < per_reason:
            shown[key] = shown.get(key, 0) + 1
            text = " ".join((row.get("text") or "").split())[:chars]
            language = row.get("language") or "-"
            rows.append(f"| {row['stage']} | {row['reason']} | {language} | {row.get('url') or '-'} | {_cell(text)} |")
    if not rows:
        return MetadataValue.md("no document was rejected")
    header = ["| filter | reason | language | url | text (start) |", "|---|---|---|---|---|"]
    return MetadataValue.md("\n".join(header + rows))


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "(empty)"


def contract_check(contract: dict) -> AssetCheckResult:
    failures = contract.get("failures", [])
    return AssetCheckResult(
        check_name=CONTRACT_CHECK,
        passed=bool(contract.get("success")),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "failures": MetadataValue.md("\n".join(f"- {line}" for line in failures) or "none"),
            "failed_expectations": len(failures),
        },
        description="corpus contract failed: " + "; ".join(failures) if failures else "corpus contract passed",
    )


def funnel_steps(dedupe_stats: dict, filter_stats: dict) -> list[FunnelStep]:
    """documents → deduplicated → each filter, from the two artifacts' stats."""
    steps = [
        FunnelStep("documents", dedupe_stats["documents_in"], dedupe_stats["tokens_in"], dedupe_stats["domains_in"]),
        FunnelStep(
            "deduplicated", dedupe_stats["documents_kept"], dedupe_stats["tokens_kept"], dedupe_stats["domains_kept"]
        ),
    ]
    filters = filter_stats.get("filters", {})
    # In the pipeline's order; stats recorded before filter_order existed: by documents kept, which only falls.
    order = filter_stats.get("filter_order") or sorted(filters, key=lambda name: -filters[name]["documents_kept"])
    for name in order:
        counts = filters[name]
        steps.append(
            FunnelStep(name, counts["documents_kept"], counts["tokens_kept"], counts.get("kept_by_domain", {}))
        )
    return steps
