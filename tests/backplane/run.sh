#!/usr/bin/env bash
# The Redis backplane across server processes: builds tests/backplane/bp_server.c
# (the C ABI) into build/tests/backplane/, makes a CA and a localhost
# certificate for the rediss:// test (scripts/make-certs.sh, once), and runs
# test_backplane.py, which starts Debian's redis-server on free loopback
# ports of its own, two and three bp_server processes and Python
# `websockets` clients. Last line: "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=build/tests/backplane
REL=target/release
mkdir -p "$OUT"
PY=${PYTHON:-python3}

fail() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }
command -v redis-server >/dev/null || fail "redis-server is not installed (Debian package redis-server; scripts/install-deps.sh)"
[ -f "$REL/libwsserver.so" ] || make -s lib >/dev/null 2>&1 || true
[ -f "$REL/libwsserver.so" ] || fail "$REL/libwsserver.so missing: run make first"
"$PY" -c 'import websockets.asyncio.client' 2>/dev/null || fail "the Python package websockets (>= 13) is not installed"

if ! gcc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -O1 -g -Iinclude -Iexamples-c \
    -o "$OUT/bp_server" tests/backplane/bp_server.c -L"$REL" -lwsserver -Wl,-rpath,"$ROOT/$REL" -lpthread \
    >"$OUT/build.log" 2>&1; then
    cat "$OUT/build.log"
    fail "bp_server.c did not build"
fi
if [ -f "$OUT/certs/ca.pem" ] || bash scripts/make-certs.sh "$OUT/certs" >"$OUT/certs.log" 2>&1; then
    export WSTEST_CERTS="$ROOT/$OUT/certs"
fi
BP_SERVER="$ROOT/$OUT/bp_server" timeout -k 5 240 "$PY" tests/backplane/test_backplane.py
