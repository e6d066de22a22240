"""Instruction tuning: LoRA SFT and DPO with TRL + PEFT, the loss-mask audit, adapter merging, template hashing.

Names are imported lazily: `from model_code.instruct.config import SftConfig` (what the Dagster definitions need
at load time) must not pull in TRL, PEFT and datasets.
"""

from importlib import import_module

_WHERE = {
    "DpoConfig": "config",
    "SftConfig": "config",
    "train_dpo": "dpo",
    "completion_logprob": "logprob",
    "preference_accuracy": "logprob",
    "audit_loss_mask": "mask_audit",
    "merge_adapter": "merge",
    "train_sft": "sft",
    "chat_template_hash": "template",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
