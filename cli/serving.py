"""`lmforge serve`: the registry's champion, and a canary or shadow route, behind lmforge's serving front.

Each served (model version, quantization) runs in its own llama-server process (model_code.serve) on a private
port with its own key; the front (model_code.gateway) listens where the operator said. The registry's aliases are
re-read every few seconds in the background, so a promotion or `lmforge rollback` switches the route without a
restart: the new version's backend is started first, then the routes swap.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
from pathlib import Path

from lineage.registry import Registry
from model_code.deploy import drafter_of, gguf_path, verify_sha256sums
from model_code.gateway import Route
from model_code.serve import serve, trained_context, wait_until_ready


class Backends:
    """One llama-server per served (version, quant), started on demand; `close()` stops them all."""

    def __init__(self, quant: str, parallel: int, log_dir: Path, speculative: bool = False, draft_max: int = 4):
        self.quant, self.parallel, self.log_dir = quant, parallel, log_dir
        self.speculative, self.draft_max = speculative, draft_max
        self.live: dict[str, tuple[subprocess.Popen, str, str, int]] = {}  # version -> (process, url, key, n_ctx)
        self.lock = threading.Lock()

    def route(self, name: str, registry: Registry, version: str) -> Route:
        with self.lock:
            if version not in self.live:
                self.live[version] = self._start(registry, version)
            _, url, key, n_ctx = self.live[version]
        return Route(name, f"{registry.name} v{version}", url, n_ctx, key)

    def _start(self, registry: Registry, version: str):
        directory = registry.get(version).uri.removeprefix("file://")
        problems = verify_sha256sums(directory)
        if problems:
            listed = "; ".join(problems)
            raise ValueError(f"refusing to serve {directory}: it no longer matches its SHA256SUMS: {listed}")
        model = gguf_path(directory, self.quant)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        key = secrets.token_urlsafe(24)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        draft = self._drafter(directory, version)
        process = serve(model, port=port, parallel=self.parallel, api_key=key, draft=draft, draft_max=self.draft_max,
                        log_path=self.log_dir / f"llama-server-v{version}.log")  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout=120, process=process, api_key=key)
        return process, url, key, trained_context(model)

    def _drafter(self, directory: str, version: str) -> Path | None:
        """The version's drafter when speculation is on and it has one; says which way it serves."""
        if not self.speculative:
            return None
        found = drafter_of(Path(directory))
        if found is None:
            print(f"lmforge serve: v{version} carries no drafter: serving it without speculative decoding", flush=True)
            return None
        path, record = found
        teacher, acceptance = record.get("teacher"), record.get("acceptance")
        print(f"lmforge serve: v{version} decodes speculatively with its drafter (teacher {teacher}, acceptance "
              f"{acceptance}, up to {self.draft_max} tokens per step)", flush=True)  # fmt: skip
        return path

    def close(self) -> None:
        with self.lock:
            for process, *_ in self.live.values():
                process.terminate()
            for process, *_ in self.live.values():
                process.wait(timeout=30)
            self.live.clear()


class RegistryRoutes:
    """The routes to serve (`alias` as champion, plus the canary or shadow alias), from the registry, refreshed
    every `every` seconds in a background thread; calling it returns the current ones."""

    def __init__(self, registry: Registry, backends: Backends, primary: str, extra: list[str], every: float = 5.0):
        self.registry, self.backends, self.primary, self.extra, self.every = registry, backends, primary, extra, every
        self.current: dict[str, Route] = {}
        self.refresh(strict=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def __call__(self) -> dict[str, Route]:
        return self.current

    def refresh(self, strict: bool = False) -> None:
        aliases = self.registry.aliases()
        primary = self.registry.by_alias(self.primary).version
        routes = {"champion": self.backends.route("champion", self.registry, primary)}
        for alias in self.extra:
            if alias in aliases:
                routes[alias] = self.backends.route(alias, self.registry, aliases[alias])
            elif strict:
                self.registry.by_alias(alias)  # raises, listing the aliases that exist
        self.current = routes  # one swap: a request sees the old routes or the new ones

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception as failure:  # noqa: BLE001 - a registry hiccup keeps the routes serving as they are
                print(f"lmforge serve: keeping the current routes ({failure})", flush=True)

    def stop(self) -> None:
        self._stop.set()
