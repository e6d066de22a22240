"""Decode speed of llama.cpp on lmforge's GGUF files (Q8_0, Q4_0) against transformers fp32 on the CPU, one run.

    python -m bench.serve --quick --json /tmp/serve_bench.json
    python -m bench.serve --model .lmforge/lake/base_model/<version>/model --json /tmp/serve_bench.json

One model: the `small` preset trained briefly from scratch here on standard-library docstring prose (an 8k byte-
level BPE trained here too), or the HF directory given with --model. The same prompts (real text from the
validation split) go to transformers `generate()` in fp32 and to llama.cpp on the Q8_0 and Q4_0 files written by
model_code.export.gguf; every engine decodes greedily, never stopping early, with the same thread count. The
engines take turns on each prompt and the medians are reported, so that other load on a shared machine falls on all
of them alike (llama.cpp's spinning threads suffer more from it: expect noise when cores are busy). Time to first
token (TTFT) covers the prompt pass and the first sampled token; decode tokens/s counts the tokens after the first.
The Q8_0 and Q4_0 perplexity deltas are measured against the fp32 parent on held-out tokens of the same real text.
The bandwidth limit is model bytes read per decoded token against numpy's measured copy bandwidth (read + write,
one thread); a fraction above 1 means the weights sit in the CPU caches, not in DRAM.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from data_code.document import DOCUMENTS_FILE

SEQ_LEN = 256  # shard rows, quality windows
PROMPT_TOKENS = 64


def build_model(root: Path, steps: int, preset: str = "small") -> tuple[Path, Path]:
    """(HF model dir, token shards) of `preset` trained `steps` updates on the docstring corpus."""
    from bench.corpus import corpus_texts, write_corpus
    from data_code.tokenizer import TokenizerConfig, train_tokenizer
    from model_code.config import PretrainConfig
    from model_code.pretrain import train

    corpus = write_corpus(root / DOCUMENTS_FILE, corpus_texts())
    train_tokenizer(str(corpus), root / "tokenizer", TokenizerConfig(vocab_size=8192))
    shards = build_shards_for(corpus, root / "tokenizer", root / "shards")
    config = PretrainConfig(
        shards_dir=str(shards),
        tokenizer_dir=str(root / "tokenizer"),
        output_dir=str(root / "run"),
        preset=preset,
        micro_batch_size=4,
        max_steps=steps,
        warmup_steps=min(10, steps),
        eval_every=0,
        checkpoint_every=0,
        resume=False,
    )
    return Path(train(config)["model_dir"]), shards


def build_shards_for(corpus: Path, tokenizer_dir: Path, out_dir: Path) -> Path:
    from data_code.shards import ShardConfig, build_shards

    build_shards(
        str(corpus),
        str(tokenizer_dir),
        out_dir,
        ShardConfig(seq_len=SEQ_LEN, shard_tokens=100_000, validation_fraction=0.1),
    )
    return out_dir


def prompts_of(shards: Path, hf_dir: Path, count: int) -> list[list[int]]:
    """`count` prompts of PROMPT_TOKENS real validation tokens each."""
    from model_code.export.quality import held_out_prompts

    return held_out_prompts(shards, hf_dir, count, PROMPT_TOKENS, window=SEQ_LEN)


def hf_engine(hf_dir: Path):
    """(run, bytes_per_token) for transformers fp32 greedy generate(); run(ids, n) -> (TTFT s, decode tokens/s)."""
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
            model.generate(
                torch.tensor([ids]),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                use_cache=True,
                streamer=clock,
            )
        first, last = clock.times[1], clock.times[-1]  # times[0] is the prompt
        return first - started, (len(clock.times) - 2) / (last - first)

    return run, 4 * sum(p.numel() for p in model.parameters())


def llama_engine(gguf_path: Path, n_ctx: int, threads: int):
    """(run, bytes_per_token, llm) for llama.cpp greedy decoding of the GGUF file; run as for hf_engine."""
    from gguf import GGUFReader

    from model_code.export.llama import Llama

    llm = Llama(gguf_path, n_ctx=n_ctx, n_threads=threads, embeddings=False)

    def run(ids: list[int], tokens: int) -> tuple[float, float]:
        started = time.perf_counter()
        times = llm.streamed(ids, tokens)
        return times[0] - started, (len(times) - 1) / (times[-1] - times[0])

    return run, sum(int(tensor.n_bytes) for tensor in GGUFReader(gguf_path).tensors), llm


def interleaved(runs: dict, prompts: list[list[int]], new_tokens: int, rounds: int) -> dict:
    """name -> [(TTFT s, tokens/s)] per (round, prompt), the engines taking turns on each prompt, so that load
    from other processes on a shared machine falls on all of them alike."""
    for run in runs.values():
        run(prompts[0], 4)  # warm up kernels and allocators
    results = {name: [] for name in runs}
    for _ in range(rounds):
        for ids in prompts:
            for name, run in runs.items():
                results[name].append(run(ids, new_tokens))
    return results


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


def measure(hf_dir: Path, shards: Path, work: Path, quick: bool, threads: int) -> dict:
    from model_code.export.gguf import write_gguf
    from model_code.export.quality import quantization_quality

    new_tokens, prompt_count, rounds = (32, 2, 2) if quick else (128, 4, 3)
    prompts = prompts_of(shards, hf_dir, prompt_count)
    files = {q: Path(write_gguf(hf_dir, work / f"model-{q}.gguf", q)["path"]) for q in ("Q8_0", "Q4_0")}
    hf_run, hf_bytes = hf_engine(hf_dir)
    q8_run, q8_bytes, q8_llm = llama_engine(files["Q8_0"], PROMPT_TOKENS + new_tokens + 8, threads)
    q4_run, q4_bytes, q4_llm = llama_engine(files["Q4_0"], PROMPT_TOKENS + new_tokens + 8, threads)
    try:
        timings = interleaved({"hf_fp32": hf_run, "q8": q8_run, "q4": q4_run}, prompts, new_tokens, rounds)
    finally:
        q8_llm.close()
        q4_llm.close()
    bandwidth = copy_bandwidth()
    result = {
        "model": str(hf_dir),
        "parameters": hf_bytes // 4,
        "prompts": prompt_count,
        "rounds": rounds,
        "prompt_tokens": PROMPT_TOKENS,
        "new_tokens": new_tokens,
        "threads": threads,
        "copy_bandwidth_gb_s": bandwidth / 1e9,
    }
    for name, weights in (("hf_fp32", hf_bytes), ("q8", q8_bytes), ("q4", q4_bytes)):
        speed, ttft = (float(np.median([t[part] for t in timings[name]])) for part in (1, 0))
        result |= {
            f"{name}_tokens_per_s": speed,
            f"ttft_{name}_ms": 1000 * ttft,
            f"{name}_bytes_per_token": weights,
            f"{name}_bandwidth_limit_tokens_per_s": bandwidth / weights,
            f"{name}_bandwidth_fraction": speed * weights / bandwidth,
        }
    for name, q in (("q8", "Q8_0"), ("q4", "Q4_0")):
        # Median of the per-run ratios: each pair ran back to back, under the same outside load.
        ratios = [fast[1] / slow[1] for fast, slow in zip(timings[name], timings["hf_fp32"], strict=True)]
        quality = quantization_quality(hf_dir, files[q], shards, max_tokens=1024 if quick else 4096, seq_len=SEQ_LEN)
        result |= {
            f"{name}_speedup_vs_hf_fp32": float(np.median(ratios)),
            f"{name}_ppl_delta_pct": quality["ppl_delta_pct"],
            f"{name}_mean_kl": quality["mean_kl"],
            f"{name}_top1_agreement": quality["top1_agreement"],
            "parent_ppl": quality["parent_ppl"],
            "ppl_tokens": quality["tokens"],
        }
    result["goal_q8_speedup_5x"] = result["q8_speedup_vs_hf_fp32"] >= 5
    result["goal_q8_ppl_delta_1pct"] = abs(result["q8_ppl_delta_pct"]) <= 1
    return result


def print_table(result: dict) -> None:
    print(
        f"model {result['model']} ({result['parameters']:,} parameters); {result['rounds']} rounds x "
        f"{result['prompts']} prompts x {result['prompt_tokens']} tokens, {result['new_tokens']} new tokens, "
        f"greedy, {result['threads']} threads; medians"
    )
    header = f"{'engine':<22}{'decode tok/s':>13}{'TTFT ms':>9}{'x fp32':>8}{'MB/token':>10}{'of bw limit':>12}"
    print(header)
    for name, label in (("hf_fp32", "transformers fp32"), ("q8", "llama.cpp Q8_0"), ("q4", "llama.cpp Q4_0")):
        ratio = 1.0 if name == "hf_fp32" else result[f"{name}_speedup_vs_hf_fp32"]
        megabytes, fraction = result[f"{name}_bytes_per_token"] / 1e6, result[f"{name}_bandwidth_fraction"]
        print(
            f"{label:<22}{result[f'{name}_tokens_per_s']:>13,.1f}{result[f'ttft_{name}_ms']:>9.1f}{ratio:>8.2f}"
            f"{megabytes:>10.2f}{fraction:>12.2f}"
        )
    print(f"copy bandwidth (numpy, 1 thread): {result['copy_bandwidth_gb_s']:.1f} GB/s")
    print(
        f"perplexity on {result['ppl_tokens']} held-out tokens: fp32 {result['parent_ppl']:.2f}, "
        f"Q8_0 {result['q8_ppl_delta_pct']:+.3f}% (KL {result['q8_mean_kl']:.2e}), "
        f"Q4_0 {result['q4_ppl_delta_pct']:+.3f}% (KL {result['q4_mean_kl']:.2e})"
    )
    print(
        f"goals: Q8_0 >= 5x fp32: {result['goal_q8_speedup_5x']}; |Q8_0 ppl delta| <= 1%: "
        f"{result['goal_q8_ppl_delta_1pct']}"
    )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, prompts and tokens (~2 min)")
    parser.add_argument("--model", type=Path, help="an HF Llama directory to measure instead of training one")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both engines; 0: every core")
    args = parser.parse_args()
    import torch

    from model_code.export.llama import default_threads

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)  # the same thread count for transformers and llama.cpp
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model:
            from bench.corpus import corpus_texts, write_corpus

            hf_dir = args.model
            shards = build_shards_for(write_corpus(work / DOCUMENTS_FILE, corpus_texts()), hf_dir, work / "shards")
        else:
            hf_dir, shards = build_model(work, steps=8 if args.quick else 150)
        result = measure(hf_dir, shards, work, args.quick, threads)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
