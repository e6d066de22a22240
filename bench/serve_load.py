"""Serving under load, after vLLM's `vllm bench serve`: lmforge's server against llama-cpp-python's, one run.

    python -m bench.serve_load [--quick] --json /tmp/serve_load.json

The model: the `gpt2_124m` shape with the 8k tokenizer trained here (~89M parameters, 94 MB in Q8_0: far more
than the CPU's caches, so decoding is memory-bound, as a served model is), trained a few steps from scratch here
(bench.serve.build_model; throughput does not depend on how well it is trained), exported to Q8_0 GGUF.
Both servers run as real processes on 127.0.0.1 on that file with
the same threads: lmforge's (`model_code.serve`: llama.cpp's llama-server, `--parallel` slots, continuous batching)
and llama-cpp-python's (`python -m llama_cpp.server`, its defaults: one request at a time, and a new request
interrupts a streaming one). The load: chat prompts of real validation text, streamed, greedy, `max_tokens` new
tokens; closed-loop concurrency 1, 2, 4 and 8 (each client sends its next request when the last one ends), then a
Poisson arrival rate. Per level: mean, median and p99 of TTFT, TPOT (time per output token after the first), ITL
(gaps between streamed tokens) and E2EL (whole request), in ms, and request and output-token throughput; each
level's prompts are tagged apart, so none finds its prefix cached by an earlier level. A stream is broken when it
ends without its finish_reason and [DONE]. Prefix cache: a ~500-token system prompt sent twice with different user
turns; the speedup is the first TTFT over the second's (median of 3 system prompts).

Goals: 0 broken streams; output throughput at 8 clients >= 3x one client's and >= 3x llama-cpp-python's at 8; p99
TTFT at 4 clients <= 2x the median at one; the cached 500-token system prompt's TTFT >= 5x faster.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LEVELS = (1, 2, 4, 8)
N_CTX = 1024  # per slot, asked for; llama-server caps it at the model's trained context
SYSTEM_TOKENS = 500  # the prefix-cache system prompt (needs a context of ~520: gpt2_124m has 1024)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lmforge(gguf: Path, threads: int, parallel: int, log: Path) -> tuple[str, subprocess.Popen]:
    from model_code.serve import serve

    port = free_port()
    process = serve(gguf, port=port, n_ctx=N_CTX, n_threads=threads, parallel=parallel, log_path=log)
    return f"http://127.0.0.1:{port}", process


def start_llama_cpp_python(gguf: Path, threads: int, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
               str(port), "--n_ctx", str(N_CTX), "--n_threads", str(threads)]  # fmt: skip
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    return f"http://127.0.0.1:{port}", process


_CLIENT = None


def client():
    """One connection pool for every request (as vLLM's benchmark keeps one session): a new client per request
    would add ~30 ms of set-up to every TTFT."""
    import httpx

    global _CLIENT
    if _CLIENT is None:
        _CLIENT = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))
    return _CLIENT


def one_request(url: str, messages: list[dict], max_tokens: int, retried: bool = False) -> dict:
    """One streamed greedy chat: TTFT, token arrival gaps, E2EL (seconds), tokens, and whether it ended whole.

    A pooled keep-alive connection the server closed between requests fails before any response byte; like the
    OpenAI clients, the request is then sent again once on a new connection (counted as `retried`). A stream that
    started and ended without its finish_reason and [DONE] is broken."""
    import httpx

    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True}
    started = time.perf_counter()
    arrivals, finish, done, status = [], None, False, None
    try:
        with client().stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            status = response.status_code
            if response.status_code != 200:
                return {"ok": False, "status": f"{response.status_code} {response.read()[:300]!r}", "tokens": 0}
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    choice = json.loads(line[6:])["choices"][0]
                    if choice.get("delta", {}).get("content"):
                        arrivals.append(time.perf_counter())
                    finish = choice.get("finish_reason") or finish
    except httpx.HTTPError as error:
        if status is None and not retried and isinstance(error, httpx.RemoteProtocolError):
            return {**one_request(url, messages, max_tokens, retried=True), "retried": True}
        return {"ok": False, "status": type(error).__name__, "tokens": len(arrivals)}  # cut midway: broken
    ended = time.perf_counter()
    if not arrivals:
        return {"ok": False, "status": "no tokens", "tokens": 0}
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return {
        "ok": done and finish is not None,
        "ttft": arrivals[0] - started,
        "tpot": (ended - arrivals[0]) / max(1, len(arrivals) - 1),
        "itl": gaps,
        "e2el": ended - started,
        "tokens": len(arrivals),
    }


def closed_loop(url: str, prompts: list[list[dict]], concurrency: int, requests: int, max_tokens: int) -> dict:
    """`concurrency` clients, each sending its next request when its last one ends, `requests` in all."""
    queue = list(range(requests))
    lock = threading.Lock()
    results: list[dict] = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                number = queue.pop()
            results.append(one_request(url, prompts[number % len(prompts)], max_tokens))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return summarize(results, time.perf_counter() - started)


def poisson(url: str, prompts: list[list[dict]], rate: float, requests: int, max_tokens: int) -> dict:
    """Requests arriving at `rate` per second (exponential gaps, seeded), however many are in flight."""
    gaps = random.Random(0)
    results: list[dict] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=requests) as pool:
        futures = []
        for number in range(requests):
            futures.append(pool.submit(one_request, url, prompts[number % len(prompts)], max_tokens))
            time.sleep(gaps.expovariate(rate))
        results = [future.result() for future in futures]
    return summarize(results, time.perf_counter() - started)


def summarize(results: list[dict], wall: float) -> dict:
    ok = [r for r in results if r["ok"]]
    found = {"requests": len(results), "broken_streams": len(results) - len(ok), "wall_s": round(wall, 2),
             "retried_connections": sum(1 for r in results if r.get("retried"))}  # fmt: skip
    if len(ok) < len(results):
        why = {str(r.get("status", "ended without finish_reason / [DONE]")) for r in results if not r["ok"]}
        found["broken_examples"] = sorted(why)[:5]
    for name in ("ttft", "tpot", "e2el", "itl"):
        values = [v for r in ok for v in r["itl"]] if name == "itl" else [r[name] for r in ok]
        values = sorted(1000 * v for v in values)
        if values:
            found[f"mean_{name}_ms"] = round(statistics.fmean(values), 2)
            found[f"median_{name}_ms"] = round(statistics.median(values), 2)
            found[f"p99_{name}_ms"] = round(values[min(len(values) - 1, int(0.99 * len(values)))], 2)
    found["request_throughput"] = round(len(ok) / wall, 3)
    found["output_throughput"] = round(sum(r["tokens"] for r in results) / wall, 1)
    return found


def prefix_cache_speedup(url: str, texts: list[str], tokenizer, max_tokens: int = 4) -> dict:
    """TTFT of a SYSTEM_TOKENS system prompt sent first, over its TTFT sent again with another user turn."""
    speedups, cold, warm = [], [], []
    for index in range(3):
        ids = tokenizer.encode(" ".join(texts[index * 40 :]))[:SYSTEM_TOKENS]
        system = f"[{index}] " + tokenizer.decode(ids)
        first = one_request(url, [{"role": "system", "content": system}, {"role": "user", "content": "Hi."}],
                            max_tokens)  # fmt: skip
        again = one_request(url, [{"role": "system", "content": system}, {"role": "user", "content": "Why?"}],
                            max_tokens)  # fmt: skip
        if not (first["ok"] and again["ok"]):
            statuses = f"{first.get('status')}, {again.get('status')}"
            raise SystemExit(f"the prefix-cache requests to {url} failed: {statuses}")
        cold.append(1000 * first["ttft"])
        warm.append(1000 * again["ttft"])
        speedups.append(first["ttft"] / again["ttft"])
    return {"ttft_first_ms": round(statistics.median(cold), 2), "ttft_cached_ms": round(statistics.median(warm), 2),
            "speedup": round(statistics.median(speedups), 2)}  # fmt: skip


def chat_prompts(texts: list[str], tokenizer, count: int, tokens: int = 64) -> list[list[dict]]:
    prompts = []
    for text in texts:
        ids = tokenizer.encode(text)
        if len(ids) >= tokens:
            prompts.append([{"role": "user", "content": tokenizer.decode(ids[:tokens])}])
        if len(prompts) == count:
            break
    return prompts


def fresh(prompts: list[list[dict]], tag: str) -> list[list[dict]]:
    """The prompts with `tag` in front: no level finds its prompts in the prefix cache from an earlier level."""
    return [[{**turn, "content": f"[{tag}] {turn['content']}"} for turn in prompt] for prompt in prompts]


def measure_server(url: str, prompts, texts, tokenizer, quick: bool, max_tokens: int) -> dict:
    requests = 8 if quick else 16
    levels = {}
    for concurrency in LEVELS:
        tagged = fresh(prompts, f"c{concurrency}")
        levels[f"c{concurrency}"] = closed_loop(url, tagged, concurrency, max(requests, 2 * concurrency), max_tokens)
        print(f"  concurrency {concurrency}: {json.dumps(levels[f'c{concurrency}'])}", flush=True)
    one = levels["c1"]["request_throughput"] or 1.0
    levels["poisson"] = poisson(url, fresh(prompts, "poisson"), rate=4 * one, requests=requests, max_tokens=max_tokens)
    levels["poisson"]["rate_per_s"] = round(4 * one, 3)
    print(f"  poisson {levels['poisson']['rate_per_s']}/s: {json.dumps(levels['poisson'])}", flush=True)
    return levels


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a briefly trained model, fewer requests")
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--parallel", type=int, default=8, help="lmforge's slots")
    parser.add_argument("--preset", default="gpt2_124m", help="the model's shape (default: memory-bound here)")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from bench.corpus import corpus_texts
    from bench.serve import build_model
    from model_code.export.gguf import write_gguf
    from model_code.serve import wait_until_ready

    if importlib.util.find_spec("llama_cpp") is None:
        raise SystemExit(
            "bench.serve_load runs llama-cpp-python's server side by side and it is not installed: "
            "pip install -e '.[compare]' (pip compiles llama.cpp for it, ~13 min on 2 cores)"
        )
    work = Path(tempfile.mkdtemp(prefix="lmforge-serve-load-"))
    hf_dir, _ = build_model(work, 2 if args.quick else 10, preset=args.preset)  # throughput, not quality
    gguf = Path(write_gguf(hf_dir, work / "model-Q8_0.gguf", "Q8_0")["path"])
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    texts = corpus_texts()
    prompts = chat_prompts(texts, tokenizer, 16)
    max_tokens = 32 if args.quick else 64
    result: dict = {"model": f"{args.preset} (trained briefly)", "gguf": str(gguf), "threads": args.threads,
                    "lmforge_slots": args.parallel, "max_tokens": max_tokens}  # fmt: skip
    for name, start in (
        ("lmforge", lambda: start_lmforge(gguf, args.threads, args.parallel, work / "lmforge.log")),
        ("llama_cpp_python", lambda: start_llama_cpp_python(gguf, args.threads, work / "llama_cpp_python.log")),
    ):
        url, process = start()
        try:
            wait_until_ready(url, timeout=180, process=process)
            print(f"{name} at {url}", flush=True)
            one_request(url, prompts[0], 4)  # warm-up
            result[name] = measure_server(url, prompts, texts, tokenizer, args.quick, max_tokens)
            result[name]["prefix_cache"] = prefix_cache_speedup(url, texts, tokenizer)
        finally:
            process.terminate()
            process.wait(timeout=60)
    ours, theirs = result["lmforge"], result["llama_cpp_python"]
    result |= {
        "broken_streams": sum(level["broken_streams"] for key, level in ours.items() if key != "prefix_cache"),
        "llama_cpp_python_broken_streams": sum(
            level["broken_streams"] for key, level in theirs.items() if key != "prefix_cache"
        ),
        "output_throughput_c1": ours["c1"]["output_throughput"],
        "output_throughput_c8": ours["c8"]["output_throughput"],
        "llama_cpp_python_output_throughput_c8": theirs["c8"]["output_throughput"],
        "p99_ttft_ms_c4": ours["c4"].get("p99_ttft_ms"),
        "median_ttft_ms_c1": ours["c1"].get("median_ttft_ms"),
        "prefix_cache_ttft_speedup": ours["prefix_cache"]["speedup"],
    }
    result["goals"] = {
        "broken_streams_is_0": result["broken_streams"] == 0,
        "c8_ge_3x_c1": result["output_throughput_c8"] >= 3 * result["output_throughput_c1"],
        "c8_ge_3x_llama_cpp_python_c8": result["output_throughput_c8"]
        >= 3 * result["llama_cpp_python_output_throughput_c8"],
        "p99_ttft_c4_le_2x_median_c1": (result["p99_ttft_ms_c4"] or 1e9) <= 2 * (result["median_ttft_ms_c1"] or 0),
        "prefix_cache_ge_5x": result["prefix_cache_ttft_speedup"] >= 5,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"\n{'server':<18} {'level':<8} {'req/s':>7} {'out tok/s':>9} {'TTFT med':>9} {'TTFT p99':>9} "
          f"{'TPOT med':>9} {'ITL p99':>8} {'E2EL med':>9} {'broken':>6}")  # fmt: skip
    for name in ("lmforge", "llama_cpp_python"):
        for level, row in result[name].items():
            if level == "prefix_cache":
                continue
            print(f"{name:<18} {level:<8} {row['request_throughput']:>7} {row['output_throughput']:>9} "
                  f"{row.get('median_ttft_ms', '-'):>9} {row.get('p99_ttft_ms', '-'):>9} "
                  f"{row.get('median_tpot_ms', '-'):>9} {row.get('p99_itl_ms', '-'):>8} "
                  f"{row.get('median_e2el_ms', '-'):>9} {row['broken_streams']:>6}")  # fmt: skip
        cache = result[name]["prefix_cache"]
        print(f"{name:<18} prefix cache: 500-token system prompt TTFT {cache['ttft_first_ms']} ms first, "
              f"{cache['ttft_cached_ms']} ms again ({cache['speedup']}x)")  # fmt: skip
    print("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))


if __name__ == "__main__":
    main()
