"""Tokens/s and MFU of the gpt2_124m and m350 presets on one GPU: bf16 autocast, SDPA, torch.compile, fused AdamW.

    python -m bench.gpu_pretrain --json PATH [--presets gpt2_124m,m350] [--steps N] [--device cuda]

CPU smoke test (MFU null): python -m bench.gpu_pretrain --json PATH --presets tiny --device cpu --steps 2
--seq-len 64 --micro-batch 2 --no-compile

Each preset is built as the trainer builds it (model_code.model.build_model: LlamaForCausalLM, vocabulary
--vocab, default 32768) and trained as the trainer trains it on a GPU (model_code.pretrain with accelerate's
mixed_precision="bf16": fp32 weights, bf16 autocast; model_code.steps.forward_loss: fp32 cross-entropy on the
logits; gradient clipping at 1.0; AdamW with weight decay on matrices only), except that AdamW is fused on CUDA
(the trainer's make_optimizer uses foreach) and the batch is one fixed random (micro_batch, seq_len + 1) tensor
already on the device, repeated every step: no data loading, and the loss must fall as the model memorizes it.

Per preset: warmup steps (torch.compile happens in the first; its wall time is compile_s) are not timed; the timed
window is bracketed by torch.cuda.synchronize. tokens_per_s = steps x micro_batch x seq_len / window; MFU =
flops_per_token(preset, seq_len) x tokens_per_s / the device's dense bf16 peak (model_code.metrics.PEAK_BF16_FLOPS,
matched on torch.cuda.get_device_name; H200: 989 TFLOP/s); null on a CPU or an unlisted device. A deadline
(--deadline-s, default 450 s from start) skips presets not yet started and ends a timed window early; both are
noted in the JSON, and `met` (every preset run, its loss finite and falling, MFU >= goal_mfu) is then false.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import sys
import time
from pathlib import Path

import torch

from model_code.metrics import model_flops_utilization, peak_flops
from model_code.model import build_model, count_parameters, flops_per_token
from model_code.presets import preset_named
from model_code.steps import forward_loss

GOAL_MFU = 0.40
VOCAB = 32_768
# Per preset on a GPU: (seq_len, micro_batch). The preset's own context, 32k tokens per step either way; on a
# 141 GB H200 both leave most memory free. Other presets default to their own context and 8 rows.
GPU_SHAPES = {"gpt2_124m": (1024, 32), "m350": (2048, 16)}
EOS_ID, PAD_ID = 0, 3  # any ids: the random batch uses the whole vocabulary and no target is ignored


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="write the results here")
    parser.add_argument("--presets", default="gpt2_124m,m350", help="comma-separated model_code.presets names")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per preset")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--seq-len", type=int, help="tokens per row for every preset (default: per preset)")
    parser.add_argument("--micro-batch", type=int, help="rows per step for every preset (default: per preset)")
    parser.add_argument("--vocab", type=int, default=VOCAB, help="vocabulary size the presets are sized for")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto: bf16 autocast on CUDA, fp32 on a CPU (the trainer's mixed_precision=auto)",
    )
    parser.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager, flash_attention_2, ...)")
    parser.add_argument("--lr", type=float, default=1e-3, help="constant AdamW learning rate")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (the trainer's default)")
    parser.add_argument("--deadline-s", type=float, default=450.0, help="wall-clock budget of the whole run")
    parser.add_argument(
        "--min-preset-s",
        type=float,
        default=60.0,
        help="do not start a preset with less than this left before the deadline",
    )
    parser.add_argument("--goal-mfu", type=float, default=GOAL_MFU)
    args = parser.parse_args(argv)
    for name in ("steps", "warmup", "vocab", "seq_len", "micro_batch"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= {0 if name == 'warmup' else 1}, got {value}")
    return args


def run_preset(name: str, args: argparse.Namespace, device: torch.device, deadline: float) -> dict:
    """Build, compile, warm up and time one preset; its JSON record."""
    preset = preset_named(name).with_vocab(args.vocab)
    default_seq, default_rows = GPU_SHAPES.get(name, (preset.seq_len, 8))
    seq_len, rows = args.seq_len or default_seq, args.micro_batch or default_rows
    notes = []
    if seq_len > preset.seq_len:  # the trainer refuses rows longer than the model's positions: widen them instead
        notes.append(f"preset context widened from {preset.seq_len} to {seq_len}")
        preset = dataclasses.replace(preset, seq_len=seq_len)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")

    torch.manual_seed(0)
    model = build_model(preset, eos_id=EOS_ID, pad_id=PAD_ID)
    if model.config._attn_implementation != args.attn:
        model.set_attn_implementation(args.attn)
    model.to(device).train()
    params = count_parameters(model)
    decayed = [p for p in model.parameters() if p.dim() >= 2]
    undecayed = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decayed, "weight_decay": 0.1}, {"params": undecayed, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), fused=fused, foreach=None if fused else True)
    compiled = model if args.no_compile else torch.compile(model)

    batch = torch.randint(0, preset.vocab_size, (rows, seq_len + 1), device=device)
    inputs, targets = batch[:, :-1], batch[:, 1:].contiguous()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> torch.Tensor:
        with autocast:
            loss = forward_loss(compiled, inputs, targets)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch._dynamo.utils.counters.clear()
    losses = []
    sync()
    started = time.perf_counter()
    losses.append(step())  # compiles forward and backward
    sync()
    compile_s = time.perf_counter() - started
    for _ in range(args.warmup - 1):
        losses.append(step())
    sync()
    window_start, timed = time.perf_counter(), 0
    for _ in range(args.steps):
        losses.append(step())
        timed += 1
        if time.monotonic() > deadline:
            notes.append(f"deadline: timed {timed} of {args.steps} steps")
            break
    sync()
    window_s = time.perf_counter() - window_start

    values = torch.stack(losses).float().tolist()
    tokens_per_s = timed * rows * seq_len / window_s if window_s > 0 else 0.0
    per_token = flops_per_token(preset, seq_len)
    mfu = model_flops_utilization(tokens_per_s, per_token, peak_flops(device), 1)
    finite = all(math.isfinite(v) for v in values)
    record = {
        "preset": name,
        "params": params,
        "micro_batch": rows,
        "seq_len": seq_len,
        "tokens_per_step": rows * seq_len,
        "warmup_steps": max(1, args.warmup),
        "timed_steps": timed,
        "timed_s": round(window_s, 4),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": per_token,
        "mfu": None if mfu is None else round(mfu, 4),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.type == "cuda" else None,
        "loss_first": values[0],
        "loss_last": values[-1],
        "loss_ok": finite and values[-1] < values[0],
        "compile_s": round(compile_s, 2),
        "compiled": not args.no_compile,
        "graph_breaks": sum(torch._dynamo.utils.counters["graph_break"].values()),
        "precision": "bf16-autocast" if bf16 else "fp32",
        "attn": model.config._attn_implementation,
        "fused_adamw": fused,
        "notes": notes,
    }
    return record  # the model, optimizer and batch go with this frame; main frees the cache


def print_table(result: dict) -> None:
    print(f"device: {result['device']}  torch {result['torch']}")
    header = f"{'preset':<11}{'params':>13}{'rows x T':>12}{'tokens/s':>13}{'MFU':>8}{'mem GB':>8}"
    print(header + f"{'loss first->last':>20}{'compile s':>11}")
    for r in result["presets"]:
        if "error" in r:
            print(f"{r['preset']:<11} error: {r['error']}")
            continue
        mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
        mem = "-" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.1f}"
        losses = f"{r['loss_first']:.3f}->{r['loss_last']:.3f}"
        shape = f"{r['micro_batch']:>5} x {r['seq_len']:<5}"
        print(
            f"{r['preset']:<11}{r['params']:>13,}{shape}{r['tokens_per_s']:>13,.0f}{mfu:>8}{mem:>8}{losses:>20}"
            f"{r['compile_s']:>11.1f}"
        )
        for note in r["notes"]:
            print(f"    note: {note}")
    for s in result["skipped"]:
        print(f"{s['preset']:<11} skipped: {s['reason']}")
    print(f"goal MFU >= {result['goal_mfu']:.0%}: {'met' if result['met'] else 'not met'}")


def main(argv: list[str] | None = None) -> dict:
    started = time.monotonic()
    args = parse_args(argv)
    deadline = started + args.deadline_s
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda but torch sees no CUDA device (on a CPU: --device cpu --no-compile, small shapes)")
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    for name in names:
        preset_named(name)  # unknown names fail before any work
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "presets": [],
        "skipped": [],
        "goal_mfu": args.goal_mfu,
        "met": False,
    }
    for name in names:
        left = deadline - time.monotonic()
        if left < args.min_preset_s and result["presets"]:  # the first preset always runs
            result["skipped"].append({"preset": name, "reason": f"deadline: {left:.0f} s left of {args.deadline_s}"})
            continue
        try:
            result["presets"].append(run_preset(name, args, device, deadline))
        except Exception as error:  # an out-of-memory or compile failure is a result, not the end of the run
            result["presets"].append({"preset": name, "error": f"{type(error).__name__}: {str(error)[:500]}"})
        gc.collect()
        if cuda:
            torch._dynamo.reset()  # the next preset compiles its own graphs
            torch.cuda.empty_cache()
        print(f"[{time.monotonic() - started:.0f} s] {name} done", flush=True)
    ran = result["presets"]
    result["met"] = bool(
        ran
        and not result["skipped"]
        and all("error" not in r and r["loss_ok"] and r["mfu"] is not None and r["mfu"] >= args.goal_mfu for r in ran)
    )
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    return result


if __name__ == "__main__":
    main()
