"""lmforge's serving front: routes to llama-server backends, canary and shadow, the model version on every answer,
the request checks llama-server does not make, and the request log.

    gateway = Gateway(routes, api_key="...", canary=("challenger", 10), shadow=None, log=RequestLog(directory))
    uvicorn.run(gateway.app, host="127.0.0.1", port=8080)

`routes()` returns {name: Route} (champion, challenger, ...) and is asked on every request, so a promotion or a
rollback that changes what it returns switches the route without a restart. Every answer carries the version of the
model that produced it: header `X-Lmforge-Model-Version`, and field `lmforge_model_version` in the JSON (in every
chunk of a stream). Canary: a share of requests goes to the canary route, sticky per `user` field or per
`X-Session-Id` header (a hash of it picks the bucket). Shadow: the chosen route answers; the request is mirrored to
the shadow route in the background through a bounded queue (full: the mirror is dropped and counted), both answers
recorded in `shadow-<day>.jsonl` for offline comparison.

Checked here, each a clear HTTP error: a wrong API key (401), a body that is not JSON (400), an unknown model name
(404, naming the served ones), max_tokens beyond the model's context (400), a response_format json_schema that is
not a valid JSON Schema (400), a full gateway (503 with Retry-After). The backends check the rest (a prompt longer
than the context: 400).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VERSION_HEADER = "X-Lmforge-Model-Version"
VERSION_FIELD = "lmforge_model_version"
SESSION_HEADER = "X-Session-Id"
SERVED_NAME = "lmforge"  # the model name every route answers to, besides its own


@dataclass(frozen=True)
class Route:
    name: str  # champion, challenger, ...
    version: str  # the registered model version it serves, e.g. "lmforge v3"
    url: str  # its backend (llama-server) base URL
    n_ctx: int  # its context per request, in tokens
    key: str | None = None  # the backend's API key


class RequestLog:
    """One JSONL file per day under `directory`: requests-<day>.jsonl (and shadow-<day>.jsonl). Files older than
    `retention_days` are deleted when a new day's file is opened. Prompt and response text only with `log_text`,
    PII-redacted with the corpus's own redactor."""

    def __init__(self, directory: str | Path, retention_days: int = 30, log_text: bool = False):
        if retention_days < 1:
            raise ValueError(f"retention_days must be >= 1, got {retention_days}")
        self.directory, self.retention_days, self.log_text = Path(directory), retention_days, log_text
        self.directory.mkdir(parents=True, exist_ok=True)
        self._day: str | None = None

    def write(self, record: dict, kind: str = "requests") -> None:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        if day != self._day:
            self._day = day
            self.enforce_retention()
        with open(self.directory / f"{kind}-{day}.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def text(self, value: str) -> str | None:
        """`value` redacted, when text is logged; else None."""
        if not self.log_text:
            return None
        from data_code.filters.pii import redact_pii

        return redact_pii(value)[0]

    def enforce_retention(self, today: dt.date | None = None) -> list[Path]:
        today = today or dt.datetime.now(dt.UTC).date()
        removed = []
        for path in self.directory.glob("*-????-??-??.jsonl"):
            try:
                day = dt.date.fromisoformat(path.stem[-10:])
            except ValueError:
                continue
            if (today - day).days >= self.retention_days:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def error(status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None):
    from starlette.responses import JSONResponse

    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class Gateway:
    """The ASGI front (see the module docstring); `app` is the Starlette application."""

    def __init__(
        self,
        routes: Callable[[], dict[str, Route]],
        *,
        api_key: str | None = None,
        canary: tuple[str, int] | None = None,
        shadow: str | None = None,
        log: RequestLog | None = None,
        max_in_flight: int = 256,
        shadow_queue: int = 16,
    ):
        from starlette.applications import Starlette
        from starlette.routing import Route as Path_

        if canary is not None and not 0 <= canary[1] <= 100:
            raise ValueError(f"the canary share is a percentage within 0..100, got {canary[1]}")
        self.routes, self.api_key, self.canary, self.shadow, self.log = routes, api_key, canary, shadow, log
        self.max_in_flight, self.in_flight = max_in_flight, 0
        self.counters = {"requests": 0, "errors": 0, "rejected_full": 0, "shadow_sent": 0, "shadow_dropped": 0}
        self._shadow_queue_size = shadow_queue
        self._shadow_queue: asyncio.Queue | None = None
        self._client = None
        self.app = Starlette(
            routes=[
                Path_("/health", self.health),
                Path_("/metrics", self.metrics),
                Path_("/v1/models", self.models),
                Path_("/v1/chat/completions", self.complete, methods=["POST"]),
                Path_("/v1/completions", self.complete, methods=["POST"]),
            ]
        )

    def client(self):
        import httpx

        if self._client is None:
            # No keep-alive to the backends: llama-server closes an idle connection after 5 s, and a request sent on
            # it fails before any byte comes back; a new loopback connection costs well under a millisecond.
            limits = httpx.Limits(max_connections=self.max_in_flight + 16, max_keepalive_connections=0)
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits)
        return self._client

    async def health(self, request):
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "routes": {n: r.version for n, r in self.routes().items()}})

    async def models(self, request):
        from starlette.responses import JSONResponse

        if (refused := self._refuse(request)) is not None:
            return refused
        routes = self.routes()
        data = [{"id": SERVED_NAME, "object": "model", VERSION_FIELD: self._pick(routes, {}, request).version}]
        data += [{"id": name, "object": "model", VERSION_FIELD: route.version} for name, route in routes.items()]
        return JSONResponse({"object": "list", "data": data})

    async def metrics(self, request):
        from starlette.responses import PlainTextResponse

        if (refused := self._refuse(request)) is not None:
            return refused
        lines = [f"# TYPE lmforge_gateway_{name} counter\nlmforge_gateway_{name}_total {value}"
                 for name, value in self.counters.items()]  # fmt: skip
        lines.append(f"# TYPE lmforge_gateway_in_flight gauge\nlmforge_gateway_in_flight {self.in_flight}")
        for name, route in self.routes().items():
            try:
                response = await self.client().get(f"{route.url}/metrics", headers=self._backend_headers(route))
                body = response.text.replace("llamacpp:", "llamacpp_").strip()
                lines.append("\n".join(
                    line if line.startswith("#") else _labelled(line, name, route.version)
                    for line in body.splitlines()))  # fmt: skip
            except Exception as failure:  # noqa: BLE001 - a backend down shows in the metrics, not as a 500
                lines.append(f"# backend {name} unreachable: {type(failure).__name__}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def complete(self, request):
        started = time.perf_counter()
        self.counters["requests"] += 1
        if (refused := self._refuse(request)) is not None:
            return refused
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as failure:
            return self._fail(400, f"the request body is not valid JSON: {failure}")
        if not isinstance(body, dict):
            return self._fail(400, f"the request body must be a JSON object, got {type(body).__name__}")
        routes = self.routes()
        if not routes:
            return self._fail(503, "no model is being served right now", "unavailable", {"Retry-After": "5"})
        model = body.get("model")
        names = {SERVED_NAME, *routes, *(r.version for r in routes.values())}
        if model is not None and model not in names:
            return self._fail(404, f"unknown model {model!r}: this server serves {sorted(names)}", "model_not_found")
        route = self._pick(routes, body, request)
        if (problem := _check_body(body, route)) is not None:
            return self._fail(400, problem)
        if self.in_flight >= self.max_in_flight:
            self.counters["rejected_full"] += 1
            return self._fail(503, f"the server is full ({self.in_flight} requests in flight): retry shortly",
                              "overloaded", {"Retry-After": "1"})  # fmt: skip
        body.pop("model", None)
        path = request.url.path
        if body.get("stream"):
            body.setdefault("stream_options", {"include_usage": True})
            return await self._stream(route, path, body, started, request)
        return await self._once(route, path, body, started, request)

    def _refuse(self, request):
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            self.counters["errors"] += 1
            return error(401, "a missing or wrong API key: send Authorization: Bearer <key>", "authentication_error")
        return None

    def _fail(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None):
        self.counters["errors"] += 1
        if self.log is not None:
            self.log.write({"time": _now(), "route": None, "model_version": None, "status": status, "error": message})
        return error(status, message, kind, headers)

    def _pick(self, routes: dict[str, Route], body: dict, request) -> Route:
        model = body.get("model")
        for route in routes.values():
            if model in (route.name, route.version):
                return route
        primary = routes.get("champion") or next(iter(routes.values()))
        if self.canary is None or self.canary[0] not in routes:
            return primary
        sticky = body.get("user") or request.headers.get(SESSION_HEADER.lower())
        bucket = int(hashlib.sha256(str(sticky).encode()).hexdigest(), 16) % 100 if sticky else random.randrange(100)
        return routes[self.canary[0]] if bucket < self.canary[1] else primary

    def _backend_headers(self, route: Route) -> dict:
        return {"Authorization": f"Bearer {route.key}"} if route.key else {}

    async def _once(self, route: Route, path: str, body: dict, started: float, request):
        from starlette.responses import JSONResponse

        self.in_flight += 1
        try:
            response = await self.client().post(f"{route.url}{path}", json=body, headers=self._backend_headers(route))
        finally:
            self.in_flight -= 1
        try:
            payload = response.json()
        except ValueError:
            failure = {"message": response.text[:500], "type": "backend_error", "code": response.status_code}
            payload = {"error": failure}
        if isinstance(payload, dict):
            payload[VERSION_FIELD] = route.version
        usage = payload.get("usage") or {} if isinstance(payload, dict) else {}
        text = _answer_text(payload)
        self._record(route, request, response.status_code, started, None, usage, body, text)
        self._mirror(route, path, body, text)
        return JSONResponse(payload, status_code=response.status_code, headers={VERSION_HEADER: route.version})

    async def _stream(self, route: Route, path: str, body: dict, started: float, request):
        from starlette.responses import JSONResponse, StreamingResponse

        self.in_flight += 1
        upstream = self.client().stream("POST", f"{route.url}{path}", json=body, headers=self._backend_headers(route))
        try:
            response = await upstream.__aenter__()
        except Exception:
            self.in_flight -= 1
            raise
        if response.status_code != 200:
            content = await response.aread()
            await upstream.__aexit__(None, None, None)
            self.in_flight -= 1
            try:
                payload = json.loads(content)
            except ValueError:
                payload = {"error": {"message": content[:500].decode(errors="replace"), "code": response.status_code}}
            payload[VERSION_FIELD] = route.version
            self._record(route, request, response.status_code, started, None, {}, body, "")
            return JSONResponse(payload, status_code=response.status_code, headers={VERSION_HEADER: route.version})
        state = {"first": None, "usage": {}, "text": [], "status": 200}

        async def relay():
            try:
                async for line in response.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        chunk = json.loads(line[6:])
                        chunk[VERSION_FIELD] = route.version
                        state["usage"] = chunk.get("usage") or state["usage"]
                        piece = _chunk_text(chunk)
                        if piece:
                            state["first"] = state["first"] or time.perf_counter()
                            state["text"].append(piece)
                        line = "data: " + json.dumps(chunk)
                    yield (line + "\n").encode() if line else b"\n"
            except asyncio.CancelledError:  # the client hung up: closing the upstream frees the backend's slot
                state["status"] = 499
                raise
            finally:
                await upstream.__aexit__(None, None, None)
                self.in_flight -= 1
                text = "".join(state["text"])
                self._record(route, request, state["status"], started, state["first"], state["usage"], body, text)
                self._mirror(route, path, body, text)

        return StreamingResponse(relay(), media_type="text/event-stream", headers={VERSION_HEADER: route.version})

    def _record(self, route, request, status, started, first, usage, body, text) -> None:
        if self.log is None:
            return
        now = time.perf_counter()
        record = {
            "time": _now(),
            "route": route.name,
            "model_version": route.version,
            "status": status,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "ttft_ms": round(1000 * (first - started), 2) if first else None,
            "latency_ms": round(1000 * (now - started), 2),
            "stream": bool(body.get("stream")),
        }
        if self.log.log_text:
            record["prompt"] = self.log.text(json.dumps(body.get("messages") or body.get("prompt")))
            record["response"] = self.log.text(text)
        self.log.write(record)

    def _mirror(self, route: Route, path: str, body: dict, answer: str) -> None:
        """Send the request to the shadow route in the background (bounded: when full, drop and count it)."""
        routes = self.routes()
        if self.shadow is None or self.shadow not in routes or route.name == self.shadow:
            return
        if self._shadow_queue is None:
            self._shadow_queue = asyncio.Queue(maxsize=self._shadow_queue_size)
            asyncio.get_running_loop().create_task(self._shadow_worker())
        try:
            self._shadow_queue.put_nowait((routes[self.shadow], route, path, {**body, "stream": False}, answer))
        except asyncio.QueueFull:
            self.counters["shadow_dropped"] += 1

    async def _shadow_worker(self) -> None:
        while True:
            shadow, primary, path, body, answer = await self._shadow_queue.get()
            body.pop("stream_options", None)
            try:
                response = await self.client().post(f"{shadow.url}{path}", json=body,
                                                    headers=self._backend_headers(shadow))  # fmt: skip
                shadow_answer = _answer_text(response.json())
                status = response.status_code
            except Exception as failure:  # noqa: BLE001 - a lagging or failing shadow never reaches the user
                shadow_answer, status = None, type(failure).__name__
            self.counters["shadow_sent"] += 1
            if self.log is not None:
                self.log.write({"time": _now(), "primary": primary.version, "shadow": shadow.version,
                                "shadow_status": status, "primary_answer": self.log.text(answer) or answer[:0],
                                "shadow_answer": self.log.text(shadow_answer or "") or "",
                                "same_answer": shadow_answer == answer}, kind="shadow")  # fmt: skip


def _check_body(body: dict, route: Route) -> str | None:
    """What llama-server would not refuse clearly: max_tokens beyond the context, a json_schema that is not one."""
    for field in ("max_tokens", "max_completion_tokens", "n_predict"):
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{field} must be an integer, got {value!r}"
        if value > route.n_ctx:
            return f"{field} {value} exceeds the model's context of {route.n_ctx} tokens"
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            return f"response_format.json_schema.schema must be a JSON Schema object, got {schema!r}"
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as failure:
            return f"response_format.json_schema.schema is not a valid JSON Schema: {failure.message}"
    return None


def _chunk_text(chunk: dict) -> str:
    choices = chunk.get("choices") or [{}]
    choice = choices[0]
    return (choice.get("delta") or {}).get("content") or choice.get("text") or ""


def _answer_text(payload) -> str:
    if not isinstance(payload, dict) or not payload.get("choices"):
        return ""
    choice = payload["choices"][0]
    return (choice.get("message") or {}).get("content") or choice.get("text") or ""


def _labelled(line: str, route: str, version: str) -> str:
    """A backend metric line with route and version labels."""
    name, _, value = line.rpartition(" ")
    labels = f'route="{route}",model_version="{version}"'
    if name.endswith("}"):
        return f"{name[:-1]},{labels}}} {value}"
    return f"{name}{{{labels}}} {value}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def serving_report(directory: str | Path, days: int | None = None) -> list[dict]:
    """Per (route, model version) of a request log: requests, errors, error rate, latency and TTFT percentiles (ms),
    tokens out; over the last `days` days' files (None: every file)."""
    import statistics

    files = sorted(Path(directory).glob("requests-????-??-??.jsonl"))
    if days is not None:
        files = files[-days:]
    groups: dict[tuple, list[dict]] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            groups.setdefault((record.get("route"), record.get("model_version")), []).append(record)
    rows = []
    for (route, version), records in sorted(groups.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
        errors = sum(1 for r in records if not isinstance(r.get("status"), int) or r["status"] >= 400)
        row = {"route": route, "model_version": version, "requests": len(records), "errors": errors,
               "error_rate": round(errors / len(records), 4),
               "completion_tokens": sum(r.get("completion_tokens") or 0 for r in records)}  # fmt: skip
        for name in ("latency_ms", "ttft_ms"):
            values = sorted(r[name] for r in records if r.get(name) is not None)
            if values:
                row[f"{name}_p50"] = round(statistics.median(values), 2)
                for q in (95, 99):
                    row[f"{name}_p{q}"] = round(values[min(len(values) - 1, int(q / 100 * len(values)))], 2)
        rows.append(row)
    return rows
