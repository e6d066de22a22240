"""model_code.evaluate.tasks: task files derived from hand-built documents, and lm-eval running them."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from model_code.evaluate.tasks import TaskSetConfig, cloze_example, run_lm_eval, validation_doc_ids, write_eval_tasks

SMALL = TaskSetConfig(prefix="t", min_context_words=3, max_context_words=6, repeat_words=4, max_prompt_words=5)
DOCUMENTS = [
    {"doc_id": "a", "title": "Foxes", "text": "The quick brown fox jumps over the lazy dog. It ran 42 miles."},
    {"doc_id": "b", "title": None, "text": "A list holds items in order.\nIt grows as needed!"},
    {"doc_id": "c", "title": "Short", "text": "Too short."},
    {"doc_id": "d", "title": "Held back", "text": "This document is not held out, so no task may use it."},
]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cloze_target_is_the_word_ending_the_first_long_enough_sentence():
    text = "The quick brown fox jumps over the lazy dog. It ran 3.5 miles. Then it slept soundly!"
    assert cloze_example(text, SMALL) == {"context": "brown fox jumps over the lazy", "target": "dog"}
    # 9 words at least before the target: "dog." is too early; "3.5" is no word; "miles." qualifies.
    longer = TaskSetConfig(min_context_words=9, max_context_words=20)
    assert cloze_example(text, longer) == {
        "context": "The quick brown fox jumps over the lazy dog. It ran 3.5",
        "target": "miles",
    }
    assert cloze_example("no sentence ends here at all in this text", SMALL) is None


def test_task_files_derive_from_the_held_out_documents(tmp_path):
    stats = write_eval_tasks(DOCUMENTS, tmp_path, SMALL, doc_ids={"a", "b", "c"})
    assert stats == {
        "tasks": ["t_cloze", "t_repeat", "t_title"],
        "documents": 3,
        "examples": {"t_cloze": 2, "t_repeat": 2, "t_title": 2},
        "files": ["t_cloze.jsonl", "t_cloze.yaml", "t_repeat.jsonl", "t_repeat.yaml", "t_title.jsonl", "t_title.yaml"],
    }
    assert read_jsonl(tmp_path / "t_cloze.jsonl") == [
        {"doc_id": "a", "context": "brown fox jumps over the lazy", "target": "dog"},
        {"doc_id": "b", "context": "A list holds items in", "target": "order"},
    ]
    assert read_jsonl(tmp_path / "t_repeat.jsonl") == [
        {"doc_id": "a", "phrase": "The quick brown fox"},
        {"doc_id": "b", "phrase": "A list holds items"},
    ]
    assert read_jsonl(tmp_path / "t_title.jsonl") == [  # b has no title; d is not held out
        {"doc_id": "a", "sentence": "The quick brown fox jumps", "title": "Foxes"},
        {"doc_id": "c", "sentence": "Too short.", "title": "Short"},
    ]
    cloze = yaml.safe_load((tmp_path / "t_cloze.yaml").read_text())
    assert cloze["dataset_path"] == "json" and cloze["dataset_kwargs"] == {"data_files": {"test": "t_cloze.jsonl"}}
    assert cloze["output_type"] == "loglikelihood" and cloze["doc_to_target"] == " {{target}}"
    assert [metric["metric"] for metric in cloze["metric_list"]] == ["acc", "perplexity"]
    repeat = yaml.safe_load((tmp_path / "t_repeat.yaml").read_text())
    assert repeat["output_type"] == "generate_until" and repeat["metric_list"][0]["metric"] == "exact_match"
    assert (
        repeat["doc_to_text"] == "Repeat exactly: {{phrase}}\nAnswer:" and "\n" in repeat["generation_kwargs"]["until"]
    )


def test_parquet_documents_and_the_validation_split_ids(tmp_path, corpus_path, shards_dir):
    held_out = validation_doc_ids(shards_dir)
    stats = write_eval_tasks(corpus_path, tmp_path, TaskSetConfig(max_examples=5), doc_ids=held_out)
    assert 0 < stats["documents"] <= len(held_out) and stats["tasks"] == ["lmforge_cloze", "lmforge_repeat"]
    used = {row["doc_id"] for row in read_jsonl(tmp_path / "lmforge_cloze.jsonl")}
    assert len(used) == 5 and used <= held_out  # the corpus has no titles, so no title task
    assert not used & validation_doc_ids(shards_dir, "train")


def test_documents_that_yield_no_cloze_example_are_refused(tmp_path):
    with pytest.raises(ValueError, match="none of the 1 documents selected"):
        write_eval_tasks(DOCUMENTS, tmp_path, SMALL, doc_ids={"c"})
    with pytest.raises(FileNotFoundError, match="documents file"):
        write_eval_tasks(tmp_path / "missing.parquet", tmp_path)


@pytest.mark.parametrize(("field", "value"), [("prefix", "Bad-Name"), ("max_examples", 0), ("max_context_words", 2)])
def test_invalid_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TaskSetConfig(**{**SMALL.__dict__, field: value})


@torch.no_grad()
def direct_cloze(model_dir, rows: list[dict]) -> tuple[float, float]:
    """(perplexity, acc) of the cloze rows computed here: log p(" " + target | context), greedy match."""
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    total, greedy = 0.0, 0
    for row in rows:
        context = tokenizer(row["context"]).input_ids
        whole = tokenizer(row["context"] + " " + row["target"]).input_ids
        logits = model(input_ids=torch.tensor([whole[:-1]])).logits[0].log_softmax(-1)  # (len - 1, V)
        positions = range(len(context) - 1, len(whole) - 1)
        total += sum(logits[p, whole[p + 1]].item() for p in positions)
        greedy += all(logits[p].argmax().item() == whole[p + 1] for p in positions)
    return torch.tensor(-total / len(rows)).exp().item(), greedy / len(rows)


@torch.no_grad()
def direct_exact_match(model_dir, prompts: list[str], targets: list[str]) -> float:
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    hits = 0
    for prompt, target in zip(prompts, targets, strict=True):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        output = model.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.shape[1] :]
        hits += tokenizer.decode(output, skip_special_tokens=True).split("\n")[0].strip() == target
    return hits / len(prompts)


def test_lm_eval_runs_the_tasks_on_a_tiny_model(tmp_path, untrained_model_dir):
    write_eval_tasks(DOCUMENTS, tmp_path / "tasks", SMALL, doc_ids={"a", "b", "c"})
    scores = run_lm_eval(untrained_model_dir, tmp_path / "tasks", limit=2, batch_size=2)
    assert set(scores) == {"t_cloze", "t_repeat", "t_title"}
    assert set(scores["t_cloze"]) == {"acc", "perplexity"} and set(scores["t_title"]) == {"exact_match"}
    perplexity, acc = direct_cloze(untrained_model_dir, read_jsonl(tmp_path / "tasks" / "t_cloze.jsonl"))
    assert scores["t_cloze"]["perplexity"] == pytest.approx(perplexity, rel=1e-4) and scores["t_cloze"]["acc"] == acc
    phrases = [row["phrase"] for row in read_jsonl(tmp_path / "tasks" / "t_repeat.jsonl")]
    expected = direct_exact_match(untrained_model_dir, [f"Repeat exactly: {p}\nAnswer:" for p in phrases], phrases)
    assert scores["t_repeat"]["exact_match"] == expected
