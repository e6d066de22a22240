"""One optimizer update (gradient accumulation over micro-batches) and one validation pass.

A batch from the ShardReader is (rows, T + 1) tokens: inputs are the first T of each row, targets the last T.
Targets equal to the pad id (the padded tail of a split) are set to -100 and ignored by the loss.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from model_code.distill import IGNORE_INDEX, Teacher, distill_loss


def inputs_and_targets(rows: np.ndarray, pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), both (B, T) int64 on `device`, pad targets set to IGNORE_INDEX."""
    batch = torch.from_numpy(rows).to(device, non_blocking=True)  # (B, T + 1)
    inputs, targets = batch[:, :-1], batch[:, 1:].clone()
    targets[targets == pad_id] = IGNORE_INDEX
    return inputs, targets


def forward_loss(
    model, inputs: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean", teacher: Teacher | None = None
) -> torch.Tensor:
    """Next-token cross-entropy in fp32, or with a teacher the distillation loss (model_code.distill); plus the
    router's load-balancing loss for an MoE in training."""
    output = model(input_ids=inputs)
    logits = output.logits  # (B, T, V)
    if teacher is not None:
        with torch.no_grad():
            teacher_logits = teacher.model(input_ids=inputs).logits
        loss = distill_loss(logits, teacher_logits, targets, teacher)
    else:
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction=reduction
        )
    aux_loss = getattr(output, "aux_loss", None)
    if aux_loss is not None and reduction == "mean" and model.training:
        loss = loss + _unwrap(model).config.router_aux_loss_coef * aux_loss
    return loss


def train_step(
    accelerator,
    model,
    optimizer,
    micro_batches: list[np.ndarray],
    *,
    pad_id: int,
    grad_clip: float,
    teacher: Teacher | None = None,
):
    """Forward/backward every micro-batch, clip, step. Returns (mean loss tensor, grad norm tensor or None)."""
    total = torch.zeros((), device=accelerator.device)
    for index, rows in enumerate(micro_batches):
        inputs, targets = inputs_and_targets(rows, pad_id, accelerator.device)
        last = index == len(micro_batches) - 1
        # Gradients are all-reduced only on the last micro-batch of an update (DDP no_sync on the others).
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            with out_of_memory_explained(rows.shape):
                loss = forward_loss(model, inputs, targets, teacher=teacher) / len(micro_batches)
                accelerator.backward(loss)
        total += loss.detach()
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip > 0 else None
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm


@torch.no_grad()
def validation_sums(accelerator, model, micro_batches, *, pad_id: int, token_bytes: torch.Tensor) -> dict:
    """Summed loss (nats), target count, and loss and UTF-8 bytes over targets that decode to bytes; all ranks."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=accelerator.device)
    for rows in micro_batches:
        inputs, targets = inputs_and_targets(rows, pad_id, accelerator.device)
        losses = forward_loss(model, inputs, targets, reduction="none").double()  # (B * T,)
        flat = targets.flatten()
        counted = flat != IGNORE_INDEX
        target_bytes = token_bytes[flat.clamp(min=0)] * counted  # (B * T,)
        sums += torch.stack([losses.sum(), counted.sum(), (losses * (target_bytes > 0)).sum(), target_bytes.sum()])
    model.train()
    loss_sum, targets, byte_loss_sum, byte_count = accelerator.reduce(sums, reduction="sum").tolist()
    return {"loss_sum": loss_sum, "targets": int(targets), "byte_loss_sum": byte_loss_sum, "bytes": int(byte_count)}


@contextlib.contextmanager
def out_of_memory_explained(shape: tuple[int, ...]):
    """Re-raise an out-of-memory error with what to change: a smaller micro-batch, the same tokens per update."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as error:
        text = str(error)
        if (
            not isinstance(error, torch.OutOfMemoryError)
            and "out of memory" not in text
            and "can't allocate memory" not in text
        ):
            raise
        raise MemoryError(
            f"a micro-batch of {shape[0]} rows x {shape[1] - 1} tokens does not fit in memory ({text.splitlines()[0]})"
            ": lower micro_batch_size and keep tokens_per_step (gradient accumulation makes up the difference), "
            "or turn on gradient_checkpointing"
        ) from error


def _unwrap(model):
    return getattr(model, "module", model)
