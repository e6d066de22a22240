"""Data contracts on the filtered corpus, written as Great Expectations suites.

The suite says what every corpus handed to tokenization must satisfy: ids unique and non-null, text lengths in
bounds, the expected language share, no raw PII left, no exact duplicates, and at least one document. Columns
the expectations need but the corpus does not store (PII hits, exact-duplicate keys, text lengths) are derived
here with the same functions the filter and dedupe stages use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq

from data_code.dedupe.core import exact_key, normalize_text
from data_code.filters.pii import find_pii

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusContract:
    """Bounds the filtered corpus must respect."""

    min_documents: int = 1  # an empty corpus fails the contract
    min_text_chars: int = 1  # shortest text allowed, characters
    max_text_chars: int = 1_000_000  # longest text allowed, characters
    languages: tuple[str, ...] = ("en",)  # the languages the corpus is meant to hold
    min_language_share: float = 0.95  # share of documents whose language is one of `languages`


@dataclass
class ContractResult:
    success: bool
    failures: list[str]  # one line per failed expectation, human-readable
    statistics: dict
    raw: dict  # Great Expectations' validation result as JSON

    def to_json(self) -> str:
        payload = {"success": self.success, "failures": self.failures, "statistics": self.statistics}
        return json.dumps({**payload, "great_expectations": self.raw}, indent=2, default=str)


def contract_frame(documents_path: str, batch_size: int = 4096) -> pd.DataFrame:
    """The columns the suite checks, derived batch by batch (texts are not kept in memory, only their facts)."""
    parts = list(_derived_batches(documents_path, batch_size))
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _DERIVED_DTYPES.items()})
    return pd.concat(parts, ignore_index=True)


_DERIVED_DTYPES = {
    "doc_id": "object",
    "language": "object",
    "text_chars": "int64",
    "pii_hits": "int64",
    "exact_key": "object",
}


def _derived_batches(documents_path: str, batch_size: int) -> Iterator[pd.DataFrame]:
    parquet = pq.ParquetFile(documents_path)
    for batch in parquet.iter_batches(batch_size=batch_size, columns=["doc_id", "text", "language"]):
        texts = batch.column("text").to_pylist()
        yield pd.DataFrame(
            {
                "doc_id": batch.column("doc_id").to_pylist(),
                "language": batch.column("language").to_pylist(),
                "text_chars": [len(text or "") for text in texts],
                "pii_hits": [sum(find_pii(text or "").values()) for text in texts],
                "exact_key": [exact_key(normalize_text(text or "")) for text in texts],
            }
        )


def validate_corpus(documents_path: str, contract: CorpusContract) -> ContractResult:
    """Run the corpus suite on a Document Parquet file; never raises on bad data, only on bad code.

    An empty file passes a contract that allows it (min_documents=0: a night that brought nothing new).
    """
    import great_expectations as gx  # heavy (several seconds): only when validating

    frame = contract_frame(documents_path)
    if len(frame) == 0 and contract.min_documents == 0:
        return ContractResult(True, [], {"documents": 0, "note": "no new documents: nothing to validate"}, {})
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = context.data_sources.add_pandas("corpus").add_dataframe_asset("documents")
    definition = batch.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name="filtered_corpus", expectations=_expectations(contract)))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="corpus", data=definition, suite=suite)
    )
    result = validation.run(batch_parameters={"dataframe": frame})
    raw = result.to_json_dict()
    failures = [_describe(item) for item in raw["results"] if not item["success"]]
    statistics = {"documents": len(frame), **{k: v for k, v in raw.get("statistics", {}).items()}}
    return ContractResult(success=bool(raw["success"]), failures=failures, statistics=statistics, raw=raw)


def _expectations(contract: CorpusContract) -> list:
    import great_expectations as gx

    expect = gx.expectations
    return [
        expect.ExpectTableRowCountToBeBetween(min_value=contract.min_documents),
        expect.ExpectColumnValuesToNotBeNull(column="doc_id"),
        expect.ExpectColumnValuesToBeUnique(column="doc_id"),
        expect.ExpectColumnValuesToBeBetween(
            column="text_chars", min_value=contract.min_text_chars, max_value=contract.max_text_chars
        ),
        expect.ExpectColumnValuesToBeInSet(
            column="language", value_set=list(contract.languages), mostly=contract.min_language_share
        ),
        expect.ExpectColumnValuesToBeBetween(column="pii_hits", max_value=0),
        expect.ExpectColumnValuesToBeUnique(column="exact_key"),
    ]


def _describe(item: dict) -> str:
    """'expect_column_values_to_be_unique(doc_id): 2 of 10 unexpected' and the like."""
    config = item["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    result = item.get("result", {})
    what = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    if "unexpected_count" in result:
        found = f"{result['unexpected_count']} of {result.get('element_count')} rows unexpected"
        sample = result.get("partial_unexpected_list", [])[:5]
        return f"{config['type']}({what}): {found}, e.g. {sample}"
    if "observed_value" in result:
        return f"{config['type']}({what}): observed {result['observed_value']}"
    return f"{config['type']}({what}) failed"
