"""Decode speed of llama.cpp on lmforge's GGUF files (Q8_0, Q4_0) against transformers fp32 on the CPU, one run.

    python -m bench.serve --quick --json /tmp/serve_bench.json
    python -m bench.serve --model .lmforge/lake/base_model/<version>/model --json /tmp/serve_bench.json

One model: the `small` preset trained briefly from scratch here on standard-library docstring prose (an 8k
byte-level BPE trained here too), or the HF directory given with --model. The same prompts (real text from the
validation split) go to transformers `generate()` in fp32 and to llama.cpp on the Q8_0 and Q4_0 files written by
model_code.export.gguf; every engine decodes greedily, never stopping early. Time to first token (TTFT) covers
the prompt pass and the first sampled token; decode tokens/s counts the tokens after the first. The Q8_0 and
Q4_0 perplexity deltas are measured against the fp32 parent on held-out tokens of the same real text. The
bandwidth limit is model bytes read per decoded token against numpy's measured copy bandwidth (read + write,
one thread); a fraction above 1 means the weights sit in the CPU caches, not in DRAM.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SEQ_LEN = 256  # shard rows, quality windows
PROMPT_TOKENS = 64


def build_model(root: Path, steps: int) -> tuple[Path, Path]:
    """(HF model dir, token shards) of the small preset trained `steps` updates on the docstring corpus."""
    from data_code.tokenizer import TokenizerConfig, train_tokenizer
    from model_code.config import PretrainConfig
    from model_code.pretrain import train
    from tests.tokenizer.corpus import corpus_texts, write_corpus

    corpus = write_corpus(root / "documents.parquet", corpus_texts())
    train_tokenizer(str(corpus), root / "tokenizer", TokenizerConfig(vocab_size=8192))
    shards = build_shards_for(corpus, root / "tokenizer", root / "shards")
    config = PretrainConfig(shards_dir=str(shards), tokenizer_dir=str(root / "tokenizer"),
                            output_dir=str(root / "run"), preset="small", micro_batch_size=4, max_steps=steps,
                            warmup_steps=min(10, steps), eval_every=0, checkpoint_every=0, resume=False)  # fmt: skip
    return Path(train(config)["model_dir"]), shards


def build_shards_for(corpus: Path, tokenizer_dir: Path, out_dir: Path) -> Path:
    from data_code.shards import ShardConfig, build_shards

    build_shards(str(corpus), str(tokenizer_dir), out_dir, ShardConfig(seq_len=SEQ_LEN, shard_tokens=100_000,
                                                                        validation_fraction=0.1))  # fmt: skip
    return out_dir


def prompts_of(shards: Path, hf_dir: Path, count: int) -> list[list[int]]:
    """`count` prompts of PROMPT_TOKENS real validation tokens each."""
    from data_code.tokenizer.fingerprint import tokenizer_fingerprint
    from model_code.export.quality import validation_windows

    windows = validation_windows(shards, count * SEQ_LEN, SEQ_LEN, tokenizer_fingerprint(hf_dir))
    return [window[:PROMPT_TOKENS].tolist() for window in windows[:count]]


def hf_speed(hf_dir: Path, prompts: list[list[int]], new_tokens: int) -> dict:
    """transformers fp32 greedy generate(): mean TTFT (ms) and decode tokens/s over the prompts."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):  # generate() calls put() with the prompt first, then once per new token
        def __init__(self):
            self.times: list[float] = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    model.generation_config.pad_token_id = model.config.pad_token_id

    def run(ids: list[int], tokens: int) -> tuple[float, float]:
        clock = Clock()
        started = time.perf_counter()
        with torch.no_grad():
            model.generate(torch.tensor([ids]), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                           use_cache=True, streamer=clock)  # fmt: skip
        first, last = clock.times[1], clock.times[-1]  # times[0] is the prompt
        return first - started, (len(clock.times) - 2) / (last - first)

    run(prompts[0], 4)  # warm up kernels and allocator
    results = [run(ids, new_tokens) for ids in prompts]
    return {"ttft_ms": 1000 * float(np.mean([r[0] for r in results])),
            "tokens_per_s": float(np.mean([r[1] for r in results])), "threads": torch.get_num_threads(),
            "bytes_per_token": 4 * sum(p.numel() for p in model.parameters())}  # fmt: skip


