#!/usr/bin/env bash
# Runs the Python tests of the C examples (build/examples/echo_server,
# chat_server, tls_echo_server: test_echo_example.py; poll_server:
# test_poll_example.py; chat_server's page and JSON chat:
# test_chat_page_example.py; workflows_server: test_workflows_example.py)
# with the third-party `websockets` client.
# Last line: "N passed, M failed". Exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}

EXAMPLES=(echo_server chat_server poll_server workflows_server)
missing() { for e in "${EXAMPLES[@]}"; do [ -x "build/examples/$e" ] || return 0; done; return 1; }
if missing; then
    make -s >/dev/null 2>&1 || true
fi
if missing; then
    echo "one of build/examples/{${EXAMPLES[*]}} is missing: run make first"
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
passed=0 failed=0 rc_all=0
for test in test_echo_example.py test_poll_example.py test_chat_page_example.py test_workflows_example.py; do
    timeout -k 5 180 "$PY" "tests/python/$test" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(grep -oE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$summary" ]; then
        echo "no summary from $test (exit $rc)"
        summary="0 passed, 1 failed"
    elif [ "$rc" -ne 0 ] && [ "$(awk '{print $3}' <<<"$summary")" = "0" ]; then
        echo "$test exited with $rc"
        summary="$(awk '{print $1}' <<<"$summary") passed, 1 failed"
    fi
    [ "$rc" -eq 0 ] || rc_all=1
    passed=$((passed + $(awk '{print $1}' <<<"$summary")))
    failed=$((failed + $(awk '{print $3}' <<<"$summary")))
done
echo "$passed passed, $failed failed"
[ "$rc_all" -eq 0 ] && [ "$failed" -eq 0 ]
