"""The llama.cpp server on a GGUF file: streamed chat from the model's own template, JSON-schema output, API key."""

from __future__ import annotations

import json
import socket

import httpx
import jsonschema
import pytest
from transformers import AutoTokenizer

from model_code.serve import serve, wait_until_ready

pytestmark = pytest.mark.slow  # a server process, plus the session's tiny model
API_KEY = "test-key"
MESSAGES = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is a module?"}]
SCHEMA = {
    "type": "object",
    "properties": {
        "language": {"enum": ["python", "c", "rust"]},
        "typed": {"type": "boolean"},
        "year": {"type": "integer"},
    },
    "required": ["language", "typed", "year"],
    "additionalProperties": False,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(gguf_files, tmp_path_factory):
    """(base url, process) of a server on the Q8_0 file, bound to 127.0.0.1 and requiring API_KEY."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = serve(gguf_files["Q8_0"], port=port, api_key=API_KEY, log_path=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout=120, process=process, api_key=API_KEY)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(url: str, body: dict, key: str | None = API_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120)


def test_streamed_chat_is_the_models_greedy_completion_of_its_own_template(server, gguf_files, hf_dir):
    url, _ = server
    # repeat_penalty 1.0: the server's default (1.1) would reshape the logits that greedy decoding picks from.
    body = {"messages": MESSAGES, "temperature": 0, "repeat_penalty": 1.0, "max_tokens": 24, "stream": True}
    pieces, finish = [], None
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choice = json.loads(line[len("data: ") :])["choices"][0]
            pieces.append(choice["delta"].get("content") or "")
            finish = choice.get("finish_reason") or finish
    streamed = "".join(pieces)
    # The same prompt rendered by transformers from the HF directory's template, completed by the same server as a
    # plain completion: the chat route renders the model's own template exactly as transformers does.
    prompt = AutoTokenizer.from_pretrained(hf_dir).apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=False
    )
    plain = {"prompt": prompt, "temperature": 0, "repeat_penalty": 1.0, "max_tokens": 24}
    completed = httpx.post(f"{url}/v1/completions", json=plain, headers=headers, timeout=120)
    expected = completed.json()["choices"][0]["text"]
    assert sum(1 for piece in pieces if piece) > 3  # streamed token by token, not in one piece
    assert finish in ("stop", "length")
    assert streamed == expected and streamed.strip()


def test_json_schema_response_format_returns_json_that_validates(server):
    url, _ = server
    openai_form = {"type": "json_schema", "json_schema": {"name": "language", "schema": SCHEMA}}
    native_form = {"type": "json_object", "schema": SCHEMA}
    for response_format in (openai_form, native_form):
        body = {
            "messages": [{"role": "user", "content": "Describe a language as JSON."}],
            "temperature": 0,
            "max_tokens": 64,
            "response_format": response_format,
        }
        response = post(url, body)
        assert response.status_code == 200, response.text
        content = response.json()["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content), SCHEMA)


def test_requests_without_the_api_key_are_refused(server):
    url, _ = server
    body = {"messages": MESSAGES, "max_tokens": 4}
    assert post(url, body, key=None).status_code == 401
    assert post(url, body, key="wrong").status_code == 401


def stream_chat(url: str, body: dict, on_first=None) -> dict:
    """One streamed chat: {"text", "finish", "done" (saw [DONE]), "chunks"}; `on_first` runs after the first chunk."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    pieces, finish, done = [], None, False
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=headers,
                      timeout=120) as response:  # fmt: skip
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                choice = json.loads(line[len("data: ") :])["choices"][0]
                pieces.append(choice["delta"].get("content") or "")
                finish = choice.get("finish_reason") or finish
                if on_first is not None and len(pieces) == 1:
                    on_first()
    return {"text": "".join(pieces), "finish": finish, "done": done, "chunks": len(pieces)}


def test_a_second_client_never_cuts_a_stream(server):
    url, _ = server
    body = {"messages": MESSAGES, "temperature": 0, "max_tokens": 48, "ignore_eos": True}
    alone = stream_chat(url, body)
    others = []

    def interrupt():  # another client arrives while the first is streaming
        for _ in range(2):
            others.append(post(url, {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}))

    shared = stream_chat(url, body, on_first=interrupt)
    assert shared["done"] and shared["finish"] == "length" and shared["chunks"] == alone["chunks"]
    assert shared["text"] == alone["text"]  # greedy: the same answer, whole, whoever else is served
    assert [response.status_code for response in others] == [200, 200]


def test_a_hundred_clients_on_four_slots_are_all_answered(server):
    from concurrent.futures import ThreadPoolExecutor

    url, _ = server
    body = {"messages": [{"role": "user", "content": "Say something."}], "max_tokens": 6}
    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(lambda _: post(url, body).status_code, range(100)))
    assert statuses.count(200) == 100  # queued behind the 4 slots, none dropped
    slots = httpx.get(f"{url}/slots", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).json()
    assert len(slots) == 4 and not any(slot["is_processing"] for slot in slots)


def test_a_client_that_disconnects_frees_its_slot(server):
    import time

    url, _ = server
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"messages": MESSAGES, "max_tokens": 200, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120) as response:
        next(response.iter_lines())  # one chunk, then hang up
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        slots = httpx.get(f"{url}/slots", headers=headers, timeout=10).json()
        if not any(slot["is_processing"] for slot in slots):
            break
        time.sleep(0.1)
    assert not any(slot["is_processing"] for slot in slots)


def test_bad_requests_get_clear_errors_and_leave_the_server_serving(server):
    url, _ = server
    headers = {"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    malformed = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers=headers, timeout=30)
    assert malformed.status_code == 400 and "parse error" in malformed.json()["error"]["message"]
    too_long = post(url, {"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 4})
    assert too_long.status_code == 400
    assert "exceeds the available context size" in too_long.json()["error"]["message"]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    bad_schema = post(url, {"messages": MESSAGES, "max_tokens": 4, "response_format": schema})
    assert bad_schema.status_code == 400 and "nonsense" in bad_schema.json()["error"]["message"]
    assert post(url, {"messages": MESSAGES, "max_tokens": 4}).status_code == 200  # still serving


def test_metrics_and_health(server):
    url, _ = server
    assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}  # no key needed for a probe
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).text
    assert "llamacpp:prompt_tokens_total" in metrics and "llamacpp:requests_processing" in metrics


def test_a_server_whose_starter_is_killed_stops_on_its_own(gguf_files, tmp_path):
    """SIGKILL gives the starter no chance to terminate() its server: the server sees it is gone, and stops."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    starter = f"""
import sys, time
from model_code.serve import serve, wait_until_ready
process = serve({str(gguf_files["Q8_0"])!r}, port={port})
wait_until_ready("http://127.0.0.1:{port}", timeout=120, process=process)
print(process.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    server_pid = 0
    try:
        server_pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _running(server_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(server_pid), "the server outlived the process that started it"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        parent.kill()
        if server_pid and _running(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # never leak it into later tests


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, re-parented to init and not yet reaped, counts as stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
