#!/usr/bin/env bash
# Runs the Python tests of the C examples (build/examples/echo_server and
# chat_server) with the third-party `websockets` client.
# Last line: "N passed, M failed". Exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}

if [ ! -x build/examples/echo_server ] || [ ! -x build/examples/chat_server ]; then
    make -s >/dev/null 2>&1 || true
fi
if [ ! -x build/examples/echo_server ] || [ ! -x build/examples/chat_server ]; then
    echo "build/examples/echo_server or chat_server missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$PY" -c 'import websockets.asyncio.client' 2>/dev/null; then
    "$PY" -m pip install --quiet 'websockets>=13' >/dev/null 2>&1 || true
fi
if ! "$PY" -c 'import websockets.asyncio.client' 2>/dev/null; then
    echo "the Python package 'websockets' (>= 13) is not installed"
    echo "0 passed, 1 failed"
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout -k 5 180 "$PY" tests/python/test_echo_example.py >"$log" 2>&1
rc=$?
cat "$log"
summary=$(grep -oE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [ -z "$summary" ]; then
    echo "no summary from test_echo_example.py (exit $rc)"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ "$rc" -ne 0 ] && [ "$(awk '{print $3}' <<<"$summary")" = "0" ]; then
    echo "test_echo_example.py exited with $rc"
    echo "$(awk '{print $1}' <<<"$summary") passed, 1 failed"
    exit 1
fi
echo "$summary"
exit "$rc"
