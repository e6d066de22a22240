"""The llama.cpp server on a GGUF file: streamed chat from the model's own template, JSON-schema output, API key."""

from __future__ import annotations

import json
import socket

import httpx
import jsonschema
import pytest
from transformers import AutoTokenizer

from model_code.export.llama import load_llama
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
    # The same prompt rendered by transformers from the HF directory's template, completed by llama.cpp directly.
    prompt = AutoTokenizer.from_pretrained(hf_dir).apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=False
    )
    llm = load_llama(gguf_files["Q8_0"], n_ctx=256)
    try:
        expected = llm.create_completion(prompt, temperature=0.0, max_tokens=24)["choices"][0]["text"]
    finally:
        llm.close()
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
