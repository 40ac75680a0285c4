#!/usr/bin/env bash
# Tests of the Python package bindings/python (import name `wsserver`):
# `pip install ./bindings/python` into a venv (build/python-pkg-venv, which
# sees the system site-packages for pytest and websockets), so the install
# step itself is tested on every run (it runs `cargo build --profile checked
# --lib`: the library with debug assertions and overflow checks on, in
# target/checked/, so a broken invariant fails loudly), then pytest on tests/python_pkg with real `websockets` clients on 127.0.0.1
# (and mypy --strict over the package and its examples).
# The last line is pytest's summary ("N passed ..."); exit status non-zero on
# any failure.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=build/python-pkg-venv
PIP=(-m pip install -q --disable-pip-version-check)

die() { echo "python package: $*"; echo "0 passed, 1 failed"; exit 1; }

if ! "$VENV/bin/python" -c '' 2>/dev/null; then   # none yet, or left by another Python
    rm -rf "$VENV"
    "$PY" -m venv --system-site-packages "$VENV" || die "cannot create a venv in $VENV"
fi
if ! "$VENV/bin/python" -c 'import pytest, websockets.asyncio.client, mypy' 2>/dev/null; then
    "$VENV/bin/python" "${PIP[@]}" 'pytest>=7' 'websockets>=13' mypy || die "cannot install pytest, websockets, mypy"
fi
WSSERVER_CARGO_PROFILE=checked "$VENV/bin/python" "${PIP[@]}" --force-reinstall --no-deps ./bindings/python ||
    die "pip install ./bindings/python failed"
installed=$("$VENV/bin/python" -c 'import wsserver._lib as l; print(l.path)' 2>&1) || die "import: $installed"
cmp -s "$installed" target/checked/libwsserver.so ||
    die "the installed $installed is not target/checked/libwsserver.so (the debug-assertions build)"
echo "python package: testing $installed (built with debug assertions and overflow checks)"

cd tests/python_pkg   # not bindings/python: the tests must import the installed package
env -u LD_LIBRARY_PATH -u WSSERVER_LIBRARY -u PYTHONPATH \
    timeout -k 10 600 "../../$VENV/bin/python" -m pytest -q
