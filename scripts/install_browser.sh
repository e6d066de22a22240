#!/usr/bin/env bash
# Install the browser that the real-browser tests (pytest -m browser, tests/browser/) drive (idempotent).
#
#   bash scripts/install_browser.sh [.venv]
#
# Playwright drives Debian's /usr/bin/chromium: `playwright install` downloads its own browser from a CDN that
# this project's machines cannot reach. Without root or apt-get, this prints what to install and exits 0, and
# the browser tests skip with the same hint.
set -euo pipefail
VENV="${1:-.venv}"
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "install_browser: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "install_browser: installing chromium with apt-get (~35 s)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  echo "install_browser: $("$CHROMIUM" --version)"
else
  echo "install_browser: $CHROMIUM is missing; install Debian's chromium package" \
    "(e.g. 'sudo apt-get install -y chromium'); browser tests skip until then" >&2
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import playwright.sync_api" 2>/dev/null; then
  echo "install_browser: playwright is not in $VENV; it comes with the dev extra (pip install -e '.[dev]')" >&2
fi
