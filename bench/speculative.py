"""Speculative decoding with a distilled drafter, against plain decoding and an undistilled drafter, one run.

    python -m bench.speculative [--quick] --json /tmp/speculative.json

The target: the `m30` preset (~28M parameters, 8k tokenizer, ~30 MB in Q8_0: past the CPU's private caches, so
decoding one stream reads weights from memory) trained here from scratch on standard-library docstring prose. Two
drafters of the same shape, a quarter of the target's parameters (model_code.distill.student_overrides): one
distilled from the target (T^2 KL on its logits, model_code.distill), one trained from scratch on the same tokens
for the same steps. Acceptance: the share of positions, along the target's greedy continuations of held-out
prompts (the validation split), where a drafter's greedy token is the target's. Speed: lmforge's server
(model_code.serve, llama-server, one slot) on the target's Q8_0 GGUF, without a drafter and with each drafter's
Q8_0 GGUF; the same prompts, greedy, up to a fixed number of new tokens (end of text ends an answer); decode
tokens/s as the server times it (predicted tokens over predicted time, prompt excluded). Outputs with and without a
drafter must be identical.

Goals: speedup (distilled drafter over none) >= 1.5; identical_outputs; acceptance_distilled > acceptance_undistilled.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from data_code.document import DOCUMENTS_FILE

SEQ_LEN = 256
PROMPT_TOKENS = 32


def train_models(root: Path, preset: str, steps: int, draft_steps: int, fraction: float) -> dict:
    """{target, distilled, undistilled: HF dirs, shards, train_s per model, overrides} trained on the docstrings."""
    from bench.corpus import corpus_texts, write_corpus
    from bench.serve import build_shards_for
    from data_code.tokenizer import TokenizerConfig, train_tokenizer
    from model_code.config import PretrainConfig
    from model_code.distill import preset_of, student_overrides
    from model_code.pretrain import train

    corpus = write_corpus(root / DOCUMENTS_FILE, corpus_texts())
    train_tokenizer(str(corpus), root / "tokenizer", TokenizerConfig(vocab_size=8192))
    shards = build_shards_for(corpus, root / "tokenizer", root / "shards")
    common = dict(shards_dir=str(shards), tokenizer_dir=str(root / "tokenizer"), micro_batch_size=8,
                  eval_every=0, checkpoint_every=0, resume=False, log_every=10)  # fmt: skip
    started = time.perf_counter()
    target = train(PretrainConfig(**common, output_dir=str(root / "target"), preset=preset, max_steps=steps,
                                  warmup_steps=min(20, steps)))  # fmt: skip
    timings = {"target_train_s": round(time.perf_counter() - started, 1)}
    target_dir = Path(target["model_dir"])
    overrides = student_overrides(preset_of(json.loads((target_dir / "config.json").read_text())), fraction)
    drafters = {}
    for name, extra in (("distilled", {"teacher_dir": str(target_dir)}), ("undistilled", {})):
        started = time.perf_counter()
        drafters[name] = train(PretrainConfig(**common, output_dir=str(root / name), preset=preset,
                                              model_overrides=overrides, max_steps=draft_steps,
                                              warmup_steps=min(20, draft_steps), seed=1, **extra))  # fmt: skip
        timings[f"{name}_train_s"] = round(time.perf_counter() - started, 1)
    return {
        "target": target_dir,
        "distilled": Path(drafters["distilled"]["model_dir"]),
        "undistilled": Path(drafters["undistilled"]["model_dir"]),
        "shards": shards,
        "parameters": {"target": target["parameters"], "drafter": drafters["distilled"]["parameters"]},
        "final_loss": {"target": target["final_loss"], **{n: d["final_loss"] for n, d in drafters.items()}},
        "overrides": overrides,
        **timings,
    }


def decode(gguf: Path, prompts: list[list[int]], new_tokens: int, threads: int, draft=None, draft_max=4) -> dict:
    """Greedy decoding of every prompt on a real server process: tokens, decode tokens/s, server draft counts."""
    import httpx

    from bench.serve_load import free_port
    from model_code.serve import serve, wait_until_ready

    port = free_port()
    process = serve(gguf, port=port, n_ctx=PROMPT_TOKENS + new_tokens + 16, n_threads=threads, parallel=1,
                    draft=draft, draft_max=draft_max)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    outputs, predicted_ms, predicted_n, drafted, accepted = [], 0.0, 0, 0, 0
    try:
        wait_until_ready(url, timeout=120, process=process)
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, timeout=300, limits=fresh) as client:
            # End of text stays allowed: llama-server's drafter does not see a request's ignore_eos, so with it the
            # drafter keeps proposing the end-of-text token the model may no longer pick (and every draft fails).
            body = {"n_predict": new_tokens, "temperature": 0, "return_tokens": True, "cache_prompt": False}
            client.post("/completion", json={**body, "prompt": prompts[0], "n_predict": 8})  # warm-up
            for ids in prompts:
                answer = client.post("/completion", json={**body, "prompt": ids}).json()
                timings = answer["timings"]
                outputs.append(answer["tokens"])
                predicted_ms += timings["predicted_ms"]
                predicted_n += timings["predicted_n"]
                drafted += timings.get("draft_n", 0)
                accepted += timings.get("draft_n_accepted", 0)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "outputs": outputs,
        "tokens_per_s": predicted_n / predicted_ms * 1000,
        "drafted": drafted,
        "draft_accepted": accepted,
        "server_acceptance": accepted / drafted if drafted else None,
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter training, fewer prompts")
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--preset", default="m30", help="the target's shape (default: memory-bound here)")
    parser.add_argument("--draft-fraction", type=float, default=0.25, help="drafter size / target size")
    parser.add_argument("--draft-max", type=int, nargs="+", default=[2, 4, 6], help="draft lengths to measure")
    args = parser.parse_args()
    from model_code.distill import greedy_acceptance
    from model_code.export.gguf import write_gguf
    from model_code.export.quality import held_out_prompts

    steps, draft_steps, prompt_count, new_tokens = (60, 60, 4, 64) if args.quick else (300, 300, 8, 128)
    work = Path(tempfile.mkdtemp(prefix="lmforge-speculative-"))
    models = train_models(work, args.preset, steps, draft_steps, args.draft_fraction)
    prompts = held_out_prompts(models["shards"], models["target"], prompt_count, PROMPT_TOKENS, window=SEQ_LEN)
    acceptance = {name: greedy_acceptance(models["target"], models[name], prompts, new_tokens=32)["acceptance"]
                  for name in ("distilled", "undistilled")}  # fmt: skip
    ggufs = {name: Path(write_gguf(models[name], work / f"{name}-Q8_0.gguf", "Q8_0")["path"])
             for name in ("target", "distilled", "undistilled")}  # fmt: skip
    plain = decode(ggufs["target"], prompts, new_tokens, args.threads)
    rows = {"none": {"tokens_per_s": plain["tokens_per_s"], "identical": True}}
    for name in ("distilled", "undistilled"):
        for draft_max in args.draft_max:
            run = decode(ggufs["target"], prompts, new_tokens, args.threads, draft=ggufs[name], draft_max=draft_max)
            rows[f"{name}@{draft_max}"] = {
                "tokens_per_s": run["tokens_per_s"],
                "speedup": run["tokens_per_s"] / plain["tokens_per_s"],
                "server_acceptance": run["server_acceptance"],
                "identical": run["outputs"] == plain["outputs"],
            }
    best = max((key for key in rows if key.startswith("distilled@")), key=lambda key: rows[key]["tokens_per_s"])
    result = {
        "target": f"{args.preset} ({models['parameters']['target']:,} parameters, Q8_0, trained {steps} steps)",
        "drafter": f"{models['parameters']['drafter']:,} parameters ({models['overrides']}), {draft_steps} steps",
        "threads": args.threads,
        "new_tokens": new_tokens,
        "prompts": len(prompts),
        "rows": rows,
        "draft_max": int(best.split("@")[1]),
        "speedup": rows[best]["speedup"],
        "identical_outputs": all(row["identical"] for row in rows.values()),
        "acceptance_distilled": acceptance["distilled"],
        "acceptance_undistilled": acceptance["undistilled"],
        "final_loss": models["final_loss"],
        **{key: models[key] for key in models if key.endswith("_train_s")},
    }
    result["goals"] = {
        "speedup_ge_1_5": result["speedup"] >= 1.5,
        "identical_outputs": result["identical_outputs"],
        "distilled_accepts_more": result["acceptance_distilled"] > result["acceptance_undistilled"],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"\ntarget: {result['target']}\ndrafter: {result['drafter']}")
    print(f"acceptance (greedy, held-out prompts): distilled {result['acceptance_distilled']:.3f}, "
          f"undistilled {result['acceptance_undistilled']:.3f}")  # fmt: skip
    print("\n| drafter | decode tok/s | speedup | server acceptance | identical |\n|---|---:|---:|---:|---|")
    for name, row in result["rows"].items():
        accepted = row.get("server_acceptance")
        print(f"| {name} | {row['tokens_per_s']:,.0f} | {row.get('speedup', 1.0):.2f} | "
              f"{'-' if accepted is None else f'{accepted:.2f}'} | {row['identical']} |")  # fmt: skip
    print(f"\ngoals: {result['goals']}")


if __name__ == "__main__":
    main()
