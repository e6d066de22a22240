"""training_corpus: every crawl day's filtered documents that passed the corpus contract, as a manifest of those
day artifacts and of the documents not trained on (older versions of changed pages, opt-outs): nothing copied."""

# No `from __future__ import annotations` in asset modules: Dagster reads config annotations at runtime.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common import Stage, materialize_result
from assets.filters import filtered_documents
from assets.metadata import count_table
from data_code.corpus import CorpusDay, build_corpus
from data_code.dedupe.history import SUPERSEDED_FILE, superseded_rows
from data_code.document import DOCUMENTS_FILE
from lineage.manifest import Manifest
from lineage.optout import load_optout, optout_digest
from resources.lake import ArtifactStoreResource
from resources.tracking import MlflowTrackingResource

CODE_VERSION = "training_corpus-2"


@asset(deps=[filtered_documents], code_version=CODE_VERSION, group_name="data", kinds={"parquet"}, description=__doc__)
def training_corpus(
    context: AssetExecutionContext, artifact_store: ArtifactStoreResource, mlflow_tracking: MlflowTrackingResource
) -> MaterializeResult:
    """The days whose contract passed and that brought documents, with the exclusions that apply to them today."""
    stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
    filtered = list(stage.partitions("filtered_documents").values())
    accepted, refused = contract_passed(filtered)
    empty = sorted(day.partition for day in accepted if not day.stats.get("documents_kept"))
    accepted = [day for day in accepted if day.stats.get("documents_kept")]
    if refused:
        context.log.warning(f"left out (corpus contract failed): {', '.join(refused)}")
    if empty:
        context.log.info(f"no new data on {', '.join(empty)}: those days add nothing to the corpus")
    if not accepted:
        raise ValueError(
            "training_corpus: no day of filtered_documents has passed its corpus contract with documents yet "
            f"(materialized days: {', '.join(day.partition for day in filtered) or 'none'})"
        )
    days = [corpus_day(stage, day) for day in accepted]
    optout = load_optout()

    def opted_out(url: str, domain: str) -> str | None:
        matched = optout.match(url, domain)
        return matched[1] if matched else None

    produced = stage.produce(
        {},
        accepted,
        lambda directory: build_corpus(days, directory, opted_out),
        extra_identity={"optout": optout_digest()},
    )
    stats = produced.manifest.stats
    if produced.reused:
        context.log.info("no new data: the corpus is the one already made from these days")
    return materialize_result(
        produced,
        {
            "documents": stats["documents"],
            "approx_tokens": stats["tokens"],
            "days": len(stats["nights"]),
            "excluded": count_table(stats["excluded"], "reason"),
            "nights": MetadataValue.md(nights_markdown(stats["nights"])),
            "days_without_new_data": MetadataValue.json(empty),
            "days_left_out": MetadataValue.json(refused),
            "domains": count_table(stats["domains"], "domain"),
        },
    )


def corpus_day(stage: Stage, filtered: Manifest) -> CorpusDay:
    """One day of the corpus: its filtered documents and the supersessions its dedupe recorded."""
    dedupe_ref = next((ref for ref in filtered.upstream if ref.asset == "deduplicated_documents"), None)
    dedupe = stage.store.read_manifest(dedupe_ref.asset, dedupe_ref.version) if dedupe_ref else None
    superseded = []
    if dedupe is not None and any(entry.path == SUPERSEDED_FILE for entry in dedupe.files):
        superseded = superseded_rows(stage.file(dedupe, SUPERSEDED_FILE))
    documents = stage.file(filtered, DOCUMENTS_FILE)
    return CorpusDay(filtered.partition, filtered.version, documents, superseded, filtered.stats.get("tokens_kept"))


def contract_passed(days: list) -> tuple[list, list[str]]:
    """(the days whose corpus contract passed, the partitions of those whose contract failed)."""
    accepted = [day for day in days if day.stats.get("contract", {}).get("success")]
    return accepted, sorted({day.partition for day in days} - {day.partition for day in accepted})


def nights_markdown(nights: list[dict]) -> str:
    """The small table of nights the UI shows: per day its documents, what is trained on and what is excluded."""
    lines = [
        "| day | documents | trained on | tokens | superseded older | excluded |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for night in nights[-30:]:
        excluded = ", ".join(
            f"{k.removeprefix('excluded_')} {v}" for k, v in night.items() if k.startswith("excluded_")
        )
        lines.append(
            f"| {night['day']} | {night['documents']} | {night['trained_on']} | {night['tokens']} | "
            f"{night['superseded_by_this_day']} | {excluded or '-'} |"
        )
    return "\n".join(lines)
