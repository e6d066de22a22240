"""Configuration of the SFT and DPO stages (LoRA adapters trained with TRL). Invalid values raise ValueError."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SftConfig:
    """Supervised fine-tuning with LoRA, loss on assistant tokens only."""

    lora_r: int = 16  # rank of each LoRA update matrix
    lora_alpha: int = 32  # LoRA scale numerator: the update is scaled by lora_alpha / lora_r
    lora_dropout: float = 0.0  # dropout on the LoRA input during training (0 keeps tiny runs deterministic)
    target_modules: str | tuple[str, ...] = "all-linear"  # PEFT target modules: every linear layer but the head
    learning_rate: float = 2e-4  # peak learning rate (linear decay to 0)
    max_steps: int = -1  # optimizer steps; -1: run num_epochs over the data instead
    num_epochs: float = 1.0  # passes over the training rows when max_steps is -1
    per_device_batch_size: int = 8  # conversations per micro-batch per device
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    max_length: int = 512  # tokens per conversation; longer ones keep their start (truncation counted by the audit)
    seed: int = 0  # LoRA init, data order and dropout
    logging_steps: int = 10  # optimizer steps between metrics records

    def __post_init__(self):
        _check_common(self)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DpoConfig:
    """Direct preference optimization with LoRA on top of the merged SFT model (the reference: adapter off)."""

    lora_r: int = 16  # rank of each LoRA update matrix
    lora_alpha: int = 32  # LoRA scale numerator: the update is scaled by lora_alpha / lora_r
    lora_dropout: float = 0.0  # dropout on the LoRA input during training
    target_modules: str | tuple[str, ...] = "all-linear"  # PEFT target modules: every linear layer but the head
    learning_rate: float = 5e-5  # peak learning rate (linear decay to 0)
    beta: float = 0.1  # DPO temperature: how far the policy may move from the reference (larger: less)
    max_steps: int = -1  # optimizer steps; -1: run num_epochs over the pairs instead
    num_epochs: float = 1.0  # passes over the training pairs when max_steps is -1
    per_device_batch_size: int = 8  # preference pairs per micro-batch per device
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    max_length: int = 512  # tokens of prompt + completion; longer pairs keep their start
    seed: int = 0  # LoRA init, data order and dropout
    logging_steps: int = 10  # optimizer steps between metrics records

    def __post_init__(self):
        _check_common(self)
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_common(config) -> None:
    """The checks SftConfig and DpoConfig share; ValueError naming the field."""
    for name in (
        "lora_r",
        "lora_alpha",
        "per_device_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "logging_steps",
    ):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not isinstance(config.max_steps, int) or not (config.max_steps == -1 or config.max_steps >= 1):
        raise ValueError(f"max_steps must be -1 (use num_epochs) or an integer >= 1, got {config.max_steps!r}")
    if not config.num_epochs > 0:
        raise ValueError(f"num_epochs must be > 0, got {config.num_epochs!r}")
    if not 0.0 <= config.lora_dropout < 1.0:
        raise ValueError(f"lora_dropout must be in [0, 1), got {config.lora_dropout!r}")
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate!r}")
    if not isinstance(config.seed, int) or config.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {config.seed!r}")
    modules = config.target_modules
    if not modules or not (isinstance(modules, str) or all(isinstance(m, str) and m for m in modules)):
        raise ValueError(f"target_modules must be 'all-linear' or a non-empty tuple of module names, got {modules!r}")
