#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine (with Rust, gcc,
# Python 3 and Node already there): pkg-config, valgrind, openssl, binutils,
# redis-server (tests/backplane starts its own on a free port), Python
# `websockets`, Autobahn|Testsuite (on pyenv's Python 2.7), cargo-fuzz and
# the benchmark peers. A quick no-op when all is present; `make test` runs
# it first, and so does .ci/run.
set -u
cd "$(dirname "$0")/.."
need=()
for pair in pkg-config:pkg-config valgrind:valgrind openssl:openssl readelf:binutils redis-server:redis-server; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair##*:}")
done
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}" ca-certificates procps
    else
        echo "install-deps: missing ${need[*]}: install them as root" >&2
    fi
fi
python3 -c "import websockets" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check websockets
# tests/browser: Playwright for Python, driving Debian's chromium (no `playwright install`)
python3 -c "import playwright" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check playwright
# tests/python_pkg: pytest, and venv (pip install ./bindings/python goes into one)
python3 -c "import pytest" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check pytest
python3 -c "import ensurepip, venv" 2>/dev/null || { [ "$(id -u)" = 0 ] &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv; }
# tests/autobahn: Autobahn|Testsuite's wstest in a Python 2.7 virtualenv, build/autobahn-venv
bash tests/autobahn/install.sh ||
    echo "install-deps: wstest did not install; the Autobahn suite fails until it does" >&2
# fuzz/run.sh: cargo-fuzz, pinned to a version that builds with the machine's stable Rust (1.95)
cargo fuzz --version >/dev/null 2>&1 || cargo install -q --locked cargo-fuzz --version 0.13.2 ||
    echo "install-deps: cargo-fuzz failed to install; the fuzz suite will fail" >&2
bash bench/install-peers.sh >/dev/null ||
    echo "install-deps: some benchmark peers failed to install; the benchmark reports them as skipped" >&2
exit 0
