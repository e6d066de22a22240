"""Generation samples of an HF model (chat template, greedy) and serving latency of its GGUF file as served.

samples = generation_samples("lake/sft_model/<v>/model", ["What does the json module do?"], max_new_tokens=64)
latency = serving_latency("lake/serving_model/<v>/model-Q8_0.gguf", prompts, max_new_tokens=64)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

END_OF_TURN = "<|im_end|>"  # the chat template closes an assistant turn with it: generation stops there too


def generation_samples(model_dir: str | Path, prompts: list[str], max_new_tokens: int = 64) -> list[dict]:
    """Greedy completions of each prompt, sent as one user turn through the model's chat template.

    Returns one dict per prompt: {"prompt", "completion" (special tokens dropped), "prompt_tokens",
    "completion_tokens", "stopped" (True when the model ended its turn before max_new_tokens)}.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_arguments(prompts, max_new_tokens)
    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in model directory {model_dir}: not an HF-format model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.chat_template:
        raise ValueError(f"the tokenizer in {model_dir} has no chat template (chat_template.jinja)")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    stop_ids = [tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids([END_OF_TURN])]
    samples = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        with torch.no_grad():
            output = model.generate(
                ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stop_ids,
                pad_token_id=tokenizer.pad_token_id,
            )[0, ids.shape[1] :]
        completion = tokenizer.decode(output, skip_special_tokens=True)
        stopped = bool(len(output)) and int(output[-1]) in stop_ids
        samples.append(
            {
                "prompt": prompt,
                "completion": completion,
                "prompt_tokens": int(ids.shape[1]),
                "completion_tokens": len(output),
                "stopped": stopped,
            }
        )
    return samples


def serving_latency(gguf_path: str | Path, prompts: list[str], max_new_tokens: int = 64, *, n_ctx: int = 512) -> dict:
    """Time to first token and decode speed of the GGUF file as served: lmforge's server (llama.cpp's llama-server,
    model_code.serve) started on it, each prompt streamed as one user turn of the model's chat template, greedy,
    until max_new_tokens or end of turn, one request at a time.

    Time to first token is measured at the client, request sent to first streamed token (the prompt's evaluation,
    the first sampled token, HTTP); decode speed is the tokens after the first over the time after the first.
    Returns {"ttft_ms_median", "ttft_ms_mean", "decode_tokens_per_s" (all decode tokens over all decode time),
    "prompts", "generated_tokens", "threads", "engine"}. A prompt whose tokens plus max_new_tokens exceed n_ctx
    raises ValueError before anything is timed.
    """
    import socket

    import httpx

    from model_code.export.llama import default_threads
    from model_code.serve import serve, wait_until_ready

    _check_arguments(prompts, max_new_tokens)
    if not Path(gguf_path).is_file():
        raise FileNotFoundError(f"GGUF file {gguf_path} does not exist")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    threads = default_threads()
    process = serve(gguf_path, port=port, n_ctx=n_ctx, n_threads=threads, parallel=1)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout=120, process=process)
        # No keep-alive: llama-server closes an idle connection after 5 s, and a request sent on it would fail.
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, timeout=120, limits=fresh) as client:
            for prompt in prompts:
                _check_fits(client, prompt, n_ctx, max_new_tokens)
            _stream_chat(client, "Hello", 1)  # warm-up: first-call allocations
            runs = [_stream_chat(client, prompt, max_new_tokens) for prompt in prompts]
    finally:
        process.terminate()
        process.wait(timeout=30)
    first = [run["ttft_s"] * 1000 for run in runs]
    decode_tokens, decode_s = sum(run["tokens"] - 1 for run in runs), sum(run["decode_s"] for run in runs)
    return {
        "ttft_ms_median": statistics.median(first),
        "ttft_ms_mean": statistics.fmean(first),
        "decode_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else None,
        "prompts": len(prompts),
        "generated_tokens": sum(run["tokens"] for run in runs),
        "threads": threads,
        "engine": "llama-server",
    }


def _check_fits(client, prompt: str, n_ctx: int, max_new_tokens: int) -> None:
    """ValueError when the prompt, rendered by the server's template, plus max_new_tokens exceed n_ctx."""
    messages = [{"role": "user", "content": prompt}]
    rendered = client.post("/apply-template", json={"messages": messages}).json()["prompt"]
    tokens = client.post("/tokenize", json={"content": rendered, "add_special": True, "parse_special": True})
    count = len(tokens.json()["tokens"])
    if count + max_new_tokens > n_ctx:
        raise ValueError(
            f"prompt of {count} tokens + max_new_tokens {max_new_tokens} exceed n_ctx {n_ctx}: {prompt[:60]!r}"
        )


def _stream_chat(client, prompt: str, max_new_tokens: int) -> dict:
    """One greedy streamed chat: {"ttft_s", "decode_s" (after the first token), "tokens" generated}."""
    import json

    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_new_tokens, "temperature": 0,
            "stream": True}  # fmt: skip
    started = time.perf_counter()
    first_at, count = None, 0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0].get("delta", {})
                if delta.get("content"):
                    first_at = first_at or time.perf_counter()
                    count += 1
    end = time.perf_counter()
    return {"ttft_s": (first_at or end) - started, "decode_s": end - (first_at or end), "tokens": count}


def _check_arguments(prompts: list[str], max_new_tokens: int) -> None:
    if isinstance(prompts, str) or not prompts:
        raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
