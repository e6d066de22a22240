"""The serving front against two real llama-server processes (champion Q8_0, challenger Q4_0): the model version on
every answer, canary sticky per user, shadow, a route switch without restart, its own request checks, the log."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import httpx
import pytest
import uvicorn

from model_code.gateway import VERSION_FIELD, VERSION_HEADER, Gateway, RequestLog, Route
from model_code.serve import serve, trained_context, wait_until_ready
from tests.serve.test_server import free_port

pytestmark = pytest.mark.slow
KEY = "gateway-key"
CHAT = {"messages": [{"role": "user", "content": "What is a module?"}], "max_tokens": 6, "temperature": 0}


@pytest.fixture(scope="module")
def backends(gguf_files, tmp_path_factory):
    """{name: Route} of two llama-server processes, each with its own key."""
    started, routes = [], {}
    for name, qtype, version in (("champion", "Q8_0", "lmforge v1"), ("challenger", "Q4_0", "lmforge v2")):
        port = free_port()
        process = serve(gguf_files[qtype], port=port, api_key=f"{name}-key", parallel=2)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout=120, process=process, api_key=f"{name}-key")
        routes[name] = Route(name, version, url, trained_context(gguf_files[qtype]), f"{name}-key")
    yield routes
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def front(backends, tmp_path):
    """(url, gateway, live routes dict) of a gateway on 127.0.0.1 with a 20 % canary, served by uvicorn."""
    live = dict(backends)
    gateway = Gateway(lambda: live, api_key=KEY, canary=("challenger", 20), log=RequestLog(tmp_path / "log"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gateway.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url, gateway, live
    server.should_exit = True
    thread.join(timeout=30)


def post(url: str, body: dict, key: str | None = KEY, **headers) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers={**auth, **headers}, timeout=120)


def test_every_answer_names_its_model_version_and_the_canary_sticks_per_user(front):
    url, _, _ = front
    seen = {}
    for user in range(40):
        response = post(url, {**CHAT, "user": f"user-{user}"})
        assert response.status_code == 200, response.text
        assert response.headers[VERSION_HEADER] == response.json()[VERSION_FIELD]
        seen[user] = response.json()[VERSION_FIELD]
    assert set(seen.values()) == {"lmforge v1", "lmforge v2"}
    assert 2 <= list(seen.values()).count("lmforge v2") <= 16  # about 20 % of users
    again = {user: post(url, {**CHAT, "user": f"user-{user}"}).json()[VERSION_FIELD] for user in range(10)}
    assert again == {user: seen[user] for user in range(10)}  # sticky
    session = {post(url, CHAT, **{"X-Session-Id": "s-1"}).json()[VERSION_FIELD] for _ in range(4)}
    assert len(session) == 1


def test_a_stream_carries_the_version_in_every_chunk(front):
    url, _, _ = front
    chunks = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**CHAT, "stream": True, "model": "challenger"},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as response:  # fmt: skip
        assert response.status_code == 200 and response.headers[VERSION_HEADER] == "lmforge v2"
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    assert chunks and all(chunk[VERSION_FIELD] == "lmforge v2" for chunk in chunks)


def test_a_promotion_switches_the_route_without_a_restart(front, backends):
    url, _, live = front
    assert post(url, {**CHAT, "user": "fixed"}).status_code == 200
    live["champion"] = Route("champion", "lmforge v2", backends["challenger"].url, backends["challenger"].n_ctx,
                             backends["challenger"].key)  # fmt: skip
    live.pop("challenger")
    assert {post(url, {**CHAT, "user": f"u{i}"}).json()[VERSION_FIELD] for i in range(6)} == {"lmforge v2"}


def test_requests_the_backend_would_not_refuse_clearly_get_clear_errors(front):
    url, _, _ = front
    unknown = post(url, {**CHAT, "model": "gpt-4"})
    assert unknown.status_code == 404 and "unknown model 'gpt-4'" in unknown.json()["error"]["message"]
    too_many = post(url, {**CHAT, "max_tokens": 10**6})
    assert too_many.status_code == 400 and "exceeds the model's context" in too_many.json()["error"]["message"]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}
    bad_schema = post(url, {**CHAT, "response_format": schema})
    assert bad_schema.status_code == 400 and "not a valid JSON Schema" in bad_schema.json()["error"]["message"]
    malformed = httpx.post(f"{url}/v1/chat/completions", content=b"{oops", timeout=30,
                           headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"})  # fmt: skip
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]["message"]
    assert post(url, CHAT, key="wrong").status_code == 401
    too_long = post(url, {**CHAT, "messages": [{"role": "user", "content": "word " * 3000}]})
    assert too_long.status_code == 400 and "exceeds the available context" in too_long.json()["error"]["message"]
    assert post(url, CHAT).status_code == 200


def test_a_full_gateway_answers_503_with_retry_after(front):
    url, gateway, _ = front
    gateway.max_in_flight = 0
    full = post(url, CHAT)
    assert full.status_code == 503 and full.headers["Retry-After"] == "1"
    gateway.max_in_flight = 256


def test_the_request_log_records_each_request_and_retention_is_enforced(front, tmp_path):
    url, gateway, _ = front
    for user in range(3):
        assert post(url, {**CHAT, "user": f"log-{user}"}).status_code == 200
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**CHAT, "stream": True},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as response:  # fmt: skip
        list(response.iter_lines())
    day = dt.datetime.now(dt.UTC).date().isoformat()
    records = [json.loads(line) for line in (tmp_path / "log" / f"requests-{day}.jsonl").read_text().splitlines()]
    assert len(records) >= 4 and all(r["status"] == 200 for r in records)
    assert all(r["model_version"] in ("lmforge v1", "lmforge v2") and r["latency_ms"] > 0 for r in records)
    streamed = [r for r in records if r["stream"]]
    assert streamed and streamed[-1]["ttft_ms"] > 0 and streamed[-1]["completion_tokens"]
    assert "prompt" not in records[0]  # no text unless enabled
    old = tmp_path / "log" / "requests-2000-01-01.jsonl"
    old.write_text("{}\n")
    assert gateway.log.enforce_retention() == [old] and not old.exists()


def test_shadow_mirrors_to_the_challenger_without_touching_the_answer(backends, tmp_path):
    import asyncio

    from starlette.testclient import TestClient

    gateway = Gateway(lambda: backends, shadow="challenger", log=RequestLog(tmp_path / "log", log_text=True))
    with TestClient(gateway.app) as client:
        for _ in range(3):
            response = client.post("/v1/chat/completions", json=CHAT)
            assert response.json()[VERSION_FIELD] == "lmforge v1"  # the champion answers
        deadline = time.monotonic() + 30
        while gateway.counters["shadow_sent"] < 3 and time.monotonic() < deadline:
            client.get("/health")
            asyncio.run(asyncio.sleep(0.1))
    day = dt.datetime.now(dt.UTC).date().isoformat()
    mirrored = [json.loads(line) for line in (tmp_path / "log" / f"shadow-{day}.jsonl").read_text().splitlines()]
    assert len(mirrored) == 3 and all(m["shadow"] == "lmforge v2" and m["shadow_status"] == 200 for m in mirrored)


def test_a_client_that_hangs_up_on_the_front_leaks_no_slot(front, backends):
    """After a hang-up midway, the front's in-flight count and the backend's slots come back to idle (on the tiny
    model the backend may finish first; the disconnect itself is tested against llama-server in test_server)."""
    url, gateway, _ = front
    body = {**CHAT, "max_tokens": 200, "ignore_eos": True, "stream": True, "model": "champion"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=120) as response:  # fmt: skip
        next(response.iter_lines())  # one chunk, then hang up
    champion = backends["champion"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        slots = httpx.get(f"{champion.url}/slots", headers={"Authorization": f"Bearer {champion.key}"}).json()
        if not any(slot["is_processing"] for slot in slots) and gateway.in_flight == 0:
            break
        time.sleep(0.1)
    assert not any(slot["is_processing"] for slot in slots) and gateway.in_flight == 0
