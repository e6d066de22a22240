"""documents.parquet -> filtered documents.parquet + rejections.parquet + rejected_samples.parquet.

Documents stream through in Arrow batches (at most two batches per worker in flight), texts longer than
`max_text_chars` are cut before they reach a worker, and results are written in input order, so memory stays
bounded on any corpus and the output is the same for any number of workers.

On Spark (engine: spark) the documents are a DataFrame and mapInArrow runs the same pipeline over each Arrow batch
of `batch_documents` rows on the executors; the model files (lid.176, the quality classifier) and the list files
(policy, blocklist, opt-outs) reach them through SparkFiles, not a download each. Each batch's outcome travels
back keyed by its first row, and the driver merges the outcomes in row order exactly as the local engine does, so
the outputs are identical. Executors hold one batch and its outcome per running task (and the models); the
outcomes wait in Spark's storage (memory, spilling to disk) until the driver has merged them, one at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import inspect
import pathlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_code.batching import ParquetSink, map_in_order
from data_code.document import DOCUMENT_SCHEMA, DOCUMENTS_FILE, REJECTION_SCHEMA, REJECTIONS_FILE
from data_code.filters.base import DocumentFilter, FilterCounts, FilterPipeline, NonEmptyFilter, PipelineResult
from data_code.filters.config import ROUTED_FILTERS, FilterConfig
from data_code.filters.rules import ByLanguage, LanguageRules, load_rule_sets
from data_code.spark import map_batches_in_order, require_session, ship_files, shipped_path

REJECTED_SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("language", pa.string()),  # the document's language at the decision
        pa.field("text", pa.string()),  # the first 500 characters the rejecting filter saw
    ]
)
OUTPUT_FILES = (DOCUMENTS_FILE, REJECTIONS_FILE, "rejected_samples.parquet")


@dataclass(frozen=True)
class ModelFiles:
    """The model files the filters load: the quality classifier's, and lid.176 (None: the installed copy)."""

    quality: str | None = None
    language: str | None = None


def build_filters(
    config: FilterConfig, quality_model_path: str | None, language_model_path: str | None = None
) -> list[DocumentFilter]:
    """The enabled filters, in order, behind the non_empty check. Heavy imports happen only for enabled filters.

    The filters that judge by language (ROUTED_FILTERS) get one copy per rule set (data_code.filters.rules), each
    built from that language's config; a document meets the copy of the language the language filter found.
    """
    models = ModelFiles(quality_model_path, language_model_path)
    rule_sets = reachable_rule_sets(config)
    filters: list[DocumentFilter] = [NonEmptyFilter()]
    for name in config.enabled:
        if name == "language":
            filters.append(_language(config, models, frozenset(rule_sets)))
        elif name in ROUTED_FILTERS:
            copies = {
                language: _FACTORIES[name](rules.config, models, rules)
                for language, rules in rule_sets.items()
                if name not in rules.skip
            }
            filters.append(ByLanguage(name, copies, by_language="language" in config.enabled))
        else:
            filters.append(_FACTORIES[name](config, models))
    return filters


def _policy(config, _):
    from data_code.filters.policy import PolicyFilter

    return PolicyFilter(config.policy_path)


def _blocklist(config, _):
    from data_code.filters.blocklist import BlocklistFilter

    return BlocklistFilter(config.blocklist_path)


def _optout(config, _):
    from data_code.filters.blocklist import OptOutFilter

    path = config.optout_path
    return OptOutFilter(path if path and pathlib.Path(path).exists() else None)  # no list: nobody opted out


def _language(config, models, ruled):
    from data_code.filters.language import LanguageFilter

    return LanguageFilter(
        config.languages,
        config.language_threshold,
        model_path=models.language,
        ruled=ruled,
        unruled=config.unruled_languages,
    )


def _gopher_quality(config, _, rules: LanguageRules):
    from data_code.filters.gopher import GopherQualityFilter

    words = {"segmenter": rules.segmenter, "unicode_words": rules.unicode_words}
    return GopherQualityFilter(
        **_prefixed(config, "gopher_", GopherQualityFilter), stop_words=rules.stop_words, **words
    )


def _gopher_repetition(config, _, rules: LanguageRules):
    from data_code.filters.gopher import GopherRepetitionFilter

    words = {"segmenter": rules.segmenter, "unicode_words": rules.unicode_words}
    return GopherRepetitionFilter(**_prefixed(config, "gopher_", GopherRepetitionFilter), **words)


