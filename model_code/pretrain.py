"""Pretrain a stock HF causal LM (Llama, or Mixtral for an MoE preset) from token shards.

    accelerate launch -m model_code.pretrain --config run.json                               # one process
    accelerate launch --multi_gpu --num_processes 2 -m model_code.pretrain --config run.json  # 2-process DDP
    python -m model_code.pretrain --config run.json                                          # one process, no launcher

On a machine without a GPU the DDP command runs 2 CPU processes over gloo (accelerate 1.15's `--cpu
--num_processes 2` starts one process unless it is given an mpirun hostfile). run.json holds PretrainConfig
fields, e.g. {"shards_dir": "...", "tokenizer_dir": "...", "output_dir": "...", "preset": "tiny", "max_steps": 200}.
Rerunning the same command resumes from the newest valid checkpoint.
From Python: `stats = train(PretrainConfig(...), on_metrics=callback)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data_code.files import read_jsonl
from data_code.shards.layout import INDEX_FILE, read_json
from data_code.tokenizer.fingerprint import tokenizer_fingerprint
from model_code.checkpoint import load_latest_checkpoint, save_checkpoint, warm_start
from model_code.config import PretrainConfig
from model_code.data import ShardReader, TrainStream, rows_read
from model_code.distill import load_teacher
from model_code.metrics import (
    MetricsLog,
    bits_per_byte,
    model_flops_utilization,
    peak_flops,
    token_byte_lengths,
)
from model_code.model import build_model, count_parameters, flops_per_token
from model_code.optim import learning_rate_at, make_optimizer, set_learning_rate
from model_code.outputs import (
    DATA_ORDER_FILE,
    LOSS_CURVE_FILE,
    METRICS_FILE,
    MODEL_DIR,
    data_order,
    plot_loss_curve,
    save_hf_model,
    write_json,
    write_reading_record,
)
from model_code.presets import ModelPreset
from model_code.steps import train_step, validation_sums

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """What a run derives from its config and inputs before the first step."""

    preset: ModelPreset
    seq_len: int  # tokens per row fed to the model (from the shards)
    pad_id: int
    eos_id: int
    fingerprint: str  # tokenizer fingerprint the shards must carry
    shard_files: list[str]  # train shard file names by file number
    micro_batch_rows: int  # rows per process per micro-batch
    accumulation_steps: int  # micro-batches per update per process
    tokens_per_update: int  # over all processes


def train(config: PretrainConfig, on_metrics=None) -> dict:
    """Pretrain per `config`, resuming from its output_dir's newest valid checkpoint; return the run's stats.

    Stats: steps, tokens_seen, parameters, final_loss, val_loss, val_bpb, tokens_per_s (training only: validation
    and checkpointing excluded), mfu (None on CPU), train_s, elapsed_s, resumed_from_step, skipped_checkpoints,
    accumulation_steps, processes, device, mixed_precision, model_dir, metrics_path.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    started = time.perf_counter()
    mixed_precision = config.mixed_precision
    if mixed_precision == "auto":
        mixed_precision = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    setup = _setup(config, accelerator.num_processes)
    set_seed(config.seed)
    model = build_model(setup.preset, eos_id=setup.eos_id, pad_id=setup.pad_id)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = make_optimizer(
        model, learning_rate=config.learning_rate, weight_decay=config.weight_decay, betas=(config.beta1, config.beta2)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    meta, skipped = load_latest_checkpoint(accelerator, output_dir) if config.resume else (None, [])
    start_step = meta["step"] if meta else 0
    if meta:
        _check_same_run(meta["config"], config)
    # A continued run starts from its parent's weights (and optimizer state); a resumed one from its own checkpoint.
    warm = meta.get("warm_start") if meta else None
    if meta is None and config.init_from:
        warm = warm_start(accelerator, model, optimizer, config.init_from)
    metrics = MetricsLog(output_dir, on_metrics, enabled=accelerator.is_main_process)
    if accelerator.is_main_process:
        _truncate_metrics(output_dir / METRICS_FILE, start_step)
    if config.compile:
        model = torch.compile(model)
    teacher = None
    if config.teacher_dir:
        teacher = load_teacher(config.teacher_dir, accelerator.device, temperature=config.distill_temperature,
                               ce_weight=config.distill_ce_weight)  # fmt: skip
    # A continued run's budget in rows: replayed rows fill what its new rows leave of it (model_code/data.py).
    budget_rows = config.max_steps * setup.micro_batch_rows * setup.accumulation_steps * accelerator.num_processes
    stream = TrainStream(
        config.shards_dir,
        expected_fingerprint=setup.fingerprint,
        seed=config.seed,
        rows=setup.micro_batch_rows * accelerator.num_processes,
        position=tuple(meta["data_position"]) if meta else None,
        verify_sha256=config.verify_sha256,
        days=tuple(config.train_days),
        replay_fraction=config.replay_fraction,
        fill_rows=budget_rows,
    )
    start_position = stream.position
    loop = _Loop(config, setup, accelerator, model, optimizer, stream, metrics)
    loop.warm_start, loop.teacher = warm, teacher
    loop.tokens_seen = meta["tokens_seen"] if meta else 0
    loop.run(start_step)
    model_dir = output_dir / MODEL_DIR
    if accelerator.is_main_process:
        save_hf_model(accelerator.unwrap_model(model), config.tokenizer_dir, model_dir)
        plot_loss_curve(
            read_jsonl(output_dir / METRICS_FILE, missing_ok=True),
            output_dir / LOSS_CURVE_FILE,
            f"{setup.preset.name}: {count_parameters(model):,} parameters",
            "T^2 KL(teacher || student), nats / token (validation: cross-entropy)"
            if config.teacher_dir
            else "loss (nats / token)",
        )
        orders = stream.orders | _earlier_orders(config, setup, stream)
        order = data_order(
            setup.shard_files,
            orders,
            _position_record(config, (0, orders[0][0], 0)),
            _position_record(config, stream.position),
            loop.tokens_seen,
        )
        read = rows_read(
            config.shards_dir,
            expected_fingerprint=setup.fingerprint,
            seed=config.seed,
            end=stream.position,
            days=tuple(config.train_days),
            replay_fraction=config.replay_fraction,
            fill_rows=budget_rows,
        )
        nights = write_reading_record(config.shards_dir, read, tuple(config.train_days), output_dir)
        record = {**order, "resumed_from": _position_record(config, start_position), "nights": nights}
        write_json(output_dir / DATA_ORDER_FILE, record)
    accelerator.wait_for_everyone()
    # A run resumed at its last step logs nothing new: its last record is the one its earlier invocation logged.
    last = loop.last_record or (read_jsonl(output_dir / METRICS_FILE, missing_ok=True) or [{}])[-1]
    return {
        "steps": loop.step,
        "tokens_seen": loop.tokens_seen,
        "parameters": count_parameters(model),
        "final_loss": last.get("loss"),
        "val_loss": last.get("val_loss"),
        "val_bpb": last.get("val_bpb"),
        "tokens_per_s": round(loop.train_tokens / loop.train_s, 1) if loop.train_s else None,
        "mfu": last.get("mfu"),
        "train_s": round(loop.train_s, 3),
        "elapsed_s": round(time.perf_counter() - started, 3),
        "resumed_from_step": start_step,
        "warm_start": warm,
        "skipped_checkpoints": skipped,
        "accumulation_steps": setup.accumulation_steps,
        "processes": accelerator.num_processes,
        "cpu_threads": torch.get_num_threads(),  # per process (the launcher shares the cores out)
        "device": str(accelerator.device),
        "mixed_precision": mixed_precision,
        "model_dir": str(model_dir),
        "metrics_path": str(output_dir / METRICS_FILE),
    }


class _Loop:
    """The update loop: steps, and every N steps a metrics record, a validation pass, a checkpoint."""

    def __init__(self, config, setup, accelerator, model, optimizer, stream, metrics):
        self.config, self.setup, self.accelerator = config, setup, accelerator
        self.model, self.optimizer, self.stream, self.metrics = model, optimizer, stream, metrics
        self.step = self.tokens_seen = self.train_tokens = 0
        self.warm_start: dict | None = None
        self.teacher = None  # model_code.distill.Teacher of a distillation run
        self.train_s = 0.0
        self.last_record: dict = {}
        self.flops_per_token = flops_per_token(setup.preset, setup.seq_len)
        self.peak = peak_flops(accelerator.device)
        self.validation = _validation_batches(config, setup, accelerator.num_processes)
        lengths = token_byte_lengths(config.tokenizer_dir)
        self.token_bytes = torch.from_numpy(lengths).to(accelerator.device)

    def run(self, start_step: int) -> None:
        config, rank, rows = self.config, self.accelerator.process_index, self.setup.micro_batch_rows
        self.step = start_step
        interval_loss, interval_steps = torch.zeros((), device=self.accelerator.device), 0
        interval_start, self.interval_s = None, 0.0  # interval_s: training time of the interval before a pause
        while self.step < config.max_steps:
            interval_start = interval_start or time.perf_counter()
            micro_batches = [
                self.stream.next_rows()[rank * rows : (rank + 1) * rows] for _ in range(self.setup.accumulation_steps)
            ]
            learning_rate = learning_rate_at(
                self.step,
                peak=config.peak_learning_rate,
                warmup_steps=config.warmup_steps,
                total_steps=config.max_steps,
                min_ratio=config.min_lr_ratio,
                schedule=config.schedule,
                decay_fraction=config.decay_fraction,
            )
            set_learning_rate(self.optimizer, learning_rate)
            loss, grad_norm = train_step(
                self.accelerator,
                self.model,
                self.optimizer,
                micro_batches,
                pad_id=self.setup.pad_id,
                grad_clip=config.grad_clip,
                teacher=self.teacher,
            )
            self.step += 1
            self.tokens_seen += self.setup.tokens_per_update
            interval_loss += loss
            interval_steps += 1
            record = {}
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                mean_loss = self.accelerator.reduce(interval_loss / interval_steps, reduction="mean").item()
                elapsed = self.interval_s + time.perf_counter() - interval_start
                record |= self._train_record(mean_loss, learning_rate, grad_norm, interval_steps, elapsed)
                interval_loss.zero_()
                interval_steps, interval_start, self.interval_s = 0, None, 0.0
            if (config.eval_every and self.step % config.eval_every == 0) or self.step == config.max_steps:
                self._close_interval(interval_start)
                record |= self._validation_record()
                interval_start = None
            if record:
                self.last_record = {"step": self.step, "tokens_seen": self.tokens_seen, **record}
                self.metrics.write(self.last_record)
            if (config.checkpoint_every and self.step % config.checkpoint_every == 0) or self.step == config.max_steps:
                self._close_interval(interval_start)
                self._checkpoint()
                interval_start = None

    def _close_interval(self, interval_start: float | None) -> None:
        """Pause the interval's clock: validation and checkpoints are not training time."""
        if interval_start is not None:
            self.interval_s += time.perf_counter() - interval_start

    def _train_record(self, loss: float, learning_rate: float, grad_norm, steps: int, elapsed: float) -> dict:
        tokens = steps * self.setup.tokens_per_update
        self.train_s += elapsed
        self.train_tokens += tokens
        tokens_per_s = tokens / elapsed if elapsed > 0 else 0.0
        mfu = model_flops_utilization(tokens_per_s, self.flops_per_token, self.peak, self.accelerator.num_processes)
        return {
            "loss": loss,
            "lr": learning_rate,
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "tokens_per_s": round(tokens_per_s, 1),
            "mfu": mfu,
        }

    def _validation_record(self) -> dict:
        if not self.validation:
            return {}
        # The unwrapped model: a DDP forward could start collectives that processes with fewer rows never join.
        model = self.accelerator.unwrap_model(self.model)
        sums = validation_sums(
            self.accelerator, model, self.validation, pad_id=self.setup.pad_id, token_bytes=self.token_bytes
        )
        return {
            "val_loss": sums["loss_sum"] / max(1, sums["targets"]),
            "val_bpb": bits_per_byte(sums["byte_loss_sum"], sums["bytes"]),
        }

    def _checkpoint(self) -> None:
        epoch, shard, offset = self.stream.position
        meta = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "data_position": [epoch, shard, offset],
            "processes": self.accelerator.num_processes,
            "config": self.config.to_dict(),
            "warm_start": self.warm_start,  # a resumed continued run reports the parent it started from
        }
        save_checkpoint(self.accelerator, self.config.output_dir, self.step, meta, keep=self.config.keep_checkpoints)


