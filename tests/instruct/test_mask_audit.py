"""The loss-mask audit on hand-built conversations: exact supervised counts, truncation, the end-of-turn token."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from data_code.tokenizer.chat_template import CHAT_TEMPLATE
from model_code.instruct import audit_loss_mask, chat_template_hash

TWO_TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello there"},
    {"role": "user", "content": "And the weather?"},
    {"role": "assistant", "content": "Sunny."},
]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


def count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def rendered_length(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def test_exact_supervised_counts(tokenizer):
    audit = audit_loss_mask(tokenizer, [{"example_id": "two", "messages": TWO_TURNS}], max_length=1000)
    # Each assistant turn supervises its content and the closing <|im_end|>, nothing else.
    expected = count(tokenizer, "Hello there<|im_end|>") + count(tokenizer, "Sunny.<|im_end|>")
    total = rendered_length(tokenizer, TWO_TURNS)
    assert audit["supervised_tokens"] == expected
    assert audit["tokens"] == total
    assert audit["supervised_token_share"] == pytest.approx(expected / total)
    assert audit["truncated"] == audit["fully_masked_after_truncation"] == 0
    assert audit["end_of_turn_supervised"] is True


def test_truncation_that_loses_the_whole_assistant_turn_is_counted(tokenizer):
    long_question = [
        {"role": "user", "content": "Tell me " + "more and more " * 40},
        {"role": "assistant", "content": "No."},
    ]
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, friend."}]
    prompt_tokens = rendered_length(tokenizer, short[:1]) + count(tokenizer, "<|im_start|>assistant\n")
    # The short answer keeps 2 of its tokens; the long question keeps none of its answer.
    max_length = prompt_tokens + 2
    examples = [{"example_id": "long", "messages": long_question}, {"example_id": "short", "messages": short}]
    audit = audit_loss_mask(tokenizer, examples, max_length=max_length)
    assert audit["truncated"] == 2
    assert audit["fully_masked_after_truncation"] == 1
    assert audit["fully_masked_example_ids"] == ["long"]
    assert audit["supervised_tokens"] == 2
    assert audit["tokens"] == 2 * max_length


def test_a_template_that_leaves_im_end_unsupervised_is_flagged(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.chat_template = CHAT_TEMPLATE.replace(
        "{{- message['content'] + '<|im_end|>' -}}\n{%- endgeneration -%}",
        "{{- message['content'] -}}\n{%- endgeneration -%}{{- '<|im_end|>' -}}",
    )
    assert tokenizer.chat_template != CHAT_TEMPLATE
    audit = audit_loss_mask(tokenizer, [{"messages": TWO_TURNS}], max_length=1000)
    assert audit["end_of_turn_supervised"] is False
    assert audit["supervised_tokens"] == count(tokenizer, "Hello there") + count(tokenizer, "Sunny.")


def test_a_template_without_generation_markers_is_an_error(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.chat_template = CHAT_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    with pytest.raises(ValueError, match="generation"):
        audit_loss_mask(tokenizer, [{"messages": TWO_TURNS}], max_length=1000)


def test_chat_template_hash_of_directory_and_tokenizer(tokenizer_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert chat_template_hash(tokenizer_dir) == chat_template_hash(tokenizer) == chat_template_hash(str(tokenizer_dir))
    tokenizer.chat_template = CHAT_TEMPLATE + " "
    assert chat_template_hash(tokenizer) != chat_template_hash(tokenizer_dir)
    with pytest.raises(ValueError, match="has no chat template"):
        chat_template_hash(tmp_path)
