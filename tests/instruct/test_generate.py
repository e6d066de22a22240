"""The offline example generator traces every example to its documents; the writer reports what it drops."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.document import DOCUMENT_SCHEMA, make_doc_id
from data_code.filters.quality_examples import stdlib_paragraphs
from data_code.instruct import (
    GeneratorConfig,
    generate_examples,
    load_chat_dataset,
    load_preference_dataset,
    write_dataset,
)

DOCUMENTS = 30
CONFIG = GeneratorConfig(max_examples=40, max_answer_chars=300, min_answer_chars=30, validation_fraction=0.25, seed=7)


@pytest.fixture(scope="module")
def documents_path(tmp_path_factory):
    """Documents of real prose (three stdlib docstring paragraphs each); every fifth has no title."""
    paragraphs = stdlib_paragraphs()
    rows = []
    for n in range(DOCUMENTS):
        url = f"https://docs.example.org/page/{n}"
        text = "\n".join(paragraphs[3 * n : 3 * n + 3])
        rows.append(
            {
                "doc_id": make_doc_id(url, str(n)),
                "url": url,
                "domain": "docs.example.org",
                "text": text,
                "title": None if n % 5 == 0 else f"Page {n} — Example documentation",
            }
        )
    path = tmp_path_factory.mktemp("docs") / "documents.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path)
    return str(path)


@pytest.fixture(scope="module")
def generated(documents_path):
    return generate_examples(documents_path, CONFIG)


def texts_by_id(path: str) -> dict[str, str]:
    return {row["doc_id"]: row["text"] for row in pq.read_table(path).to_pylist()}


def test_every_answer_comes_from_its_source_document(generated, documents_path):
    instructions, _, stats = generated
    texts = texts_by_id(documents_path)
    assert len(instructions) == stats["instructions"] == CONFIG.max_examples
    for example in instructions:
        (doc_id,) = example["source_doc_ids"]
        answer = example["messages"][-1]["content"]
        assert answer in texts[doc_id], example["example_id"]
        assert len(answer) <= CONFIG.max_answer_chars
    assert {example["task"] for example in instructions} == {"title", "continue"}
    titled = [example for example in instructions if example["task"] == "title"]
    assert all(" — " not in example["messages"][0]["content"] for example in titled)  # the site suffix is cut
    assert stats["answers_trimmed"] > 0
    assert stats["skipped"]["title:no_title"] > 0


def test_preferences_trace_to_documents_and_differ(generated, documents_path):
    instructions, preferences, stats = generated
    texts, by_id = texts_by_id(documents_path), {example["example_id"]: example for example in instructions}
    assert len(preferences) == len(instructions)
    assert set(stats["rejection_kinds"]) == {"other_document", "shuffled_sentences", "truncated"}
    for pair in preferences:
        instruction = by_id[pair["instruction_id"]]
        assert pair["split"] == instruction["split"]  # a held-out prompt is never trained on
        assert pair["prompt"] == instruction["messages"][:-1]
        assert pair["chosen"] == instruction["messages"][-1:]
        assert pair["chosen"] != pair["rejected"]
        rejected = pair["rejected"][0]["content"]
        if pair["rejection_kind"] == "other_document":
            own, other = pair["source_doc_ids"]
            assert other != own and rejected in texts[other]
        elif pair["rejection_kind"] == "truncated":
            assert pair["chosen"][0]["content"].startswith(rejected)
        else:
            assert rejected != pair["chosen"][0]["content"]
            # shuffled_sentences: the same words, reordered
            assert sorted(rejected.split()) == sorted(pair["chosen"][0]["content"].split())


def test_deterministic_for_a_seed_with_stable_ids(generated, documents_path):
    again = generate_examples(documents_path, CONFIG)
    assert again == generated
    other_seed = generate_examples(documents_path, GeneratorConfig(**{**CONFIG.__dict__, "seed": 8}))
    shared = {e["example_id"] for e in generated[0]} & {e["example_id"] for e in other_seed[0]}
    assert shared  # the same (document, task) gives the same id whatever the seed
    instructions, _, stats = generated
    validation = [example for example in instructions if example["split"] == "validation"]
    assert stats["validation_instructions"] == len(validation)
    assert 0 < len(validation) < len(instructions)
    assert len({example["example_id"] for example in instructions}) == len(instructions)


def test_write_round_trip_and_report(generated, tmp_path):
    instructions, preferences, _ = generated
    bad = {"example_id": "bad", "messages": [{"role": "user", "content": "no answer"}]}
    report = write_dataset([*instructions, bad], str(tmp_path / "sft.parquet"), max_chars=250)
    too_long = [e for e in instructions if max(len(m["content"]) for m in e["messages"]) > 250]
    assert too_long, "the fixture must hold answers longer than 250 characters"
    assert report["rows_rejected"] == len(too_long) + 1
    assert report["rejected_by_reason"] == {"too_long": len(too_long), "invalid": 1}
    reason = "invalid: 'messages' must end with an assistant turn, ends with 'user'"
    assert {"index": len(instructions), "example_id": "bad", "reason": reason} in report["rejected"]
    loaded = load_chat_dataset(str(tmp_path / "sft.parquet"))
    assert len(loaded) == report["rows_written"] == len(instructions) - len(too_long)
    assert loaded[0]["source_doc_ids"] == [e for e in instructions if e not in too_long][0]["source_doc_ids"]
    pair_report = write_dataset(preferences, str(tmp_path / "dpo.parquet"))
    assert pair_report["kind"] == "preference" and pair_report["rows_rejected"] == 0
    assert load_preference_dataset(str(tmp_path / "dpo.parquet")) == preferences


def test_write_refuses_mixed_or_empty_rows(generated, tmp_path):
    instructions, preferences, _ = generated
    with pytest.raises(ValueError, match="mix chat and preference"):
        write_dataset([instructions[0], preferences[0]], str(tmp_path / "mixed.parquet"))
    with pytest.raises(ValueError, match="no rows to write"):
        write_dataset([], str(tmp_path / "empty.parquet"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_examples", 0),
        ("validation_fraction", 1.0),
        ("tasks", ("poem",)),
        ("rejection_kinds", ()),
        ("min_answer_chars", 10_000),
    ],
)
def test_generator_config_names_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})


def test_missing_documents_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.parquet"):
        generate_examples(str(tmp_path / "nothing.parquet"), CONFIG)
