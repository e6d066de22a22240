"""Opening a GGUF file with llama.cpp (llama-cpp-python), and the load check run before a GGUF is registered."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

PROBE_TEXT = "The quick brown fox jumps over the lazy dog."  # tokenized and run once by the load check


def default_threads() -> int:
    """Every core this process may use (llama-cpp-python's own default is half of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_llama(
    gguf_path: str | Path,
    *,
    n_ctx: int = 512,
    logits_all: bool = False,
    vocab_only: bool = False,
    n_threads: int | None = None,
):
    """A llama_cpp.Llama on the file; FileNotFoundError or ValueError naming the file when it cannot be loaded."""
    from llama_cpp import Llama

    path = Path(gguf_path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {path} does not exist")
    threads = n_threads or default_threads()
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=n_ctx,
            logits_all=logits_all,
            vocab_only=vocab_only,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"GGUF file {path} could not be loaded by llama.cpp: {error}") from error


def check_gguf_loads(gguf_path: str | Path, n_ctx: int = 64) -> dict:
    """Load the file with llama.cpp, tokenize a probe sentence and run one forward pass over it.

    Returns path, bytes, n_vocab, n_ctx_train, probe_tokens, load_s, and the chat template the server will use
    (chat_format: "chat_template.default" when the file's own template is used). ValueError naming the file when
    it does not load, tokenizes the probe to nothing, or produces non-finite logits.
    """
    path = Path(gguf_path)
    started = time.perf_counter()
    # logits_all: llama-cpp-python 0.3 fills `scores` only then; otherwise it is uninitialized memory.
    llm = load_llama(path, n_ctx=n_ctx, logits_all=True)
    try:
        tokens = llm.tokenize(PROBE_TEXT.encode("utf-8"), add_bos=False)[: n_ctx - 1]
        if not tokens:
            raise ValueError(f"GGUF file {path}: the probe sentence tokenized to no tokens")
        llm.eval(tokens)
        logits = np.asarray(llm.scores[llm.n_tokens - 1])  # (n_vocab,) logits after the last probe token
        if logits.shape != (llm.n_vocab(),) or not np.isfinite(logits).all():
            raise ValueError(f"GGUF file {path}: the forward pass produced non-finite or misshapen logits")
        return {
            "path": str(path),
            "bytes": path.stat().st_size,
            "n_vocab": llm.n_vocab(),
            "n_ctx_train": llm._model.n_ctx_train(),
            "probe_tokens": len(tokens),
            "chat_format": llm.chat_format,
            "load_s": round(time.perf_counter() - started, 3),
        }
    finally:
        llm.close()
