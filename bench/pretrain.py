"""Tokens/s of lmforge's pretraining loop against a bare PyTorch loop, same model and batch, in one run (CPU).

    python -m bench.pretrain --quick --json /tmp/pretrain_bench.json

lmforge: the real `model_code.pretrain.train` on real token shards (stdlib docstring prose, a 1k tokenizer),
logging at its default interval; its tokens/s counts training time (data, steps, logging), not the validation
pass or checkpoints, which are separate work. Bare: the same preset built the same way, the same rows x seq_len
of random ids already in memory, AdamW, the same loss, nothing else. Same process, same torch threads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from data_code.document import DOCUMENTS_FILE
from model_code.config import PretrainConfig
from model_code.model import build_model
from model_code.optim import make_optimizer

SEQ_LEN, ROWS = 256, 8  # the tiny preset's context; rows per micro-batch


def build_inputs(root: Path) -> tuple[Path, Path]:
    """A tokenizer and token shards from the standard library's docstrings."""
    from bench.corpus import corpus_texts, write_corpus
    from data_code.shards import ShardConfig, build_shards
    from data_code.tokenizer import TokenizerConfig, train_tokenizer

    corpus = write_corpus(root / DOCUMENTS_FILE, corpus_texts())
    train_tokenizer(str(corpus), root / "tokenizer", TokenizerConfig(vocab_size=1024))
    build_shards(
        str(corpus), str(root / "tokenizer"), root / "shards", ShardConfig(seq_len=SEQ_LEN, shard_tokens=50_000)
    )
    return root / "tokenizer", root / "shards"


def lmforge_tokens_per_s(tokenizer_dir: Path, shards_dir: Path, out_dir: Path, steps: int) -> dict:
    from model_code.pretrain import train

    config = PretrainConfig(
        shards_dir=str(shards_dir),
        tokenizer_dir=str(tokenizer_dir),
        output_dir=str(out_dir),
        preset="tiny",
        micro_batch_size=ROWS,
        max_steps=steps,
        checkpoint_every=0,
        eval_every=0,
        resume=False,
    )
    return train(config)


def bare_tokens_per_s(vocab_size: int, eos_id: int, pad_id: int, steps: int) -> float:
    from model_code.presets import tiny

    torch.manual_seed(0)
    model = build_model(tiny().with_vocab(vocab_size), eos_id=eos_id, pad_id=pad_id)
    optimizer = make_optimizer(model, learning_rate=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    batch = torch.randint(0, vocab_size, (ROWS, SEQ_LEN + 1))
    inputs, targets = batch[:, :-1], batch[:, 1:]
    started = time.perf_counter()
    for _ in range(steps):
        logits = model(input_ids=inputs).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * ROWS * SEQ_LEN / (time.perf_counter() - started)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (CI smoke)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    steps = 40 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir, shards_dir = build_inputs(Path(tmp))
        index = json.loads((shards_dir / "index.json").read_text())
        bare_tokens_per_s(index["vocab_size"], index["eos_id"], index["pad_id"], 3)  # warm up the allocator
        bare = bare_tokens_per_s(index["vocab_size"], index["eos_id"], index["pad_id"], steps)
        stats = lmforge_tokens_per_s(tokenizer_dir, shards_dir, Path(tmp) / "run", steps)
    result = {
        "steps": steps,
        "rows": ROWS,
        "seq_len": SEQ_LEN,
        "threads": torch.get_num_threads(),
        "lmforge_tokens_per_s": stats["tokens_per_s"],
        "lmforge_end_to_end_tokens_per_s": round(stats["tokens_seen"] / stats["elapsed_s"], 1),
        "bare_tokens_per_s": round(bare, 1),
        "ratio": round(stats["tokens_per_s"] / bare, 3),
    }
    print(f"{'loop':<28}{'tokens/s':>12}")
    print(f"{'bare PyTorch':<28}{result['bare_tokens_per_s']:>12,.0f}")
    print(f"{'lmforge train()':<28}{result['lmforge_tokens_per_s']:>12,.0f}")
    print(f"{'lmforge train() end to end':<28}{result['lmforge_end_to_end_tokens_per_s']:>12,.0f}")
    print(f"ratio lmforge / bare: {result['ratio']:.3f} (goal >= 0.9)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
