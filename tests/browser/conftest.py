"""Fixtures for real-browser tests: Chromium via Playwright (skipped when either is missing), an artifacts folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser.dagster_ui import CHROMIUM, launch_chromium


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium Browser; skips the test when /usr/bin/chromium or playwright is not installed.

    Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it is
    open, and every later test that calls asyncio.run (the crawler) would fail inside it.
    """
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/install_browser.sh` (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts_dir(request, tmp_path) -> Path:
    """$LMFORGE_TEST_ARTIFACTS/<test name>/ when set (CI keeps it), else tmp_path/artifacts; printed for the log."""
    root = os.environ.get("LMFORGE_TEST_ARTIFACTS")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    directory = Path(root) / name if root else tmp_path / "artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test artifacts: {directory}")
    return directory
