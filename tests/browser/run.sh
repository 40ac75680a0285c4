#!/usr/bin/env bash
# The example pages in headless Chromium (Debian's chromium, driven by
# Playwright for Python with executable_path=/usr/bin/chromium; never
# `playwright install`): tests/browser/test_pages.py. Screenshots in
# build/browser/*.png. Last line: "N passed, M failed"; non-zero on failure.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

for e in chat_server workflows_server; do
    [ -x "build/examples/$e" ] || make -s >/dev/null 2>&1 || true
done
for e in chat_server workflows_server; do
    if [ ! -x "build/examples/$e" ]; then
        echo "build/examples/$e is missing: run make first"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
if [ ! -x "$CHROMIUM" ]; then
    echo "$CHROMIUM is missing: apt-get install chromium (as .ci/run does)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$PY" -c 'import playwright.sync_api' 2>/dev/null; then
    "$PY" -m pip install -q --disable-pip-version-check playwright >/dev/null 2>&1 || true
fi
if ! "$PY" -c 'import playwright.sync_api' 2>/dev/null; then
    echo "the Python package 'playwright' is not installed (pip install playwright; no 'playwright install' needed)"
    echo "0 passed, 1 failed"
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout -k 5 120 "$PY" tests/browser/test_pages.py >"$log" 2>&1
rc=$?
cat "$log"
summary=$(grep -oE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [ -z "$summary" ]; then
    echo "no summary from test_pages.py (exit $rc)"
    echo "0 passed, 1 failed"
    exit 1
fi
[ "$rc" -eq 0 ] || [ "$(awk '{print $3}' <<<"$summary")" != 0 ] || { echo "test_pages.py exited with $rc"; echo "0 passed, 1 failed"; exit 1; }
[ "$rc" -eq 0 ]
