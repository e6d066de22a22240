"""Supervised fine-tuning: TRL SFTTrainer + a LoRA adapter, loss on assistant tokens only.

out_dir/adapter/         the PEFT adapter (adapter_config.json, adapter_model.safetensors)
out_dir/model/           the adapter merged into full weights, HF format, with the base's tokenizer files
                         (chat_template.jinja included, byte for byte)
out_dir/metrics.jsonl    one record per logging step: step, loss, learning_rate, grad_norm, num_tokens, ...
out_dir/loss_curve.png   train loss against tokens seen
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

from data_code.instruct.schema import check_chat_row
from model_code.instruct.common import WORK_DIR, checked_rows, fit_lora, trainer_arguments, write_loss_curve
from model_code.instruct.config import SftConfig
from model_code.instruct.mask_audit import audit_loss_mask
from model_code.instruct.template import chat_template_hash
from model_code.outputs import MODEL_DIR


def train_sft(
    config: SftConfig,
    base_model_dir: str | Path,
    train_rows: list[dict],
    out_dir: str | Path,
    on_log: Callable[[dict], None] | None = None,
    mask_audit: dict | None = None,
) -> dict:
    """Fine-tune the model in `base_model_dir` on the chat rows `train_rows`; write out_dir (see module doc).

    Returns: steps, examples, train_loss_first, train_loss_last, train_loss (mean over the run), runtime_s,
    trainable_parameters, total_parameters, chat_template_hash, mask_audit (audit_loss_mask's dict).
    Raises ValueError for an invalid row (naming its index) or when truncation leaves no supervised token.
    `mask_audit`: audit_loss_mask's result for these rows at config.max_length, when the caller already ran it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = checked_rows(train_rows, "train_rows", check_chat_row)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    audit = mask_audit or audit_loss_mask(tokenizer, rows, config.max_length)
    if audit["fully_masked_after_truncation"] == len(rows):
        raise ValueError(f"max_length={config.max_length} truncates away every assistant turn; raise max_length")
    set_seed(config.seed)  # before the LoRA weights are initialized
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir))
    arguments = SFTConfig(**trainer_arguments(config, out_dir / WORK_DIR), assistant_only_loss=True)
    dataset = Dataset.from_list([{"messages": row["messages"]} for row in rows])
    fit = fit_lora(SFTTrainer, arguments, model, dataset, tokenizer, config, base_model_dir, out_dir, on_log)
    write_loss_curve(fit.metrics.records, out_dir, "SFT train loss (assistant tokens)")
    return {
        **fit.summary,
        "examples": len(rows),
        "chat_template_hash": chat_template_hash(out_dir / MODEL_DIR),
        "mask_audit": audit,
    }
