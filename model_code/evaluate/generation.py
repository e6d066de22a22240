"""Generation samples of an HF model (chat template, greedy) and serving latency of its GGUF file in llama.cpp.

samples = generation_samples("lake/sft_model/<v>/model", ["What does the json module do?"], max_new_tokens=64)
latency = serving_latency("lake/serving_model/<v>/model-Q8_0.gguf", prompts, max_new_tokens=64)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from model_code.export.llama import load_llama

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
    """Time to first token and decode speed of llama.cpp on the GGUF file, streaming greedy completions.

    Each prompt is rendered as one user turn of the ChatML template every lmforge tokenizer carries (as the chat
    server would send it) and streamed token by token (llama_cpp.Llama.generate, greedy) until max_new_tokens or
    end of turn. Time to first token covers the prompt's evaluation and the first sampled token; decode speed
    is the tokens after the first over the time after the first. Returns {"ttft_ms_median", "ttft_ms_mean",
    "decode_tokens_per_s" (all decode tokens over all decode time), "prompts", "generated_tokens", "threads"}.
    """
    _check_arguments(prompts, max_new_tokens)
    llm = load_llama(gguf_path, n_ctx=n_ctx)
    try:
        stop_ids = {llm.token_eos(), *llm.tokenize(END_OF_TURN.encode(), add_bos=False, special=True)}
        _stream(llm, llm.tokenize(b"Hello", add_bos=False), 1, stop_ids)  # warm-up: first-call allocations
        runs = [
            _stream(llm, _prompt_tokens(llm, prompt, n_ctx, max_new_tokens), max_new_tokens, stop_ids)
            for prompt in prompts
        ]
        threads = llm.n_threads
    finally:
        llm.close()
    first = [run["ttft_s"] * 1000 for run in runs]
    decode_tokens, decode_s = sum(run["tokens"] - 1 for run in runs), sum(run["decode_s"] for run in runs)
    return {
        "ttft_ms_median": statistics.median(first),
        "ttft_ms_mean": statistics.fmean(first),
        "decode_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else None,
        "prompts": len(prompts),
        "generated_tokens": sum(run["tokens"] for run in runs),
        "threads": threads,
    }


def _stream(llm, tokens: list[int], max_new_tokens: int, stop_ids: set[int]) -> dict:
    """One greedy streamed completion: {"ttft_s", "decode_s" (after the first token), "tokens" generated}."""
    llm.reset()
    started = time.perf_counter()
    first_at, count = None, 0
    for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        now = time.perf_counter()
        first_at = first_at or now
        count += 1
        if token in stop_ids or count >= max_new_tokens:
            break
    end = time.perf_counter()
    return {"ttft_s": (first_at or end) - started, "decode_s": end - (first_at or end), "tokens": count}


def _prompt_tokens(llm, prompt: str, n_ctx: int, max_new_tokens: int) -> list[int]:
    chat = f"<|im_start|>user\n{prompt}{END_OF_TURN}\n<|im_start|>assistant\n"
    tokens = llm.tokenize(chat.encode("utf-8"), add_bos=False, special=True)
    if len(tokens) + max_new_tokens > n_ctx:
        raise ValueError(
            f"prompt of {len(tokens)} tokens + max_new_tokens {max_new_tokens} exceed n_ctx {n_ctx}: {prompt[:60]!r}"
        )
    return tokens


def _check_arguments(prompts: list[str], max_new_tokens: int) -> None:
    if isinstance(prompts, str) or not prompts:
        raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
