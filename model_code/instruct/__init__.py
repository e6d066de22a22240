"""Instruction tuning: LoRA SFT and DPO with TRL + PEFT, the loss-mask audit, adapter merging, template hashing."""

from model_code.instruct.config import DpoConfig, SftConfig
from model_code.instruct.dpo import train_dpo
from model_code.instruct.logprob import completion_logprob, preference_accuracy
from model_code.instruct.mask_audit import audit_loss_mask
from model_code.instruct.merge import merge_adapter
from model_code.instruct.sft import train_sft
from model_code.instruct.template import chat_template_hash

__all__ = ["DpoConfig", "SftConfig", "audit_loss_mask", "chat_template_hash", "completion_logprob", "merge_adapter",
           "preference_accuracy", "train_dpo", "train_sft"]  # fmt: skip
