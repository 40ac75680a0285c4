#!/usr/bin/env bash
# `make test`: every suite, on one release build. Each suite prints its own
# results; the last line here counts suites: "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 failures=()
suite() { # name command...
    local name=$1; shift
    echo "=============== $name"
    local start=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failures+=("$name")
    fi
    echo "--------------- $name: $((SECONDS - start)) s"
}
# The debug-assertions build (cargo profile checked) that the Qt and Python
# package suites load too: its dependencies are compiled once for all three.
suite "rust (unit, integration, conformance, TLS; debug assertions)" cargo test --profile checked
suite "C ABI (.so, .a, ASan+UBSan, valgrind)" bash tests/c/run.sh
suite "Redis backplane (redis-server, 2 and 3 server processes)" bash tests/backplane/run.sh
suite "C++ binding (and ASan+UBSan)" bash tests/cpp/run.sh
suite "Qt binding (Qt 5 and Qt 6, debug-assertions library)" bash tests/qt/run.sh
suite "python websockets vs C examples (echo, chat, TLS, poll)" bash tests/python/run.sh
suite "python package (ctypes, debug-assertions library)" bash tests/python_pkg/run.sh
suite "Autobahn|Testsuite (cases 1-10, deflate subset, 9.x at the default limits)" python3 tests/autobahn/run.py quick limits
suite "browser (headless Chromium)" bash tests/browser/run.sh
suite "README code samples compile" bash tests/readme/run.sh
suite "TLS through the C ABI" bash tests/tls/run.sh
suite "install + pkg-config" bash tests/install/run.sh
suite "benchmark unit tests (client frames, round medians, targets)" cargo test --release -p wsbench
suite "fuzz (cargo-fuzz targets, 20 s each, 2 at a time)" bash fuzz/run.sh 20
# Four servers, built and run (the whole quick table adds ~2.5 minutes and
# the other peers' builds).
suite "benchmark (quick, figures not asserted)" bash bench/run.sh --quick --only wsserver-c,wsserver-poll,libwebsockets,raw-tcp
[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
