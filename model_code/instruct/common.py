"""What SFT and DPO share: TRL arguments that are safe on a CPU, the LoRA config, the metrics callback, one LoRA
fit from trainer to merged model (`fit_lora`), and the finished run's files (adapter/, model/, metrics.jsonl,
loss_curve.png).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig
from transformers import TrainerCallback

from model_code.outputs import LOSS_CURVE_FILE, METRICS_FILE, MODEL_DIR, plot_loss_curve

ADAPTER_DIR = "adapter"
WORK_DIR = "_trainer"  # the trainer's scratch output_dir inside out_dir, removed when training ends
# The tokenizer's files a model directory carries; copied byte for byte so the chat template hash is unchanged.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "fingerprint.json",
)
SUMMARY_KEYS = ("train_runtime", "train_loss", "train_samples_per_second", "train_steps_per_second", "total_flos")


def device_arguments() -> dict:
    """bf16 only on a CUDA device that has it; activation (gradient) checkpointing off: TRL turns both on by default.

    transformers 5 reads `activation_checkpointing` first; `gradient_checkpointing` is its deprecated alias.
    """
    cuda = torch.cuda.is_available()
    return {"use_cpu": not cuda, "bf16": cuda and torch.cuda.is_bf16_supported(), "activation_checkpointing": False}


def trainer_arguments(config, work_dir: Path) -> dict:
    """Keyword arguments for SFTConfig / DPOConfig from our config: no checkpoints, no reporters, no progress bars."""
    return {
        "output_dir": str(work_dir),
        "max_steps": config.max_steps,
        "num_train_epochs": config.num_epochs,
        "per_device_train_batch_size": config.per_device_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "logging_steps": config.logging_steps,
        "max_length": config.max_length,
        "seed": config.seed,
        "data_seed": config.seed,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        **device_arguments(),
    }


def without_console_logs(trainer):
    """The trainer without the callback that prints every log dict to stdout: MetricsCallback already hands each
    record to on_log (the Dagster log) and metrics.jsonl, so the console would show each line twice."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def lora_config(config) -> LoraConfig:
    modules = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=modules,
        task_type="CAUSAL_LM",
    )


class MetricsCallback(TrainerCallback):
    """Appends one JSON record per logging step to metrics.jsonl and hands it to `on_log`; keeps the summary."""

    def __init__(self, out_dir: Path, on_log: Callable[[dict], None] | None):
        self.path, self.listener = Path(out_dir) / METRICS_FILE, on_log
        self.records: list[dict] = []
        self.summary: dict = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if any(key in logs for key in SUMMARY_KEYS):  # the end-of-training summary, not a step
            self.summary.update({key: value for key, value in logs.items() if isinstance(value, int | float)})
            return
        record = {"step": state.global_step, **{key: _number(value) for key, value in logs.items()}}
        record["tokens_seen"] = record.get("num_tokens")  # the loss curve's x axis
        self.records.append(record)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.listener is not None:
            self.listener(dict(record))


def _number(value):
    """JSON-safe metric value: NaN/inf become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def copy_tokenizer_files(source_dir: str | Path, out_dir: Path) -> None:
    """The tokenizer files of `source_dir` (those it has) copied byte for byte into `out_dir`."""
    for name in TOKENIZER_FILES:
        if (Path(source_dir) / name).is_file():
            (out_dir / name).write_bytes((Path(source_dir) / name).read_bytes())


def save_merged(peft_model, tokenizer_dir: str | Path, out_dir: Path) -> torch.nn.Module:
    """Merge the LoRA weights into the base, save it in HF format with the tokenizer files; return the merged model.

    The adapter is unloaded from `peft_model` by the merge: save the adapter first.
    """
    merged = peft_model.merge_and_unload()
    merged.config.use_cache = True  # generation wants the KV cache
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    copy_tokenizer_files(tokenizer_dir, out_dir)
    return merged


def write_loss_curve(
    records: list[dict], out_dir: Path, title: str, ylabel: str = "loss (nats / token)"
) -> Path | None:
    """loss_curve.png of the logged train loss, or None when nothing was logged."""
    if not any(record.get("loss") is not None and record.get("tokens_seen") is not None for record in records):
        return None
    return plot_loss_curve(records, out_dir / LOSS_CURVE_FILE, title, ylabel)


def parameter_counts(model) -> dict:
    """trainable_parameters (the LoRA weights) and total_parameters of a PEFT model."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": trainable, "total_parameters": sum(p.numel() for p in model.parameters())}


@dataclass
class LoraFit:
    """A finished LoRA run: the merged model (saved under out_dir/model/), its logs, and the run's summary."""

    merged: torch.nn.Module
    metrics: MetricsCallback
    summary: dict  # loss_summary's keys and parameter_counts'


def fit_lora(
    trainer_class,
    arguments,
    model,
    dataset,
    tokenizer,
    config,
    model_dir: str | Path,
    out_dir: Path,
    on_log: Callable[[dict], None] | None,
) -> LoraFit:
    """Train a LoRA adapter on `model` with a TRL trainer, then write out_dir/adapter/ and the merged out_dir/model/
    (with the tokenizer files of `model_dir`); the trainer's scratch directory (`arguments.output_dir`) is removed.
    `arguments`: its SFTConfig / DPOConfig, built on trainer_arguments(config, out_dir / WORK_DIR)."""
    metrics = MetricsCallback(out_dir, on_log)
    trainer = without_console_logs(
        trainer_class(
            model=model,
            args=arguments,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(config),
            callbacks=[metrics],
        )
    )
    started = time.perf_counter()
    trainer.train()
    runtime = time.perf_counter() - started
    counts = parameter_counts(trainer.model)
    trainer.model.save_pretrained(out_dir / ADAPTER_DIR)
    merged = save_merged(trainer.model, model_dir, out_dir / MODEL_DIR)
    shutil.rmtree(arguments.output_dir, ignore_errors=True)
    return LoraFit(merged, metrics, {**loss_summary(metrics, trainer.state.global_step, runtime), **counts})


def loss_summary(metrics: MetricsCallback, steps: int, runtime_s: float) -> dict:
    """steps, first and last logged train loss, the run's mean train loss, runtime_s."""
    losses = [record["loss"] for record in metrics.records if record.get("loss") is not None]
    return {
        "steps": steps,
        "train_loss_first": losses[0] if losses else None,
        "train_loss_last": losses[-1] if losses else None,
        "train_loss": metrics.summary.get("train_loss"),
        "runtime_s": round(runtime_s, 3),
    }


def checked_rows(rows: list[dict], name: str, check: Callable[[dict], dict], allow_empty: bool = False) -> list[dict]:
    """Each row through `check`; ValueError naming `name` and the index of the first bad row (or an empty list)."""
    if not rows and not allow_empty:
        raise ValueError(f"{name} is empty")
    checked = []
    for index, row in enumerate(rows):
        try:
            checked.append(check(row))
        except ValueError as error:
            raise ValueError(f"{name}[{index}]: {error}") from None
    return checked
