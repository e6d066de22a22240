"""The whole evaluation of one tuned model, as the gate compares it: one call, one evaluation.json.

from model_code.evaluate.suite import EvaluationConfig, evaluate
metrics = evaluate(model_dir, shards_dir, "lake/training_corpus/<v>/documents.parquet", out_dir,
                   EvaluationConfig(), gguf=quantized_dir / "model-Q8_0.gguf", quantization=quantized_stats)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TASKS_DIR = "tasks"
EVALUATION_FILE = "evaluation.json"
SAMPLE_PROMPTS = (
    "What is a Python module?",
    "Explain what a list comprehension does.",
    "Write one sentence about exceptions.",
)
QUANT_KEYS = ("bytes", "ppl_delta_pct", "mean_kl", "top1_agreement")  # per GGUF, carried into the evaluation


@dataclass(frozen=True)
class EvaluationConfig:
    """What model_evaluation measures. Invalid values raise ValueError naming the field."""

    eval_tokens: int = 16384  # validation tokens for perplexity / bits per byte
    task_examples: int = 200  # examples per derived lm-eval task at most
    task_limit: int = 100  # examples per task lm-eval scores (0 = all)
    max_new_tokens: int = 32  # tokens per generation sample and latency prompt
    latency_qtype: str = "Q8_0"  # GGUF whose serving latency is measured

    def __post_init__(self):
        for name in ("eval_tokens", "task_examples", "max_new_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.task_limit, int) or self.task_limit < 0:
            raise ValueError(f"task_limit must be an integer >= 0 (0 = all), got {self.task_limit!r}")


def measure_model(model_dir: Path, shards_dir: Path, task_dir: Path, config: EvaluationConfig, gguf: Path | None):
    """Every measurement of one HF model (and its GGUF, when given) on fixed validation data."""
    from model_code.evaluate.generation import generation_samples, serving_latency
    from model_code.evaluate.perplexity import perplexity_by_night, validation_perplexity
    from model_code.evaluate.tasks import run_lm_eval

    validation = validation_perplexity(model_dir, shards_dir, max_tokens=config.eval_tokens)
    metrics = {
        "perplexity": validation["perplexity"],
        "perplexity_by_night": perplexity_by_night(model_dir, shards_dir, max_tokens=config.eval_tokens),
        "bits_per_byte": validation["bits_per_byte"],
        "validation_tokens": validation["tokens"],
        "tasks": run_lm_eval(model_dir, task_dir, limit=config.task_limit or None),
        "samples": generation_samples(model_dir, list(SAMPLE_PROMPTS), config.max_new_tokens),
    }
    if gguf is not None:
        metrics["latency"] = serving_latency(gguf, list(SAMPLE_PROMPTS), config.max_new_tokens)
    return metrics


def evaluate(
    model_dir: Path,
    shards_dir: Path,
    corpus_documents: str,
    out_dir: Path,
    config: EvaluationConfig,
    *,
    gguf: Path | None,
    quantization: dict[str, dict],
    recorded: dict | None = None,
) -> dict:
    """Tasks derived from the validation split's documents, every measurement, and the quantization deltas
    (`quantization`: quantized_model's per-qtype stats), plus `recorded` (what the numbers were measured on, e.g.
    the shards version); written to out_dir/evaluation.json and returned."""
    from model_code.evaluate.tasks import TaskSetConfig, validation_doc_ids, write_eval_tasks

    tasks = write_eval_tasks(
        corpus_documents,
        out_dir / TASKS_DIR,
        TaskSetConfig(max_examples=config.task_examples),
        doc_ids=validation_doc_ids(shards_dir),
    )
    metrics = measure_model(model_dir, shards_dir, out_dir / TASKS_DIR, config, gguf)
    quant = quantization.get(config.latency_qtype) or next(iter(quantization.values()))
    metrics["quant_perplexity_delta_pct"] = quant["ppl_delta_pct"]
    metrics["quant_kl"] = quant["mean_kl"]
    metrics["quantization"] = {q: {k: row[k] for k in QUANT_KEYS} for q, row in quantization.items()}
    metrics["task_set"] = tasks
    metrics.update(recorded or {})
    (out_dir / EVALUATION_FILE).write_text(json.dumps(metrics, indent=2, default=str))
    return metrics