def _c4(config, _, rules: LanguageRules):
    from data_code.filters.c4 import C4QualityFilter

    return C4QualityFilter(min_sentences=config.c4_min_sentences, min_words_per_line=config.c4_min_words_per_line)


def _fineweb(config, _, rules: LanguageRules):
    from data_code.filters.fineweb import FineWebQualityFilter

    parameters = _prefixed(config, "fineweb_", FineWebQualityFilter)
    return FineWebQualityFilter(**parameters, stop_chars=rules.fineweb_stop_chars, segmenter=rules.segmenter)


def _quality(config, models, rules: LanguageRules):
    from data_code.filters.quality_classifier import QualityClassifierFilter

    if models.quality is None:
        raise ValueError("the 'quality' filter is enabled but no quality_model_path was given")
    return QualityClassifierFilter(models.quality, config.quality_threshold)


def _pii(config, _):
    from data_code.filters.pii import PIIRedactionFilter

    return PIIRedactionFilter(config.pii_types)


def _prefixed(config: FilterConfig, prefix: str, filter_class: type) -> dict:
    """Config fields `<prefix><parameter>` that are parameters of `filter_class`, as keyword arguments."""
    parameters = inspect.signature(filter_class).parameters
    return {name: getattr(config, prefix + name) for name in parameters if hasattr(config, prefix + name)}


_FACTORIES: dict[str, Callable] = {
    "optout": _optout,
    "policy": _policy,
    "blocklist": _blocklist,
    "language": _language,
    "gopher_quality": _gopher_quality,
    "gopher_repetition": _gopher_repetition,
    "c4": _c4,
    "fineweb": _fineweb,
    "quality": _quality,
    "pii": _pii,
}


