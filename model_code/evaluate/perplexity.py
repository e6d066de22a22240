"""Held-out perplexity of an HF-format model on the validation split of its token shards.

    stats = validation_perplexity("lake/base_model/<v>/model", "lake/token_shards/<v>", max_tokens=100_000)
    stats["perplexity"], stats["loss"], stats["bits_per_byte"]

Every target token that is not <|pad|> counts, <|endoftext|> included. Bits per byte divides the summed loss
of those targets by ln 2 and by the UTF-8 bytes they decode to (special tokens decode to none), so it compares
models with different tokenizers: bits_per_byte = loss * tokens / (bytes * ln 2). Pretraining's val_bpb instead
leaves the loss of byte-less targets out, so the two differ slightly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from data_code.shards.layout import INDEX_FILE, read_json
from data_code.tokenizer.fingerprint import tokenizer_fingerprint
from model_code.data import ShardReader
from model_code.metrics import token_byte_lengths
from model_code.steps import IGNORE_INDEX, forward_loss, inputs_and_targets


def validation_perplexity(
    model_dir: str | Path,
    shards_dir: str | Path,
    max_tokens: int | None = None,
    batch_size: int = 8,
    *,
    split: str = "validation",
    device: str | None = None,
) -> dict:
    """Perplexity, mean loss and bits per byte over the first rows of `split` (reader order for seed 0).

    Reads whole rows until at least `max_tokens` targets are taken (None: the whole split). Returns
    {"perplexity", "loss" (nats/token), "bits_per_byte", "tokens" (targets scored), "bytes" (their UTF-8 bytes),
    "rows", "split"}. Raises ValueError for bad arguments, for shards made with another tokenizer, or rows longer
    than the model's context; FileNotFoundError when the model or shard directory is incomplete.
    """
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be an integer >= 1 or None, got {max_tokens!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model = _load_model(model_dir, device)
    index = read_json(shards_dir, INDEX_FILE)
    if index["seq_len"] > model.config.max_position_embeddings:
        raise ValueError(
            f"token shards {shards_dir} have rows of seq_len {index['seq_len']}, longer than the "
            f"context of model {model_dir} ({model.config.max_position_embeddings})"
        )
    sums, rows = _score(model, model_dir, shards_dir, split, max_tokens, batch_size, index, ())
    if sums["tokens"] == 0:
        raise ValueError(f"split {split!r} of {shards_dir} has no target tokens to evaluate")
    loss = sums["loss_sum"] / sums["tokens"]
    bits_per_byte = sums["loss_sum"] / (math.log(2) * sums["bytes"]) if sums["bytes"] else None
    return {
        "perplexity": math.exp(loss),
        "loss": loss,
        "bits_per_byte": bits_per_byte,
        "tokens": sums["tokens"],
        "bytes": sums["bytes"],
        "rows": len(rows),
        "split": split,
    }


def perplexity_by_night(
    model_dir: str | Path, shards_dir: str | Path, max_tokens: int | None = None, batch_size: int = 8
) -> list[dict]:
    """Per night of a shard set, perplexity on that night's validation rows: [{"day", "perplexity", "tokens"}],
    oldest first ([] for a plain shard directory). What a continued model forgot shows on the older nights."""
    index = read_json(shards_dir, INDEX_FILE)
    days = list(dict.fromkeys(e["day"] for e in index["splits"].get("validation", []) if "day" in e))
    if not days:
        return []
    model = _load_model(model_dir, None)
    found = []
    for day in days:
        try:
            sums, _ = _score(model, model_dir, shards_dir, "validation", max_tokens, batch_size, index, (day,))
        except ValueError:  # every validation row of that night is excluded
            continue
        if sums["tokens"]:
            loss = sums["loss_sum"] / sums["tokens"]
            found.append({"day": day, "perplexity": math.exp(loss), "tokens": sums["tokens"]})
    return found


def _score(model, model_dir, shards_dir, split, max_tokens, batch_size, index, days) -> tuple[dict, np.ndarray]:
    reader = ShardReader(
        shards_dir,
        split,
        expected_fingerprint=tokenizer_fingerprint(model_dir),
        seed=0,
        batch_size=batch_size,
        drop_last=False,
        days=days,
    )
    rows = _first_rows(reader, max_tokens)
    sums = _loss_sums(model, rows, batch_size, pad_id=index["pad_id"], token_bytes=token_byte_lengths(model_dir))
    return sums, rows


def _load_model(model_dir: str | Path, device: str | None):
    from transformers import AutoModelForCausalLM

    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in model directory {model_dir}: not an HF-format model")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()


def _first_rows(reader: ShardReader, max_tokens: int | None) -> np.ndarray:
    """The reader's rows, (rows, T + 1), stopping once the rows hold at least max_tokens targets."""
    taken, targets = [], 0
    for batch in reader:
        for row in batch:
            taken.append(row)
            targets += int((row[1:] != reader.pad_id).sum())
            if max_tokens is not None and targets >= max_tokens:
                return np.stack(taken)
    return np.stack(taken) if taken else np.zeros((0, reader.row_tokens), dtype=np.int64)


@torch.no_grad()
def _loss_sums(model, rows: np.ndarray, batch_size: int, *, pad_id: int, token_bytes: np.ndarray) -> dict:
    """Summed loss (nats, float64), scored targets and their UTF-8 bytes over `rows` in batches."""
    device = next(model.parameters()).device
    lengths = torch.from_numpy(token_bytes).to(device)
    loss_sum, tokens, byte_count = 0.0, 0, 0
    for start in range(0, len(rows), batch_size):
        inputs, targets = inputs_and_targets(rows[start : start + batch_size], pad_id, device)  # (B, T) each
        losses = forward_loss(model, inputs, targets, reduction="none").double()  # (B * T,); 0 where ignored
        scored = targets.flatten() != IGNORE_INDEX
        loss_sum += losses.sum().item()
        tokens += int(scored.sum())
        byte_count += int(lengths[targets.flatten()[scored]].sum())
    return {"loss_sum": loss_sum, "tokens": tokens, "bytes": byte_count}
