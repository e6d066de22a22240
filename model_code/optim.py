"""AdamW with decoupled weight decay on matrices only, and a linear-warmup-then-cosine learning-rate schedule.

The schedule is a pure function of the step, set on the optimizer before each update: a resumed run needs no
scheduler state to continue on the same curve.
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


def learning_rate_at(step: int, *, peak: float, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning rate of update `step` (0-based): linear warmup to `peak`, then cosine down to peak * min_ratio."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