@dataclass
class FilterStats:
    """What one filter run read, kept and dropped, filter by filter."""

    documents_in: int = 0
    documents_kept: int = 0
    tokens_in: int = 0  # whitespace words after truncation
    tokens_kept: int = 0  # whitespace words of the kept documents as written (after C4 cleaning, PII redaction)
    truncated_documents: int = 0  # texts cut to max_text_chars before filtering
    filters: dict[str, FilterCounts] = field(default_factory=dict)  # filter name -> funnel, in pipeline order
    domains_in: Counter = field(default_factory=Counter)
    domains_kept: Counter = field(default_factory=Counter)
    rejected_by_language: Counter = field(default_factory=Counter)  # (language, reason) -> documents
    rule_sets: dict[str, dict] = field(default_factory=dict)  # language -> where its rules come from, segmenter
    engine: str = "local"  # where the filters ran: local processes or Spark executors
    elapsed_s: float = 0.0

    def add(self, result: PipelineResult) -> None:
        for name, counts in result.counts.items():
            self.filters.setdefault(name, FilterCounts()).merge(counts)
        self.rejected_by_language.update((row["language"] or "", row["reason"]) for row in result.rejections)
        self.domains_in.update(result.domains_in)
        self.domains_kept.update(result.domains_kept)

    def as_stats(self) -> dict:
        """Plain dict for a manifest's stats and MLflow metrics."""
        rejected = Counter()
        for counts in self.filters.values():
            rejected.update(counts.rejected_by_reason)
        pii = self.filters["pii"].counters if "pii" in self.filters else Counter()
        language = self.filters["language"].counters if "language" in self.filters else Counter()
        domains = sorted(self.domains_in, key=lambda domain: (-self.domains_in[domain], domain))
        return {
            "documents_in": self.documents_in,
            "documents_kept": self.documents_kept,
            "tokens_in": self.tokens_in,
            "tokens_kept": self.tokens_kept,
            "truncated_documents": self.truncated_documents,
            "rejected_by_reason": dict(sorted(rejected.items())),
            "filters": {name: counts.as_dict() for name, counts in self.filters.items()},
            "filter_order": list(self.filters),  # the pipeline's order (a manifest stores dict keys sorted)
            "domains": {
                d: {"documents_in": self.domains_in[d], "documents_kept": self.domains_kept[d]} for d in domains
            },
            "pii": {kind: pii[kind] for kind in sorted(pii) if not kind.startswith("documents_")},
            "pii_documents": {k.removeprefix("documents_with_"): n for k, n in sorted(pii.items()) if "_with_" in k},
            "languages": dict(sorted(((k.removeprefix("language:"), n) for k, n in language.items()), key=_by_count)),
            "rejected_by_language": self._rejected_by_language(),
            "rule_sets": self.rule_sets,
            "engine": self.engine,
            "elapsed_s": self.elapsed_s,
        }

    def _rejected_by_language(self) -> dict[str, dict[str, int]]:
        nested: dict[str, dict[str, int]] = {}
        for (language, reason), count in sorted(self.rejected_by_language.items()):
            nested.setdefault(language, {})[reason] = count
        return nested


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def filter_documents(
    documents_path: str, out_dir: pathlib.Path, config: FilterConfig, *, quality_model_path: str | None, spark=None
) -> FilterStats:
    """Run the enabled filters over `documents_path`; write OUTPUT_FILES under `out_dir`; return the stats.

    All three files are always written, empty ones included. Raises FileNotFoundError for a missing input and
    ValueError for a bad policy / blocklist file or a missing quality model, before writing anything. `spark`: the
    SparkSession of engine 'spark' (ValueError without one).
    """
    started = time.perf_counter()
    models = ModelFiles(quality_model_path)
    _pipeline(config, models)  # fail fast on a bad policy, blocklist or model path
    require_session(config.engine, spark)
    filesystem, path = fsspec.core.url_to_fs(documents_path)
    if not filesystem.exists(path):
        raise FileNotFoundError(f"documents file not found: {documents_path}")
    stats = FilterStats(rule_sets=rule_set_summary(config), engine=config.engine)
    samples = _RejectedSampler(config.rejected_samples_per_reason)
    run_batch = partial(_filter_batch, config=config, models=models)
    with (
        filesystem.open(path, "rb") as source,
        ParquetSink(str(out_dir / OUTPUT_FILES[0]), DOCUMENT_SCHEMA) as documents,
        ParquetSink(str(out_dir / OUTPUT_FILES[1]), REJECTION_SCHEMA) as rejections,
    ):
        if config.engine == "spark":
            results = _spark_results(spark, documents_path, config, models, stats)
        else:
            results = map_in_order(run_batch, _read_batches(pq.ParquetFile(source), config, stats), config.workers)
        for result in results:
            stats.add(result)
            documents.write_many(result.kept)
            rejections.write_many(result.rejections)
            samples.add(result)
    samples.write(str(out_dir / OUTPUT_FILES[2]))
    funnel = list(stats.filters.values())
    stats.documents_kept = sum(stats.domains_kept.values())
    stats.tokens_in = funnel[0].tokens_in if funnel else 0
    stats.tokens_kept = funnel[-1].tokens_kept if funnel else 0
    stats.elapsed_s = round(time.perf_counter() - started, 3)
    return stats


def _read_batches(parquet: pq.ParquetFile, config: FilterConfig, stats: FilterStats) -> Iterator[list[dict]]:
    """Rows of the input in batches, texts cut to max_text_chars here so workers never receive huge strings."""
    for batch in parquet.iter_batches(batch_size=config.batch_documents):
        rows, truncated = _cut_rows(batch, config)
        stats.truncated_documents += truncated
        stats.documents_in += batch.num_rows
        yield rows


def _cut_rows(batch: pa.RecordBatch, config: FilterConfig) -> tuple[list[dict], int]:
    """The batch as rows, texts cut to max_text_chars; and how many were cut."""
    text = batch.column("text")
    truncated = pc.sum(pc.greater(pc.utf8_length(text), config.max_text_chars)).as_py() or 0
    cut = pc.utf8_slice_codeunits(text, 0, config.max_text_chars)
    return batch.set_column(batch.schema.get_field_index("text"), "text", cut).to_pylist(), truncated


def reachable_rule_sets(config: FilterConfig) -> dict[str, LanguageRules]:
    """The rule sets a document can meet: those of the kept languages, or English alone without a language filter.

    The others are never used, so their filters are not built (nor their segmenters and tables loaded).
    """
    rule_sets = load_rule_sets(config)
    kept = config.languages if "language" in config.enabled else ("en",)
    return {language: rules for language, rules in rule_sets.items() if language in kept}


