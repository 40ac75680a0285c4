#!/usr/bin/env bash
# The Qt binding's suite: for each of Qt 5 and Qt 6, configures and builds
# tests/qt (bindings/qt through add_subdirectory, the tests and examples-qt)
# into build/tests/qt/qtN, then runs every QtTest binary offscreen against
# certificates made now (scripts/make-certs.sh). Last line:
# "N passed, M failed"; exit status non-zero on any failure.
# Qt packages (Debian): qtbase5-dev libqt5websockets5-dev qt6-base-dev qt6-websockets-dev.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=build/tests/qt
mkdir -p "$OUT"
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

if [ ! -f target/release/libwsserver.so ] || [ ! -f target/release/libwsserver.a ]; then
    make -s lib >/dev/null 2>&1 || true
fi
command -v cmake >/dev/null || { fail "cmake is not installed"; echo "$passed passed, $failed failed"; exit 1; }

CERTS=$(mktemp -d /tmp/wsserver-qt-certs.XXXXXX)
trap 'rm -rf "$CERTS"' EXIT
bash scripts/make-certs.sh "$CERTS" >/dev/null || fail "scripts/make-certs.sh"
export WSSERVER_CERTS=$CERTS QT_QPA_PLATFORM=offscreen

for v in 5 6; do
    B=$OUT/qt$v
    start=$SECONDS
    if ! cmake -S tests/qt -B "$B" -DQT_MAJOR_VERSION=$v -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$OUT/configure$v.log" 2>&1; then
        fail "Qt $v: cmake configure (packages: see the top of this script)"; tail -15 "$OUT/configure$v.log"; continue
    fi
    if cmake --build "$B" -j2 >"$OUT/build$v.log" 2>&1; then
        pass "Qt $v: build (bindings/qt, tests, examples-qt; -Wall -Wextra -Werror) in $((SECONDS - start)) s"
    else
        fail "Qt $v: build"; grep -E 'error|Error' "$OUT/build$v.log" | head -30; continue
    fi
    for t in "$B"/test_*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        name="Qt $v: $(basename "$t")"
        log="$OUT/$(basename "$t").qt$v.log"
        tstart=$SECONDS
        (cd "$B" && timeout -k 5 180 "$ROOT/$t" -maxwarnings 0) >"$log" 2>&1
        rc=$?
        grep -E '^(FAIL!|QINFO|   Loc)' "$log" | head -40
        line=$(grep -oE 'Totals: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
        if [ -z "$line" ]; then
            fail "$name: no totals (exit $rc)"; tail -20 "$log"; continue
        fi
        p=$(awk '{print $2}' <<<"$line"); f=$(awk '{print $4}' <<<"$line")
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$name: exit status $rc"; tail -20 "$log"; fi
        echo "---- $name: $p passed, $f failed ($((SECONDS - tstart)) s)"
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
