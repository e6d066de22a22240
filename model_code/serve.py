"""Serving a GGUF file over an OpenAI-compatible HTTP API (llama.cpp's own server), and the vLLM alternative.

    python -m model_code.serve --model out/model-Q8_0.gguf --host 127.0.0.1 --port 8080 --parallel 4

The server is llama.cpp's llama-server, embedded by the `xllamacpp` wheel (no compiler needed) and run in this child
process: `parallel` slots (default 4) decode together with continuous batching and share one unified KV cache; a
prompt's cached prefix is reused (a repeated system prompt is not recomputed); a stream is never cut by another
request; a client that disconnects frees its slot. It answers OpenAI `/v1/chat/completions` and `/v1/completions`
(streamed or not, `response_format` json_schema constrained natively), `/v1/models`, `/health`, Prometheus
`/metrics` and `/slots`. The chat template is the model's own (the GGUF's `tokenizer.chat_template`, rendered with
Jinja). With an API key (env LMFORGE_SERVE_API_KEY, so it never shows in `ps`) every route but `/health` needs it as
a bearer token. It binds 127.0.0.1 unless told otherwise.

    from model_code.serve import serve, wait_until_ready
    process = serve("model-Q8_0.gguf", port=8080)
    wait_until_ready("http://127.0.0.1:8080", timeout=60, process=process)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from model_code.export.llama import default_threads, trained_context, vocabulary_mismatch

__all__ = ["check_drafter", "serve", "trained_context", "vllm_command", "wait_until_ready"]
API_KEY_ENV = "LMFORGE_SERVE_API_KEY"  # read by the server process, so the key never shows in `ps`
DRAFT_MAX = 4  # tokens a drafter proposes per speculative step (llama-server's --spec-draft-n-max)
PARENT_CHECK_S = 1.0  # how often a server started by serve() checks that its starter still runs


def serve(
    gguf_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    n_ctx: int = 0,
    chat_format: str | None = None,
    n_threads: int | None = None,
    api_key: str | None = None,
    log_path: str | Path | None = None,
    parallel: int = 4,
    draft: str | Path | None = None,
    draft_max: int = DRAFT_MAX,
) -> subprocess.Popen:
    """Start the server on the GGUF file in a child process and return it (not yet ready: see wait_until_ready).

    n_ctx 0 means the model's trained context (per slot: the KV cache is unified); chat_format None means the
    template embedded in the file (else a Jinja template file); n_threads None means every core; api_key, when
    given, is required as a bearer token; `parallel` slots decode at once. stdout and stderr go to log_path when
    given (appended), else they are discarded. With `draft` (a drafter's GGUF, same tokenizer) the server decodes
    speculatively: the drafter proposes up to `draft_max` tokens, the model verifies them in one batch, and greedy
    output stays token for token what it is without it. The caller stops it with terminate(); should the caller
    die first (SIGKILL, out of memory), the server stops on its own within a second instead of holding the port, the
    memory and the cores.
    """
    path = Path(gguf_path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {path} does not exist")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    if not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel must be an integer >= 1 (slots decoding at once), got {parallel!r}")
    if draft is not None:
        check_drafter(path, draft, draft_max, n_ctx or trained_context(path))
    command = [
        sys.executable,
        "-m",
        "model_code.serve",
        "--model",
        str(path),
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--parallel",
        str(parallel),
        "--parent_pid",
        str(os.getpid()),
    ]
    if chat_format:
        command += ["--chat_format", chat_format]
    if draft is not None:
        command += ["--draft", str(draft), "--draft_max", str(draft_max)]
    if n_threads:
        command += ["--n_threads", str(n_threads)]
    environment = {**os.environ, **({API_KEY_ENV: api_key} if api_key else {})}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child owns it while it runs
    try:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=Path(__file__).resolve().parents[1]
        )
    finally:
        if log_path:
            log.close()


def check_drafter(gguf_path: str | Path, draft_path: str | Path, draft_max: int, context: int) -> None:
    """ValueError naming the drafter or the field when `draft_path` cannot draft for `gguf_path`."""
    if not isinstance(draft_max, int) or isinstance(draft_max, bool) or not 1 <= draft_max < context:
        raise ValueError(
            f"draft_max must be an integer in [1, {context - 1}] (the context is {context}), got {draft_max!r}"
        )
    mismatch = vocabulary_mismatch(gguf_path, draft_path)
    if mismatch:
        raise ValueError(f"drafter {draft_path} cannot draft for {gguf_path}: {mismatch}")


def wait_until_ready(
    url: str, timeout: float = 60.0, process: subprocess.Popen | None = None, api_key: str | None = None
) -> None:
    """Return once GET {url}/v1/models (with api_key as bearer token, if any) answers 200; TimeoutError after
    `timeout` seconds, RuntimeError when `process` (the server) exits first."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url.rstrip('/')}/v1/models", headers=headers, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise TimeoutError(f"the server at {url} was not ready within {timeout} s")


def vllm_command(
    hf_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, max_model_len: int | None = None
) -> str:
    """The shell command that serves the HF-format directory with vLLM on a GPU node (vLLM on PyPI is CUDA-only).

    vLLM reads the chat template from the directory (chat_template.jinja) and eos/pad from generation_config.json.
    """
    directory = Path(hf_dir)
    command = [
        "vllm",
        "serve",
        str(directory),
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        directory.name,
        "--generation-config",
        "auto",
        "--dtype",
        "auto",
    ]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    return shlex.join(command)


def main() -> None:
    import argparse
    import signal
    import threading

    import xllamacpp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--n_ctx", type=int, default=0, help="context in tokens per slot; 0: the model's")
    parser.add_argument("--chat_format", default=None, help="a Jinja chat template file; default: the GGUF's own")
    parser.add_argument("--n_threads", type=int, default=None, help="default: every core")
    parser.add_argument("--parallel", type=int, default=4, help="slots decoding at once (continuous batching)")
    parser.add_argument("--draft", default=None, help="a drafter's GGUF: speculative decoding")
    parser.add_argument("--draft_max", type=int, default=DRAFT_MAX, help="tokens the drafter proposes per step")
    parser.add_argument("--parent_pid", type=int, default=0, help="stop when this process is no longer the parent")
    args = parser.parse_args()
    threads = args.n_threads or default_threads()
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {Path(args.model).stem}  # the name /v1/models and every response give
    params.hostnames, params.port = [args.host], args.port
    params.n_parallel, params.kv_unified, params.cont_batching = args.parallel, True, True
    # The unified cache holds every slot's context: each slot gets the model's trained context (or n_ctx).
    params.n_ctx = (args.n_ctx or trained_context(args.model)) * args.parallel
    params.cache_prompt = True
    params.use_jinja = True  # the model's own chat template, rendered as the HF tokenizer would
    if args.chat_format:
        params.chat_template = Path(args.chat_format).read_text(encoding="utf-8")
    params.endpoint_metrics = params.endpoint_slots = True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    if os.environ.get(API_KEY_ENV):
        params.api_keys = [os.environ[API_KEY_ENV]]
    if args.draft:
        check_drafter(args.model, args.draft, args.draft_max, params.n_ctx // args.parallel)
        params.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        params.speculative.draft.mparams.path = args.draft
        params.speculative.draft.n_max = args.draft_max
        draft = params.speculative.draft
        draft.cpuparams.n_threads = draft.cpuparams_batch.n_threads = threads
        # Two thread pools (model and drafter) take turns on the same cores: neither may spin-wait for work.
        for pool in (params.cpuparams, params.cpuparams_batch, draft.cpuparams, draft.cpuparams_batch):
            pool.poll = 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.parent_pid:
        threading.Thread(target=_stop_without_parent, args=(args.parent_pid, stop), daemon=True).start()
    server = xllamacpp.Server(params)  # listening once this returns; it serves from its own threads
    drafting = f", drafter {args.draft} (up to {args.draft_max} tokens)" if args.draft else ", no drafter"
    print(f"serving {args.model} at {server.listening_address} with {args.parallel} slots{drafting}", flush=True)
    stop.wait()
    del server  # stops the HTTP threads and the decode loop, then frees the model


def _stop_without_parent(parent_pid: int, stop) -> None:
    """Set `stop` once `parent_pid` is no longer this process's parent: it died and the server was re-parented."""
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent_pid:
            print(f"the process that started this server ({parent_pid}) is gone: stopping", flush=True)
            stop.set()


if __name__ == "__main__":
    main()
