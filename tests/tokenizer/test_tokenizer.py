"""The byte-level BPE tokenizer: training, Hugging Face files, chat template masks, fingerprint, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from bench.corpus import TRICKY_TEXTS, corpus_texts, write_corpus
from data_code.tokenizer import EOS, IM_END, IM_START, PAD, TokenizerConfig, tokenizer_fingerprint, train_tokenizer
from data_code.tokenizer.fingerprint import pre_tokenizer_family

CONVERSATION = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What does the bisect module do?"},
    {"role": "assistant", "content": "It keeps a list sorted as you insert into it."},
    {"role": "user", "content": "And heapq?"},
    {"role": "assistant", "content": "It implements the heap queue algorithm."},
]


def test_training_writes_hf_files_and_records_the_fingerprint(trained):
    out_dir, stats = trained
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        assert (out_dir / name).is_file(), name
    record = json.loads((out_dir / "fingerprint.json").read_text())
    assert record["fingerprint"] == stats["fingerprint"] == tokenizer_fingerprint(out_dir)
    assert record["pre_tokenizer_family"] == stats["pre_tokenizer_family"] == "gpt-2"
    assert record["special_tokens"] == {EOS: 0, IM_START: 1, IM_END: 2, PAD: 3}
    assert 260 < stats["vocab_size"] <= 2048
    assert stats["documents"] == len(corpus_texts())
    assert stats["chars"] == sum(map(len, corpus_texts()))


@pytest.mark.parametrize("loader", [AutoTokenizer, PreTrainedTokenizerFast])
def test_saved_tokenizer_loads_offline_with_transformers_and_round_trips(trained, loader):
    tokenizer = loader.from_pretrained(trained[0])
    assert (tokenizer.eos_token, tokenizer.pad_token) == (EOS, PAD)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert {IM_START, IM_END} <= set(tokenizer.all_special_tokens)
    for text in (corpus_texts()[5], TRICKY_TEXTS[1], "  leading spaces\n\nand blank lines  "):
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_marks_only_assistant_tokens(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained[0])
    rendered = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert rendered.startswith(f"{IM_START}system\nAnswer in one sentence.{IM_END}\n{IM_START}user\n")
    assert rendered.endswith(f"{IM_START}assistant\nIt implements the heap queue algorithm.{IM_END}\n")
    prompt = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(f"{IM_START}assistant\n")
    encoded = tokenizer.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    assert len(ids) == len(mask) and 0 < sum(mask) < len(mask)
    masked = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
    expected = "".join(turn["content"] + IM_END for turn in CONVERSATION if turn["role"] == "assistant")
    assert masked == expected
    unmasked = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if not m], skip_special_tokens=False)
    assert "What does the bisect module do?" in unmasked and "assistant" in unmasked


def test_training_is_deterministic_whatever_the_batch_size(trained, corpus_path, tmp_path):
    stats = train_tokenizer(str(corpus_path), tmp_path, TokenizerConfig(vocab_size=2048, batch_size=7))
    assert stats["fingerprint"] == trained[1]["fingerprint"]
    assert (tmp_path / "tokenizer.json").read_bytes() == (trained[0] / "tokenizer.json").read_bytes()


def test_fingerprint_follows_vocabulary_and_template(trained, corpus_path, tmp_path):
    smaller = train_tokenizer(str(corpus_path), tmp_path / "small", TokenizerConfig(vocab_size=1024))
    assert smaller["fingerprint"] != trained[1]["fingerprint"]
    edited = shutil.copytree(trained[0], tmp_path / "edited")
    (edited / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert tokenizer_fingerprint(edited) != trained[1]["fingerprint"]


def test_pre_tokenizer_family_names_gpt2_forms_only():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert pre_tokenizer_family(byte_level) == "gpt-2"
    assert pre_tokenizer_family({**byte_level, "use_regex": False}) == "unknown"
    assert pre_tokenizer_family({"type": "Whitespace"}) == "unknown"
    assert pre_tokenizer_family(None) == "unknown"


def test_vocabulary_smaller_than_specials_plus_bytes_is_refused():
    with pytest.raises(ValueError, match="vocab_size must be at least 260"):
        TokenizerConfig(vocab_size=259)
    TokenizerConfig(vocab_size=260)
    with pytest.raises(ValueError, match="special_tokens must include"):
        TokenizerConfig(special_tokens=(EOS, IM_START, IM_END))


def test_empty_corpus_is_refused_naming_the_file(tmp_path):
    no_rows = write_corpus(tmp_path / "no_rows.parquet", [])
    with pytest.raises(ValueError, match=r"corpus is empty: .*no_rows\.parquet"):
        train_tokenizer(str(no_rows), tmp_path / "a", TokenizerConfig())
    blank = write_corpus(tmp_path / "blank.parquet", ["", ""])
    with pytest.raises(ValueError, match=r"corpus is empty: .*blank\.parquet"):
        train_tokenizer(str(blank), tmp_path / "b", TokenizerConfig())
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        train_tokenizer(str(tmp_path / "missing.parquet"), tmp_path / "c", TokenizerConfig())
