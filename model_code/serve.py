"""Serving a GGUF file over an OpenAI-compatible HTTP API (llama-cpp-python's server), and the vLLM alternative.

    python -m model_code.serve --model out/model-Q8_0.gguf --host 127.0.0.1 --port 8080

This runs llama-cpp-python's server app (what `python -m llama_cpp.server` runs) with one addition: a request
whose `response_format` is OpenAI's `{"type": "json_schema", "json_schema": {"schema": ...}}` is rewritten to
llama-cpp-python's own form `{"type": "json_object", "schema": ...}`, which it turns into a grammar that
constrains decoding to the schema (llama-cpp-python 0.3 would otherwise reject the OpenAI form with 422).

The chat template is the model's own: with no chat_format given, llama-cpp-python reads
`tokenizer.chat_template` from the GGUF metadata and, unless it is byte-for-byte one of its built-in formats,
renders it with Jinja2ChatFormatter (chat_format "chat_template.default"), stopping at the file's EOS and at
llama.cpp's end-of-generation tokens (<|im_end|> among them).

    from model_code.serve import serve, wait_until_ready
    process = serve("model-Q8_0.gguf", port=8080)
    wait_until_ready("http://127.0.0.1:8080", timeout=60, process=process)
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

API_KEY_ENV = "LMFORGE_SERVE_API_KEY"  # read by the server process, so the key never shows in `ps`


def serve(
    gguf_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    n_ctx: int = 0,
    chat_format: str | None = None,
    n_threads: int | None = None,
    api_key: str | None = None,
    log_path: str | Path | None = None,
) -> subprocess.Popen:
    """Start the server on the GGUF file in a child process and return it (not yet ready: see wait_until_ready).

    n_ctx 0 means the model's trained context; chat_format None means the template embedded in the file;
    n_threads None means every core; api_key, when given, is required as a bearer token. stdout and stderr go
    to log_path when given (appended), else they are discarded. The caller stops it with terminate().
    """
    path = Path(gguf_path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {path} does not exist")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
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
    ]
    if chat_format:
        command += ["--chat_format", chat_format]
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


def json_schema_shim(app):
    """ASGI middleware: OpenAI's json_schema response_format rewritten to llama-cpp-python's json_object + schema."""

    async def shimmed(scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith("/completions"):
            return await app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        body = _rewrite_response_format(body)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": headers + [(b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # later messages (a client disconnect) pass through
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await app(scope, replay, send)

    return shimmed


def _rewrite_response_format(body: bytes) -> bytes:
    """The request body with a json_schema response_format turned into json_object + schema; else unchanged."""
    try:
        request = json.loads(body)
    except ValueError:
        return body  # not JSON: the server answers it with its own error
    response_format = request.get("response_format") if isinstance(request, dict) else None
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return body
    schema = (response_format.get("json_schema") or {}).get("schema", {})
    request["response_format"] = {"type": "json_object", "schema": schema}
    return json.dumps(request).encode()


def main() -> None:
    import argparse

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from model_code.export.llama import default_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--n_ctx", type=int, default=0, help="context in tokens; 0: the model's")
    parser.add_argument("--chat_format", default=None, help="default: the chat template embedded in the GGUF")
    parser.add_argument("--n_threads", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    threads = args.n_threads or default_threads()
    server = ServerSettings(host=args.host, port=args.port, api_key=os.environ.get(API_KEY_ENV) or None)
    model = ModelSettings(
        model=args.model,
        model_alias=Path(args.model).stem,
        n_ctx=args.n_ctx,
        chat_format=args.chat_format,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )
    app = create_app(server_settings=server, model_settings=[model])
    uvicorn.run(json_schema_shim(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
