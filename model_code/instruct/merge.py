"""Merging a saved LoRA adapter into its base model, as a standalone step."""

from __future__ import annotations

from pathlib import Path

from peft import PeftModel
from transformers import AutoModelForCausalLM

from model_code.instruct.common import save_merged
from model_code.instruct.template import chat_template_hash


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> dict:
    """Write base + adapter merged into full weights (HF format, with the base's tokenizer files) to `out_dir`.

    Returns: out_dir, parameters, chat_template_hash. FileNotFoundError names a missing directory.
    """
    for name, directory in (("base_dir", base_dir), ("adapter_dir", adapter_dir)):
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"{name} not found: {directory}")
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    merged = save_merged(PeftModel.from_pretrained(base, str(adapter_dir)), base_dir, Path(out_dir))
    return {
        "out_dir": str(out_dir),
        "parameters": sum(p.numel() for p in merged.parameters()),
        "chat_template_hash": chat_template_hash(out_dir),
    }