def _setup(config: PretrainConfig, processes: int) -> Setup:
    """Check the inputs against each other (tokenizer, shards, preset, batch sizes) and derive the run's shape."""
    index = read_json(config.shards_dir, INDEX_FILE)
    fingerprint = tokenizer_fingerprint(config.tokenizer_dir)
    ShardReader(config.shards_dir, "train", expected_fingerprint=fingerprint)  # refuses another tokenizer's shards
    vocab_size = len(token_byte_lengths(config.tokenizer_dir))
    if index["vocab_size"] > vocab_size:
        raise ValueError(
            f"shards in {config.shards_dir} have vocab_size {index['vocab_size']}, more than the "
            f"tokenizer in {config.tokenizer_dir} ({vocab_size})"
        )
    preset = config.model_preset(vocab_size)
    if config.teacher_dir:
        _check_teacher(config, fingerprint, vocab_size)
    seq_len = index["seq_len"]
    if seq_len > preset.seq_len:
        raise ValueError(
            f"the shards' seq_len ({seq_len}, {config.shards_dir}) is longer than the model's "
            f"max positions (seq_len {preset.seq_len} of preset {preset.name!r}): rebuild the shards "
            "with a shorter seq_len or use a preset with a longer context"
        )
    micro_tokens = config.micro_batch_size * seq_len * processes
    if config.tokens_per_step % micro_tokens:
        raise ValueError(
            f"tokens_per_step ({config.tokens_per_step}) must be a multiple of micro_batch_size x "
            f"seq_len x processes = {config.micro_batch_size} x {seq_len} x {processes}"
        )
    accumulation = max(1, config.tokens_per_step // micro_tokens)
    return Setup(
        preset=preset,
        seq_len=seq_len,
        pad_id=index["pad_id"],
        eos_id=index["eos_id"],
        fingerprint=fingerprint,
        shard_files=[e["file"] for e in index["splits"]["train"]],
        micro_batch_rows=config.micro_batch_size,
        accumulation_steps=accumulation,
        tokens_per_update=micro_tokens * accumulation,
    )


def _check_teacher(config: PretrainConfig, fingerprint: str, vocab_size: int) -> None:
    """A teacher must have been trained with the student's tokenizer: same fingerprint, same vocabulary."""
    teacher = Path(config.teacher_dir)
    if not (teacher / "config.json").is_file():
        raise FileNotFoundError(f"teacher_dir {teacher} holds no HF model (config.json)")
    theirs = tokenizer_fingerprint(teacher)
    if theirs != fingerprint:
        raise ValueError(
            f"teacher_dir {teacher} has tokenizer fingerprint {theirs}, the student's tokenizer "
            f"({config.tokenizer_dir}) has {fingerprint}: a drafter must share its teacher's tokenizer"
        )
    teacher_vocab = json.loads((teacher / "config.json").read_text())["vocab_size"]
    if teacher_vocab != vocab_size:
        raise ValueError(f"teacher_dir {teacher} has a vocabulary of {teacher_vocab} tokens, the student {vocab_size}")


def _validation_batches(config: PretrainConfig, setup: Setup, processes: int) -> list[np.ndarray]:
    """This process's micro-batches of the validation rows: the first eval_batches x micro_batch_size rows of the
    split (the same rows at every pass and for any number of processes), dealt out round-robin."""
    index = read_json(config.shards_dir, INDEX_FILE)
    if "validation" not in index["splits"]:
        return []
    rows = setup.micro_batch_rows
    reader = ShardReader(
        config.shards_dir,
        "validation",
        expected_fingerprint=setup.fingerprint,
        seed=config.seed,
        batch_size=rows,
        drop_last=False,
    )
    batches = [np.array(batch) for _, batch in zip(range(config.eval_batches), reader, strict=False)]
    if sum(len(batch) for batch in batches) < processes:
        return []  # every process needs a row; all decide alike, so none enters the collective reduce alone
    mine = np.concatenate(batches)[_process_index() :: processes]  # (rows of this process, T + 1)
    return [mine[start : start + rows] for start in range(0, len(mine), rows)]


def _process_index() -> int:
    from accelerate import PartialState

    return PartialState().process_index


def _check_same_run(saved: dict, config: PretrainConfig) -> None:
    """A checkpoint is resumed only into the same model and data (speed-only fields and max_steps may change)."""
    import dataclasses

    fields = [f.name for f in dataclasses.fields(config) if f.metadata.get("versioned", True)]
    changeable = {"max_steps", "output_dir", "shards_dir", "tokenizer_dir", "init_from"}  # directories may move
    current = config.to_dict()
    # A field added after the checkpoint was written reads as its default (the run was made without it).
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    differ = sorted(
        name for name in fields if name not in changeable and saved.get(name, defaults.get(name)) != current[name]
    )
    if differ:
        raise ValueError(
            f"the checkpoint in {config.output_dir} was made with other {differ}: use another "
            "output_dir, or resume=False to start over"
        )


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (written by a run that died after its last checkpoint; they will be redone)."""
    kept = [r for r in read_jsonl(path, missing_ok=True) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def _earlier_orders(config: PretrainConfig, setup: Setup, stream: TrainStream) -> dict[int, list[int]]:
    """Shard orders of epochs read before this invocation's first (a resumed run did not open them)."""
    first = min(stream.orders)
    return {
        e: [int(n) for n in np.random.default_rng(config.seed + e).permutation(len(setup.shard_files))]
        for e in range(first)
    }


def _position_record(config: PretrainConfig, position: tuple[int, int, int]) -> dict:
    epoch, shard, offset = position
    return {"epoch": epoch, "seed": config.seed, "shard": shard, "offset": offset}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file of PretrainConfig fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats = train(PretrainConfig.from_json(args.config), on_metrics=lambda record: log.info("%s", record))
    log.info("done: %s", json.dumps(stats, default=str))
    return stats


if __name__ == "__main__":
    main()
