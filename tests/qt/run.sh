#!/usr/bin/env bash
# The Qt binding's suite: for each of Qt 5 and Qt 6, configures and builds
# tests/qt (bindings/qt through add_subdirectory, the tests and examples-qt)
# into build/tests/qt/qtN, linked against the library built with debug
# assertions and overflow checks (cargo profile "checked", target/checked/),
# then runs every QtTest binary offscreen against
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
start=$SECONDS
if make -s lib-checked >"$OUT/lib-checked.log" 2>&1; then
    pass "make lib-checked (cargo profile checked: debug assertions, overflow checks) in $((SECONDS - start)) s"
else
    fail "make lib-checked"; tail -20 "$OUT/lib-checked.log"
    echo "$passed passed, $failed failed"; exit 1
fi

CERTS=$(mktemp -d /tmp/wsserver-qt-certs.XXXXXX)
trap 'rm -rf "$CERTS"' EXIT
bash scripts/make-certs.sh "$CERTS" >/dev/null || fail "scripts/make-certs.sh"
export WSSERVER_CERTS=$CERTS QT_QPA_PLATFORM=offscreen

for v in 5 6; do
    B=$OUT/qt$v
    start=$SECONDS
    if ! cmake -S tests/qt -B "$B" -DQT_MAJOR_VERSION=$v -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWSSERVER_LIB_DIR="$ROOT/target/checked" >"$OUT/configure$v.log" 2>&1; then
        fail "Qt $v: cmake configure (packages: see the top of this script)"; tail -15 "$OUT/configure$v.log"; continue
    fi
    if cmake --build "$B" -j2 >"$OUT/build$v.log" 2>&1; then
        pass "Qt $v: build (bindings/qt, tests, examples-qt; -Wall -Wextra -Werror) in $((SECONDS - start)) s"
    else
        fail "Qt $v: build"; grep -E 'error|Error' "$OUT/build$v.log" | head -30; continue
    fi
    if ldd "$B/test_qtserver" | grep -qE "libwsserver\.so[.0-9]* => $ROOT/target/checked/"; then
        pass "Qt $v: the tests load target/checked/libwsserver.so"
    else
        fail "Qt $v: the tests do not load the debug-assertions build: $(ldd "$B/test_qtserver" | grep wsserver)"
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

# find_package(wsserver_qt) after `make install-qt` into a temporary prefix:
# a separate project per Qt version builds on both targets and runs.
PFX=$(mktemp -d /tmp/wsserver-qt-prefix.XXXXXX)
trap 'rm -rf "$CERTS" "$PFX"' EXIT
start=$SECONDS
if make -s install-qt PREFIX="$PFX/prefix" >"$OUT/install-qt.log" 2>&1; then
    pass "make install-qt PREFIX=... ($((SECONDS - start)) s)"
    for v in 5 6; do
        if [ ! -f "$PFX/prefix/lib/cmake/wsserver_qt/wsserver_qt$v-targets.cmake" ]; then
            fail "Qt $v: lib/cmake/wsserver_qt/wsserver_qt$v-targets.cmake not installed"; continue
        fi
        if cmake -S tests/qt/cmake_consumer -B "$PFX/build$v" -DQT_MAJOR_VERSION=$v -DCMAKE_PREFIX_PATH="$PFX/prefix" \
            >"$OUT/consumer$v.log" 2>&1 && cmake --build "$PFX/build$v" -j2 >>"$OUT/consumer$v.log" 2>&1; then
            if env -u LD_LIBRARY_PATH "$PFX/build$v/qt_consumer" >"$OUT/consumer$v.run.log" 2>&1 &&
                grep -q "^qt_consumer ok (Qt $v\." "$OUT/consumer$v.run.log"; then
                pass "Qt $v: find_package(wsserver_qt) consumer builds and runs ($(cat "$OUT/consumer$v.run.log"))"
            else
                fail "Qt $v: consumer run"; cat "$OUT/consumer$v.run.log"
            fi
        else
            fail "Qt $v: find_package(wsserver_qt) consumer configure/build"; tail -20 "$OUT/consumer$v.log"
        fi
    done
else
    fail "make install-qt"; tail -20 "$OUT/install-qt.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
