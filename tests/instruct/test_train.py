"""LoRA SFT and DPO on a tiny Llama: loss falls, preferences are learned, merged weights equal the adapter's."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, SFTConfig

from model_code.instruct import DpoConfig, SftConfig, chat_template_hash, merge_adapter, train_dpo, train_sft
from model_code.instruct.common import trainer_arguments
from tests.instruct.conftest import chat_rows, preference_rows

SLOW = pytest.mark.slow  # tests on the session's SFT and DPO runs (~30 s of training on 2 cores)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@SLOW
def test_sft_loss_decreases_and_writes_its_files(sft_run, base_model_dir):
    out_dir, stats = sft_run["out_dir"], sft_run["stats"]
    assert stats["steps"] == 16
    # Full-batch steps (8 rows, batch 8): the loss is not sampling noise, so a steady fall is the training working.
    assert stats["train_loss_last"] < stats["train_loss_first"] - 0.5
    records = read_jsonl(out_dir / "metrics.jsonl")
    assert [record["step"] for record in records] == list(range(2, 17, 2))
    assert records == sft_run["logged"]  # on_log saw every record the file holds
    assert all({"loss", "learning_rate", "tokens_seen"} <= set(record) for record in records)
    assert (out_dir / "loss_curve.png").stat().st_size > 0
    assert (out_dir / "adapter" / "adapter_config.json").is_file()
    assert not (out_dir / "_trainer").exists()
    assert 0 < stats["trainable_parameters"] < stats["total_parameters"]
    audit = stats["mask_audit"]
    assert audit["examples"] == len(chat_rows()) and audit["end_of_turn_supervised"] is True
    assert 0 < audit["supervised_token_share"] < 1
    model_dir = out_dir / "model"
    assert (model_dir / "chat_template.jinja").read_bytes() == (base_model_dir / "chat_template.jinja").read_bytes()
    assert stats["chat_template_hash"] == chat_template_hash(base_model_dir)
    assert AutoTokenizer.from_pretrained(str(model_dir)).pad_token == "<|pad|>"


@SLOW
def test_sft_model_learned_to_answer(sft_run, base_model_dir):
    """The fine-tuned model gives the trained answer a much higher probability than the base model does."""
    from model_code.instruct import completion_logprob

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    prompt = [{"role": "user", "content": "What colour is the blue box?"}]
    answer = [{"role": "assistant", "content": "The box is blue."}]
    scores = {}
    for name, directory in (("base", base_model_dir), ("sft", sft_run["out_dir"] / "model")):
        model = AutoModelForCausalLM.from_pretrained(str(directory)).eval()
        scores[name] = completion_logprob(model, tokenizer, prompt, answer, max_length=64)
    assert scores["sft"] > scores["base"] + 5.0


@SLOW
def test_merged_logits_equal_adapter_logits(sft_run, base_model_dir, tmp_path):
    input_ids = torch.tensor([[1, 40, 50, 60, 70, 80, 2]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(str(base_model_dir)).eval()
        base_logits = base(input_ids=input_ids).logits
        adapted = PeftModel.from_pretrained(base, str(sft_run["out_dir"] / "adapter")).eval()
        adapter_logits = adapted(input_ids=input_ids).logits
        trained = AutoModelForCausalLM.from_pretrained(str(sft_run["out_dir"] / "model")).eval()
        stats = merge_adapter(base_model_dir, sft_run["out_dir"] / "adapter", tmp_path / "merged")
        remerged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged")).eval()
        for merged in (trained, remerged):
            torch.testing.assert_close(merged(input_ids=input_ids).logits, adapter_logits, atol=1e-4, rtol=1e-4)
    assert (adapter_logits - base_logits).abs().max() > 1e-2  # the adapter changed something
    assert stats["chat_template_hash"] == chat_template_hash(base_model_dir)


@SLOW
def test_dpo_learns_the_easy_preference(dpo_run, sft_run):
    out_dir, stats = dpo_run["out_dir"], dpo_run["stats"]
    assert stats["steps"] == 12
    assert stats["reward_accuracy"] > 0.5
    assert stats["reward_margin"] > 0
    assert stats["validation_pairs"] == 4
    assert stats["validation_preference_accuracy"] == 1.0
    assert stats["validation_logprob_margin_after"] > stats["validation_logprob_margin_before"]
    assert stats["validation_reward_accuracy"] > 0.5  # the implicit reward ranks held-out chosen answers first
    records = read_jsonl(out_dir / "metrics.jsonl")
    assert records and all("rewards/margins" in record for record in records)
    assert (out_dir / "adapter" / "adapter_model.safetensors").is_file()
    template_hash = chat_template_hash(out_dir / "model")
    assert stats["chat_template_hash"] == sft_run["stats"]["chat_template_hash"] == template_hash


@SLOW
def test_bad_rows_and_truncation_are_refused(base_model_dir, sft_run, tmp_path):
    bad = [*chat_rows()[:2], {"messages": [{"role": "user", "content": "hi"}]}]
    with pytest.raises(ValueError, match=r"train_rows\[2\]: 'messages' must end with an assistant turn"):
        train_sft(SftConfig(max_steps=1), base_model_dir, bad, tmp_path / "bad")
    with pytest.raises(ValueError, match="truncates away every assistant turn"):
        train_sft(SftConfig(max_steps=1, max_length=3), base_model_dir, chat_rows(), tmp_path / "short")
    pairs = preference_rows(["apple"]) + [{"prompt": "x", "chosen": "same", "rejected": "same"}]
    with pytest.raises(ValueError, match=r"train_rows\[1\]: 'chosen' and 'rejected' are identical"):
        train_dpo(DpoConfig(max_steps=1), sft_run["out_dir"] / "model", pairs, [], tmp_path / "dpo")


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        (SftConfig, "lora_r", 0),
        (SftConfig, "max_steps", 0),
        (SftConfig, "learning_rate", 0.0),
        (SftConfig, "lora_dropout", 1.0),
        (SftConfig, "target_modules", ()),
        (DpoConfig, "beta", 0.0),
        (DpoConfig, "max_length", -5),
        (DpoConfig, "num_epochs", 0),
    ],
)
def test_configs_name_the_bad_field(config, field, value):
    with pytest.raises(ValueError, match=field):
        config(**{field: value})


@pytest.mark.parametrize(("trl_config", "config"), [(SFTConfig, SftConfig()), (DPOConfig, DpoConfig())])
def test_trainer_arguments_are_cpu_safe(trl_config, config, tmp_path):
    """TRL defaults bf16 and gradient checkpointing on; on a CPU both must end up off."""
    arguments = trl_config(**trainer_arguments(config, tmp_path))
    assert arguments.gradient_checkpointing is False
    assert arguments.bf16 is torch.cuda.is_available()
    assert arguments.max_length == config.max_length and arguments.seed == config.seed


def test_implicit_reward_accuracy_compares_each_completion_with_itself():
    from model_code.instruct.logprob import implicit_reward_accuracy

    reference = [(-50.0, -10.0), (-40.0, -30.0)]  # summed log-probs favour the short rejected answers
    policy = [(-45.0, -12.0), (-41.0, -29.0)]  # chosen gained 5 nats in pair 0; lost 1 in pair 1
    assert implicit_reward_accuracy(policy, reference) == 0.5
    assert implicit_reward_accuracy([], []) is None