def llama_speed(gguf_path: Path, prompts: list[list[int]], new_tokens: int) -> dict:
    """llama.cpp greedy decoding of the GGUF file: mean TTFT (ms) and decode tokens/s over the prompts."""
    from gguf import GGUFReader

    from model_code.export.llama import default_threads, load_llama

    llm = load_llama(gguf_path, n_ctx=PROMPT_TOKENS + new_tokens + 8)

    def run(ids: list[int], tokens: int) -> tuple[float, float]:
        llm.reset()
        times = []
        started = time.perf_counter()
        for _ in zip(range(tokens), llm.generate(ids, temp=0.0, reset=True), strict=False):
            times.append(time.perf_counter())
        return times[0] - started, (len(times) - 1) / (times[-1] - times[0])

    try:
        run(prompts[0], 4)
        results = [run(ids, new_tokens) for ids in prompts]
    finally:
        llm.close()
    weights = sum(int(tensor.n_bytes) for tensor in GGUFReader(gguf_path).tensors)
    return {"ttft_ms": 1000 * float(np.mean([r[0] for r in results])),
            "tokens_per_s": float(np.mean([r[1] for r in results])), "threads": default_threads(),
            "bytes_per_token": weights}  # fmt: skip


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Best numpy copy bandwidth in bytes/s (bytes read + bytes written), one thread."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    np.copyto(target, source)  # fault the pages in
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(repeats))
    return 2 * source.nbytes / best


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(hf_dir: Path, shards: Path, work: Path, quick: bool) -> dict:
    from model_code.export.gguf import write_gguf
    from model_code.export.quality import quantization_quality

    new_tokens, prompt_count = (32, 2) if quick else (128, 4)
    prompts = prompts_of(shards, hf_dir, prompt_count)
    files = {q: Path(write_gguf(hf_dir, work / f"model-{q}.gguf", q)["path"]) for q in ("Q8_0", "Q4_0")}
    engines = {"hf_fp32": hf_speed(hf_dir, prompts, new_tokens)}
    engines |= {name: llama_speed(files[q], prompts, new_tokens) for name, q in (("q8", "Q8_0"), ("q4", "Q4_0"))}
    bandwidth = copy_bandwidth()
    result = {"model": str(hf_dir), "parameters": engines["hf_fp32"]["bytes_per_token"] // 4, "prompts": prompt_count,
              "prompt_tokens": PROMPT_TOKENS, "new_tokens": new_tokens,
              "copy_bandwidth_gb_s": bandwidth / 1e9}  # fmt: skip
    for name, stats in engines.items():
        speed, weights = stats["tokens_per_s"], stats["bytes_per_token"]
        result |= {f"{name}_tokens_per_s": speed, f"ttft_{name}_ms": stats["ttft_ms"],
                   f"{name}_threads": stats["threads"], f"{name}_bytes_per_token": weights,
                   f"{name}_bandwidth_limit_tokens_per_s": bandwidth / weights,
                   f"{name}_bandwidth_fraction": speed * weights / bandwidth}  # fmt: skip
    for name, q in (("q8", "Q8_0"), ("q4", "Q4_0")):
        quality = quantization_quality(hf_dir, files[q], shards, max_tokens=1024 if quick else 4096, seq_len=SEQ_LEN)
        result |= {f"{name}_speedup_vs_hf_fp32": result[f"{name}_tokens_per_s"] / result["hf_fp32_tokens_per_s"],
                   f"{name}_ppl_delta_pct": quality["ppl_delta_pct"], f"{name}_mean_kl": quality["mean_kl"],
                   f"{name}_top1_agreement": quality["top1_agreement"], "parent_ppl": quality["parent_ppl"],
                   "ppl_tokens": quality["tokens"]}  # fmt: skip
    result["goal_q8_speedup_5x"] = result["q8_speedup_vs_hf_fp32"] >= 5
    result["goal_q8_ppl_delta_1pct"] = abs(result["q8_ppl_delta_pct"]) <= 1
    return result


def print_table(result: dict) -> None:
    print(f"model {result['model']} ({result['parameters']:,} parameters); {result['prompts']} prompts x "
          f"{result['prompt_tokens']} tokens, {result['new_tokens']} new tokens, greedy")  # fmt: skip
    header = f"{'engine':<22}{'decode tok/s':>13}{'TTFT ms':>9}{'x fp32':>8}{'MB/token':>10}{'of bw limit':>12}"
    print(header)
    for name, label in (("hf_fp32", "transformers fp32"), ("q8", "llama.cpp Q8_0"), ("q4", "llama.cpp Q4_0")):
        ratio = 1.0 if name == "hf_fp32" else result[f"{name}_speedup_vs_hf_fp32"]
        megabytes, fraction = result[f"{name}_bytes_per_token"] / 1e6, result[f"{name}_bandwidth_fraction"]
        print(f"{label:<22}{result[f'{name}_tokens_per_s']:>13,.1f}{result[f'ttft_{name}_ms']:>9.1f}{ratio:>8.2f}"
              f"{megabytes:>10.2f}{fraction:>12.2f}")  # fmt: skip
    print(f"copy bandwidth (numpy, 1 thread): {result['copy_bandwidth_gb_s']:.1f} GB/s")
    print(f"perplexity on {result['ppl_tokens']} held-out tokens: fp32 {result['parent_ppl']:.2f}, "
          f"Q8_0 {result['q8_ppl_delta_pct']:+.3f}% (KL {result['q8_mean_kl']:.2e}), "
          f"Q4_0 {result['q4_ppl_delta_pct']:+.3f}% (KL {result['q4_mean_kl']:.2e})")  # fmt: skip
    print(f"goals: Q8_0 >= 5x fp32: {result['goal_q8_speedup_5x']}; |Q8_0 ppl delta| <= 1%: "
          f"{result['goal_q8_ppl_delta_1pct']}")  # fmt: skip


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, prompts and tokens (~2 min)")
    parser.add_argument("--model", type=Path, help="an HF Llama directory to measure instead of training one")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model:
            from tests.tokenizer.corpus import corpus_texts, write_corpus

            hf_dir = args.model
            shards = build_shards_for(
                write_corpus(work / "documents.parquet", corpus_texts()), hf_dir, work / "shards"
            )
        else:
            hf_dir, shards = build_model(work, steps=8 if args.quick else 150)
        result = measure(hf_dir, shards, work, args.quick)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