def rule_set_summary(config: FilterConfig) -> dict[str, dict]:
    """language -> the source, segmenter and skipped filters of its rule set (for the stats and the audit)."""
    return {
        language: {"source": rules.source, "segmenter": rules.segmenter, "skip": sorted(rules.skip)}
        for language, rules in reachable_rule_sets(config).items()
    }


_PIPELINES: dict[tuple, FilterPipeline] = {}  # one pipeline (loaded models) per worker process


def _pipeline(config: FilterConfig, models: ModelFiles) -> FilterPipeline:
    key = (config, models)
    if key not in _PIPELINES:
        _PIPELINES[key] = FilterPipeline(build_filters(config, models.quality, models.language))
    return _PIPELINES[key]


def _filter_batch(rows: list[dict], config: FilterConfig, models: ModelFiles) -> PipelineResult:
    return _pipeline(config, models).run(rows)


def _spark_results(spark, documents_path: str, config: FilterConfig, models: ModelFiles, stats: FilterStats):
    """The PipelineResult of every batch of `batch_documents` rows, computed by mapInArrow, in row order."""
    from data_code.filters.language import lid_model_path

    files = {
        "quality": models.quality,
        "language": str(lid_model_path()) if "language" in config.enabled else None,
        "policy_path": config.policy_path,
        "blocklist_path": config.blocklist_path,
        "optout_path": config.optout_path
        if config.optout_path and pathlib.Path(config.optout_path).exists()
        else None,
        "rules_dir": config.rules_dir,  # a directory: SparkFiles sends it whole
    }
    shipped = dict(zip(files, ship_files(spark, list(files.values())), strict=True))
    work = partial(_filter_arrow, config=config, shipped=shipped)
    for result, documents_in, truncated in map_batches_in_order(
        spark, documents_path, DOCUMENT_SCHEMA.names, work, config.batch_documents
    ):
        stats.documents_in += documents_in
        stats.truncated_documents += truncated
        yield result


def _filter_arrow(batch: pa.RecordBatch, config: FilterConfig, shipped: dict) -> tuple[PipelineResult, int, int]:
    """On an executor: one batch of documents through the pipeline, with the executor's copies of the files."""
    local = {name: shipped_path(value) for name, value in shipped.items()}
    names = ("policy_path", "blocklist_path", "optout_path", "rules_dir")
    lists = {name: local[name] for name in names if local[name]}
    config = dataclasses.replace(config, **lists)
    documents = pa.RecordBatch.from_arrays(
        [batch.column(field.name).cast(field.type) for field in DOCUMENT_SCHEMA],
        schema=DOCUMENT_SCHEMA.remove_metadata(),
    )  # the local engine's types (Spark hands over its own: int64 for int32, and so on)
    rows, truncated = _cut_rows(documents, config)
    return _filter_batch(rows, config, ModelFiles(local["quality"], local["language"])), batch.num_rows, truncated


class _RejectedSampler:
    """Up to `per_reason` rejected documents per reason: those with the smallest hash of (reason, doc id).

    A bottom-k sample by hash is the same whatever the batch size, worker count or arrival order.
    """

    def __init__(self, per_reason: int):
        self.per_reason = per_reason
        self._heaps: dict[str, list] = {}  # reason -> max-heap (negated keys) of the k smallest
        self._seen = 0  # rejections so far: breaks ties between equal keys (repeated doc ids) in input order

    def add(self, result: PipelineResult) -> None:
        for row, excerpt in zip(result.rejections, result.excerpts, strict=True):
            identity = f"{row['reason']}\n{row['doc_id'] or row['url']}"
            key = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big")
            heap = self._heaps.setdefault(row["reason"], [])
            sample = {name: row[name] for name in ("doc_id", "url", "stage", "reason", "language")} | {"text": excerpt}
            entry = (-key, -self._seen, sample)
            self._seen += 1
            if len(heap) < self.per_reason:
                heapq.heappush(heap, entry)
            elif self.per_reason and heap[0][:2] < entry[:2]:
                heapq.heapreplace(heap, entry)

    def write(self, path: str) -> None:
        rows = [sample for reason in sorted(self._heaps) for _, _, sample in sorted(self._heaps[reason], reverse=True)]
        with ParquetSink(path, REJECTED_SAMPLE_SCHEMA) as sink:
            sink.write_many(rows)
