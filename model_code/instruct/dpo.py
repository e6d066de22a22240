"""Direct preference optimization: TRL DPOTrainer + a LoRA adapter on the merged SFT model.

The reference policy is the SFT model itself (PEFT: the adapter switched off), so no second copy is loaded.
out_dir/adapter/, out_dir/model/ (merged, with tokenizer files), out_dir/metrics.jsonl (step, loss,
rewards/margins, rewards/accuracies, logps/chosen, ...), out_dir/loss_curve.png.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import DPOConfig, DPOTrainer

from data_code.instruct.schema import PREFERENCE_KEYS, check_preference_row
from model_code.instruct.common import WORK_DIR, checked_rows, fit_lora, trainer_arguments, write_loss_curve
from model_code.instruct.config import DpoConfig
from model_code.instruct.logprob import implicit_reward_accuracy, preference_accuracy
from model_code.instruct.template import chat_template_hash
from model_code.outputs import MODEL_DIR

LATE_SHARE = 0.25  # reward metrics are averaged over the last quarter of logged steps (one batch is noisy)


def train_dpo(
    config: DpoConfig,
    sft_model_dir: str | Path,
    train_rows: list[dict],
    validation_rows: list[dict],
    out_dir: str | Path,
    on_log: Callable[[dict], None] | None = None,
) -> dict:
    """Align the model in `sft_model_dir` on preference pairs; write out_dir (see module doc).

    Returns: steps, pairs, train_loss_first/last, train_loss, runtime_s, trainable/total_parameters,
    reward_margin and reward_accuracy (trainer logs, mean over the last quarter of logged steps),
    validation_pairs, validation_preference_accuracy_before / validation_preference_accuracy (the SFT model / the
    merged DPO model prefers chosen: higher summed completion log-prob), validation_logprob_margin_before / _after,
    validation_reward_accuracy (DPO's implicit reward, policy vs SFT log-prob gain, ranks chosen first: length-fair),
    chat_template_hash. Raises ValueError for an invalid row (naming the list and index).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, validation = _pairs(train_rows, "train_rows"), _pairs(validation_rows, "validation_rows", allow_empty=True)
    tokenizer = AutoTokenizer.from_pretrained(str(sft_model_dir))
    set_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(str(sft_model_dir))
    before = preference_accuracy(model, tokenizer, validation, config.max_length)
    arguments = DPOConfig(**trainer_arguments(config, out_dir / WORK_DIR), beta=config.beta)
    dataset = Dataset.from_list(train)
    fit = fit_lora(DPOTrainer, arguments, model, dataset, tokenizer, config, sft_model_dir, out_dir, on_log)
    after = preference_accuracy(fit.merged, tokenizer, validation, config.max_length)
    write_loss_curve(fit.metrics.records, out_dir, "DPO train loss", "DPO loss: -log sigmoid(beta x margin), per pair")
    return {
        **fit.summary,
        "pairs": len(train),
        **_late_rewards(fit.metrics.records),
        "validation_pairs": after["pairs"],
        "validation_preference_accuracy_before": before["preference_accuracy"],
        "validation_preference_accuracy": after["preference_accuracy"],
        "validation_logprob_margin_before": before["mean_logprob_margin"],
        "validation_logprob_margin_after": after["mean_logprob_margin"],
        "validation_reward_accuracy": implicit_reward_accuracy(after["logprobs"], before["logprobs"]),
        "chat_template_hash": chat_template_hash(out_dir / MODEL_DIR),
    }


def _pairs(rows: list[dict], name: str, allow_empty: bool = False) -> list[dict]:
    """prompt/chosen/rejected of each row, checked; ValueError naming `name` and the index of a bad row."""
    pairs = checked_rows(rows, name, check_preference_row, allow_empty)
    return [{key: pair[key] for key in PREFERENCE_KEYS} for pair in pairs]


def _late_rewards(records: list[dict]) -> dict:
    """reward_margin, reward_accuracy: means of rewards/margins and rewards/accuracies over the late logged steps."""
    logged = [record for record in records if record.get("rewards/margins") is not None]
    late = logged[-max(1, round(len(logged) * LATE_SHARE)) :] if logged else []
    mean = lambda key: sum(record[key] for record in late) / len(late) if late else None  # noqa: E731
    return {"reward_margin": mean("rewards/margins"), "reward_accuracy": mean("rewards/accuracies")}
