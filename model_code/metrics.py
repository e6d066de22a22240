"""Training metrics: the JSONL log and callback, MFU against a device's peak FLOPs, and bits per byte.

Bits per byte makes validation loss comparable across tokenizers: the summed loss (nats) of every target token
divided by ln 2 and by the UTF-8 bytes those targets decode to. Special tokens (EOS, pad) decode to no bytes and
are left out of both sums, as in nanochat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model_code.outputs import METRICS_FILE

# Dense bf16 tensor-core peak FLOP/s per device (vendor datasheets, no sparsity), matched by substring of the
# CUDA device name; a device not listed (and every CPU) reports MFU as None.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


class MetricsLog:
    """Appends records to <output_dir>/metrics.jsonl and hands them to `on_metrics` (main process only)."""

    def __init__(self, output_dir: Path, on_metrics: Callable[[dict], None] | None, *, enabled: bool):
        self.path, self.on_metrics, self.enabled = Path(output_dir) / METRICS_FILE, on_metrics, enabled
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.on_metrics is not None:
            self.on_metrics(dict(record))


def peak_flops(device: torch.device) -> float | None:
    """Peak bf16 FLOP/s of a known CUDA device; None on CPU or an unknown device."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def model_flops_utilization(tokens_per_s: float, flops_per_token: float, peak: float | None, processes: int):
    """Achieved / peak FLOP/s over all processes, or None when the peak is unknown."""
    return None if peak is None else tokens_per_s * flops_per_token / (peak * processes)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet inverted: the printable character standing for each byte -> the byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    stand_ins, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            stand_ins[chr(byte)] = byte
        else:
            stand_ins[chr(256 + extra)] = byte
            extra += 1
    return stand_ins


def token_byte_lengths(tokenizer_dir: str | Path) -> np.ndarray:
    """UTF-8 bytes each token id decodes to (0 for special tokens), from a byte-level BPE tokenizer.json."""
    spec = json.loads((Path(tokenizer_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    vocab, special = spec["model"]["vocab"], {t["id"] for t in spec["added_tokens"] if t.get("special")}
    size = max([*vocab.values(), *(t["id"] for t in spec["added_tokens"])]) + 1
    decoder, lengths = _byte_decoder(), np.zeros(size, dtype=np.int64)
    for token, token_id in vocab.items():
        if token_id not in special:
            lengths[token_id] = sum(1 for char in token if char in decoder)
    return lengths


def bits_per_byte(summed_loss_nats: float, target_bytes: int) -> float | None:
    return summed_loss_nats / (math.log(2) * target_bytes) if target_bytes else None
