"""The filter contract and the pipeline that runs documents through filters, counting and routing rejects.

A filter (datatrove style) only answers `filter(doc) -> True | (False, reason[, score[, detail]])`; filters that
rewrite text (C4 line cleaning, PII redaction) also override `transform(doc) -> doc`, applied to kept documents.
FilterPipeline does the rest: copies each document, runs the filters in order, counts documents and approximate
tokens (whitespace words) in and kept per filter and per domain, and turns every drop into a REJECTION_SCHEMA row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from data_code.document import rejection
from data_code.filters.kernels import word_count

Decision = bool | tuple  # True | (False, reason) | (False, reason, score) | (False, reason, score, detail)
EXCERPT_CHARS = 500  # characters of a rejected document's text kept for the rejected-samples table


class DocumentFilter:
    """Base class: override `filter`, and `transform` if the filter rewrites kept documents."""

    name: str = "filter"  # the stage name written on rejection rows and in the stats

    def __init__(self):
        self.counters: Counter[str] = Counter()  # filter-specific counts (lines dropped, PII found ...)

    def filter(self, doc: dict) -> Decision:
        """True to keep `doc`, else (False, reason slug[, score[, detail]])."""
        raise NotImplementedError

    def transform(self, doc: dict) -> dict:
        """The kept document as it leaves this filter (unchanged by default)."""
        return doc

    def count(self, key: str, amount: int = 1) -> None:
        """Add to a filter-specific counter, reported in the stats under this filter."""
        self.counters[key] += amount


@dataclass
class FilterCounts:
    """The funnel of one filter: what came in, what it kept and why it dropped the rest."""

    documents_in: int = 0
    documents_kept: int = 0
    tokens_in: int = 0  # whitespace words of the documents that came in
    tokens_kept: int = 0  # whitespace words of kept documents after this filter's transform
    rejected_by_reason: Counter = field(default_factory=Counter)
    kept_by_domain: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)  # the filter's own counts (DocumentFilter.count)
    # By the document's language as the filter left it (declared until the language filter sets it).
    in_by_language: Counter = field(default_factory=Counter)
    kept_by_language: Counter = field(default_factory=Counter)

    def merge(self, other: FilterCounts) -> None:
        self.documents_in += other.documents_in
        self.documents_kept += other.documents_kept
        self.tokens_in += other.tokens_in
        self.tokens_kept += other.tokens_kept
        self.rejected_by_reason.update(other.rejected_by_reason)
        self.kept_by_domain.update(other.kept_by_domain)
        self.counters.update(other.counters)
        self.in_by_language.update(other.in_by_language)
        self.kept_by_language.update(other.kept_by_language)

    def as_dict(self) -> dict:
        return {
            "documents_in": self.documents_in,
            "documents_kept": self.documents_kept,
            "tokens_in": self.tokens_in,
            "tokens_kept": self.tokens_kept,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "kept_by_domain": dict(sorted(self.kept_by_domain.items(), key=lambda item: (-item[1], item[0]))),
            "counters": dict(sorted(self.counters.items())),
            "languages": {
                language: {"documents_in": count, "documents_kept": self.kept_by_language[language]}
                for language, count in sorted(self.in_by_language.items(), key=lambda item: (-item[1], item[0]))
            },
        }


@dataclass
class PipelineResult:
    """What one call of FilterPipeline.run produced: kept documents, rejection rows and the counts."""

    kept: list[dict]
    rejections: list[dict]  # REJECTION_SCHEMA rows, in input order
    excerpts: list[str]  # text of each rejected document (<= EXCERPT_CHARS) as the rejecting filter saw it
    counts: dict[str, FilterCounts]  # filter name -> funnel, in filter order
    domains_in: Counter
    domains_kept: Counter


class FilterPipeline:
    """Runs documents through `filters` in order; a document leaves at the first filter that drops it."""

    def __init__(self, filters: Sequence[DocumentFilter]):
        names = [each.name for each in filters]
        assert len(set(names)) == len(names), f"filter names must be unique, got {names}"
        self.filters = list(filters)

    def run(self, documents: Iterable[dict]) -> PipelineResult:
        """Filter `documents` (not modified: each is copied); counts cover only this call."""
        counts = {each.name: FilterCounts() for each in self.filters}
        result = PipelineResult([], [], [], counts, Counter(), Counter())
        for document in documents:
            doc = dict(document)
            result.domains_in[doc.get("domain") or ""] += 1
            if self._run_one(doc, result):
                result.kept.append(doc)
                result.domains_kept[doc.get("domain") or ""] += 1
        for each in self.filters:  # drain the filters' own counters into this call's counts
            counts[each.name].counters.update(each.counters)
            each.counters.clear()
        return result

    def _run_one(self, doc: dict, result: PipelineResult) -> bool:
        """Run `doc` through every filter, updating it in place; False (and a rejection row) if one drops it."""
        tokens = word_count(doc["text"])
        for each in self.filters:
            counts = result.counts[each.name]
            counts.documents_in += 1
            counts.tokens_in += tokens
            keep, reason, score, detail = _normalize(each.filter(doc), each.name)
            language = doc.get("language") or ""  # as the filter left it: the language filter sets it
            counts.in_by_language[language] += 1
            if not keep:
                counts.rejected_by_reason[reason] += 1
                row = rejection(
                    each.name,
                    reason,
                    doc_id=doc.get("doc_id"),
                    url=doc.get("url"),
                    score=score,
                    detail=detail,
                    language=doc.get("language"),
                )
                result.rejections.append(row)
                result.excerpts.append(doc["text"][:EXCERPT_CHARS])
                return False
            transformed = each.transform(doc)
            if transformed is not doc:
                doc.clear()
                doc.update(transformed)
                tokens = word_count(doc["text"])
            counts.documents_kept += 1
            counts.tokens_kept += tokens
            counts.kept_by_language[language] += 1
            counts.kept_by_domain[doc.get("domain") or ""] += 1
        return True


def _normalize(decision: Decision, name: str) -> tuple[bool, str | None, float | None, str | None]:
    if decision is True:
        return True, None, None, None
    if decision is False:  # a bare False: the filter's name is the reason
        return False, name, None, None
    assert isinstance(decision, tuple) and 2 <= len(decision) <= 4 and decision[0] is False, (
        f"filter {name!r} must return True or (False, reason[, score[, detail]]), got {decision!r}"
    )
    reason, score, detail = (*decision[1:], None, None)[:3]
    return False, reason, (None if score is None else float(score)), detail


class NonEmptyFilter(DocumentFilter):
    """Drops documents without a single word before any other filter has to handle them."""

    name = "non_empty"

    def filter(self, doc: dict) -> Decision:
        text = doc.get("text") or ""
        return True if text and not text.isspace() else (False, "no_words")  # as text.split(), without the list
