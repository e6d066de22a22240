#!/usr/bin/env bash
# Create the virtualenv and install lmforge with its pinned dependencies (idempotent).
#
#   bash scripts/setup.sh [.venv]
#
# torch is pinned to 2.13.0 (a CPU build on CPU machines); constraints.txt pins the whole tested set.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" - <<'PY' || { echo "lmforge needs Python >= 3.11 (found $($PYTHON --version 2>&1)); set PYTHON=" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if ! command -v java >/dev/null 2>&1; then
  echo "setup: no Java runtime found (Spark needs one); installing openjdk-17-jre-headless" >&2
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "setup: install a Java 17 runtime yourself (e.g. 'sudo apt-get install openjdk-17-jre-headless')" >&2
  fi
fi

# The demo's website: the Python manual (real, linked prose). Without it the demo falls back to pydoc.
if [ ! -f /usr/share/doc/python3.11/html/index.html ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "setup: installing python3.11-doc (the demo crawls the Python manual served on 127.0.0.1)" >&2
  (apt-get update -qq && apt-get install -y -qq python3.11-doc >/dev/null) || echo "setup: python3.11-doc unavailable; the demo will crawl pydoc" >&2
fi

# The multilingual filter tests crawl documentation Debian ships translated (the Debian Reference and FAQ).
MULTILINGUAL_DOCS="debian-reference-en debian-reference-de debian-reference-fr debian-reference-es debian-reference-ja
  debian-reference-zh-cn debian-faq-de debian-faq-fr debian-faq-ja debian-faq-zh-cn debian-faq-ko"
if [ ! -f /usr/share/debian-reference/index.zh-cn.html ] || [ ! -d /usr/share/doc/debian/FAQ/ko ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's translated documentation (the multilingual filter tests' site)" >&2
    # shellcheck disable=SC2086
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends $MULTILINGUAL_DOCS >/dev/null) ||
      echo "setup: Debian's translated documentation is unavailable; tests/stages/test_multilingual_site.py will fail" >&2
  else
    echo "setup: install $MULTILINGUAL_DOCS for the multilingual filter tests" >&2
  fi
fi

# fasttext has no Linux wheel on PyPI: pip compiles it (g++, about a minute). llama.cpp comes prebuilt (xllamacpp).
if ! command -v g++ >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "setup: installing g++ (pip compiles fasttext)" >&2
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev]'
# The real-browser tests drive Debian's chromium through Playwright (no browser download needed).
bash scripts/install_browser.sh "$VENV"
echo "setup: lmforge installed in $VENV"
