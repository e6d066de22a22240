"""Configuration of the pretraining stage (one frozen dataclass; the Dagster Config mirrors it)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_code.presets import ModelPreset, preset_named

_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields: never changes the weights
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
SCHEDULES = ("cosine", "wsd")  # model_code.optim.learning_rate_at


@dataclass(frozen=True)
class PretrainConfig:
    """How a model is pretrained from token shards. Invalid values raise ValueError naming the field."""

    shards_dir: str  # token-shard directory (data_code.shards): train split, and validation when present
    tokenizer_dir: str  # HF tokenizer directory the shards were made with (fingerprint checked)
    output_dir: str  # run directory: metrics.jsonl, checkpoints/, model/, loss_curve.png, data_order.json
    preset: str = "tiny"  # model_code.presets name; vocab_size always comes from the tokenizer
    model_overrides: Mapping[str, Any] = field(default_factory=dict)  # preset fields to change, e.g. {"num_layers": 4}
    micro_batch_size: int = 8  # rows (sequences) per process per forward/backward
    tokens_per_step: int = 0  # tokens per optimizer update over all processes; 0: one micro-batch per process
    max_steps: int = 100  # optimizer updates in the whole run (the cosine schedule ends here)
    learning_rate: float = 3e-3  # peak, after warmup
    min_lr_ratio: float = 0.1  # the cosine ends at learning_rate * min_lr_ratio
    warmup_steps: int = 10  # linear warmup updates (a continued run re-warms: its warmup starts at its own step 0)
    schedule: str = "cosine"  # cosine | wsd (warmup-stable-decay: no cooldown has to be planned ahead)
    decay_fraction: float = 0.2  # wsd: the share of the steps, at the end, over which the rate decays
    # A continued run (init_from) re-warms to learning_rate * rewarm_lr_ratio: at the full peak a night's training
    # forgets the nights just before it by more than the gate's +2 % (bench.nightly: 3.5 % at 1.0, 1.3 % at 0.5).
    rewarm_lr_ratio: float = 0.5
    # A parent checkpoint directory (model.safetensors, optimizer.bin, meta.json) to continue from: its weights,
    # and its optimizer state when that loads (else a fresh optimizer, recorded). Its identity is the parent
    # artifact's version, which the asset hashes as an upstream.
    init_from: str | None = field(default=None, metadata=_SPEED_ONLY)
    # A continued run reads the shard-set days it has not seen (train_days) plus a replay share of earlier days:
    # Ibrahim et al. 2024 find a few percent enough for a weak shift and ~25% for a strong one; 0.25 is the safe end.
    train_days: tuple[str, ...] = ()  # empty: every day of the shards
    # with train_days: share of the rows drawn from the other days, at least; when max_steps holds more rows than the
    # new days and that share, earlier days' rows fill the rest (each new row is read once, not epoch after epoch)
    replay_fraction: float = 0.25
    # Distillation (model_code.distill): an HF model directory whose logits the model learns to match (its identity
    # is the teacher artifact's version, which the asset hashes as an upstream), the softmax temperature of the KL
    # term, and the weight of the added next-token cross-entropy (0: KL only).
    teacher_dir: str | None = field(default=None, metadata=_SPEED_ONLY)
    distill_temperature: float = 1.0
    distill_ce_weight: float = 0.0
    weight_decay: float = 0.1  # AdamW decoupled decay on matrices (not norms)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient L2 norm; 0 disables clipping
    seed: int = 0  # seeds weights, data order (epoch e reads with seed + e) and torch RNGs
    log_every: int = field(default=10, metadata=_SPEED_ONLY)  # updates between train-metric records
    eval_every: int = field(default=50, metadata=_SPEED_ONLY)  # updates between validation passes; 0: end only
    eval_batches: int = field(default=4, metadata=_SPEED_ONLY)  # validation micro-batches per pass (fixed rows)
    checkpoint_every: int = field(default=100, metadata=_SPEED_ONLY)  # updates between checkpoints; 0: none
    keep_checkpoints: int = field(default=3, metadata=_SPEED_ONLY)  # newest checkpoints kept on disk
    resume: bool = field(default=True, metadata=_SPEED_ONLY)  # continue from the newest valid checkpoint
    mixed_precision: str = "auto"  # auto: bf16 autocast on a GPU, fp32 on a CPU; or no / bf16 / fp16
    compile: bool = field(default=False, metadata=_SPEED_ONLY)  # torch.compile the model (GPU runs)
    gradient_checkpointing: bool = field(default=False, metadata=_SPEED_ONLY)  # recompute activations: less memory
    verify_sha256: bool = field(default=False, metadata=_SPEED_ONLY)  # hash every shard file on open

    @property
    def peak_learning_rate(self) -> float:
        """The schedule's peak: learning_rate, times rewarm_lr_ratio for a continued run."""
        return self.learning_rate * (self.rewarm_lr_ratio if self.init_from else 1.0)

    def __post_init__(self):
        for name in ("micro_batch_size", "max_steps", "log_every", "eval_batches", "keep_checkpoints"):
            _require_int(self, name, minimum=1)
        for name in ("tokens_per_step", "warmup_steps", "eval_every", "checkpoint_every", "seed"):
            _require_int(self, name, minimum=0)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be within [0, 1], got {self.min_lr_ratio!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be within [0, 1), got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(f"weight_decay and grad_clip must be >= 0, got {self.weight_decay}, {self.grad_clip}")
        object.__setattr__(self, "train_days", tuple(self.train_days))  # from JSON: a list
        if not 0 <= self.replay_fraction < 1:
            raise ValueError(f"replay_fraction must be within [0, 1), got {self.replay_fraction!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.rewarm_lr_ratio <= 1:
            raise ValueError(f"rewarm_lr_ratio must be within (0, 1], got {self.rewarm_lr_ratio!r}")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be within (0, 1], got {self.decay_fraction!r}")
        if not self.distill_temperature > 0:
            raise ValueError(f"distill_temperature must be > 0, got {self.distill_temperature!r}")
        if not self.distill_ce_weight >= 0:
            raise ValueError(f"distill_ce_weight must be >= 0, got {self.distill_ce_weight!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        self.model_preset(vocab_size=1)  # unknown preset names and override fields fail here, not mid-run

    def model_preset(self, vocab_size: int) -> ModelPreset:
        """The preset with overrides applied, sized for the tokenizer's vocabulary."""
        preset = preset_named(self.preset)
        unknown = set(self.model_overrides) - {f.name for f in dataclasses.fields(preset)}
        if unknown:
            raise ValueError(f"model_overrides has fields {sorted(unknown)} that ModelPreset does not have")
        return dataclasses.replace(preset, **dict(self.model_overrides), vocab_size=vocab_size)

    def to_dict(self) -> dict:
        """JSON-shaped values: mappings as dicts, tuples as lists (what a checkpoint's meta reads back)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, path: str | Path) -> PretrainConfig:
        """A config from a JSON object of field values; FileNotFoundError naming the path when absent."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"pretraining config {path} not found")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "the config") -> PretrainConfig:
        """A config from field values; ValueError naming `source` and the fields PretrainConfig does not have."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{source} has fields {sorted(unknown)} that PretrainConfig does not have")
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return list(value) if isinstance(value, tuple) else value


def _require_int(config: PretrainConfig, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
