"""AdamW with decoupled weight decay on matrices only, and the learning-rate schedules.

    cosine   linear warmup to the peak, then cosine down to peak * min_ratio at the last step
    wsd      warmup-stable-decay: linear warmup, the peak held, then a linear decay to peak * min_ratio over the last
             decay_fraction of the steps (no cooldown has to be planned before the run's length is known)

A continued run (a model warm-started from its parent) re-warms and re-decays with the same functions: its
warmup starts from its own step 0 (Ibrahim et al. 2024, "Simple and Scalable Strategies to Continually Pre-train
LLMs"). The schedule is a pure function of the step, set on the optimizer before each update: a resumed run needs
no scheduler state to continue on the same curve.
"""

from __future__ import annotations

import math

import torch


def make_optimizer(
    model: torch.nn.Module, *, learning_rate: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.AdamW:
    """AdamW; weight decay on 2-D weights (matmuls, embeddings), none on norms and biases."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    undecayed = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": undecayed, "weight_decay": 0.0}]
    # foreach: one fused kernel per group instead of a Python loop over parameters (faster on CPU and GPU alike).
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, foreach=True)


def learning_rate_at(
    step: int,
    *,
    peak: float,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    schedule: str = "cosine",
    decay_fraction: float = 0.2,
) -> float:
    """Learning rate of update `step` (0-based) under `schedule` (see the module docstring)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "wsd":
        decay_steps = max(1, round(decay_fraction * total_steps))
        decay_start = max(warmup_steps, total_steps - decay_steps)
        if step < decay_start:
            return peak
        progress = min(1.0, (step - decay_start + 1) / max(1, total_steps - decay_start))
        return peak * (1 - (1 - min_ratio) * progress)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
