#!/usr/bin/env bash
# Builds the C++ binding's tests and examples (-std=c++17 -Wall -Wextra
# -Werror) into build/tests/cpp/, each linked twice (libwsserver.so and
# libwsserver.a), runs the binding tests, and runs the examples
# (examples-cpp/) against a real client (echo_check, on tests/c/client.c);
# the binding tests, the echo and chat examples and echo_check once more
# built with AddressSanitizer + UBSan (any report fails). Last line: "N passed, M failed";
# exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=build/tests/cpp
REL=target/release
CC=${CC:-gcc}
CXX=${CXX:-g++}
mkdir -p "$OUT"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit $?
}
PIDS=()
CM=
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$CM" ] && rm -rf "$CM"
}
trap cleanup EXIT

if [ ! -f "$REL/libwsserver.so" ] || [ ! -f "$REL/libwsserver.a" ]; then
    make -s lib >/dev/null 2>&1 || true
fi
[ -f "$REL/libwsserver.so" ] && [ -f "$REL/libwsserver.a" ] || { fail "libwsserver.so/.a missing: run make first"; finish; }

CXXFLAGS="-std=c++17 -Wall -Wextra -Werror -O1 -g -Iinclude -Ibindings/cpp -Itests/c"
SO_LINK="-L$REL -lwsserver -Wl,-rpath,$ROOT/$REL -lpthread"
A_LINK="$REL/libwsserver.a -lpthread -ldl -lm"

# The C test client, compiled as C (plain and instrumented).
if $CC -std=c11 -Wall -Wextra -Werror -O1 -g -c tests/c/client.c -o "$OUT/client.o" >"$OUT/client.log" 2>&1 &&
    $CC -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -c tests/c/client.c -o "$OUT/client.asan.o" \
        >>"$OUT/client.log" 2>&1; then
    pass "build tests/c/client.c (C, for the C++ tests)"
else
    fail "build tests/c/client.c"; cat "$OUT/client.log"; finish
fi

# build NAME SOURCE [extra objects...]: NAME.so and NAME.static
build() {
    local name=$1 src=$2
    shift 2
    # shellcheck disable=SC2086
    if $CXX $CXXFLAGS -o "$OUT/$name.so" "$src" "$@" $SO_LINK >"$OUT/$name.build.log" 2>&1; then
        pass "build $name against libwsserver.so"
    else
        fail "build $name against libwsserver.so"; cat "$OUT/$name.build.log"
    fi
    # shellcheck disable=SC2086
    if $CXX $CXXFLAGS -o "$OUT/$name.static" "$src" "$@" $A_LINK >"$OUT/$name.static.build.log" 2>&1; then
        if readelf -d "$OUT/$name.static" | grep -q 'NEEDED.*libwsserver'; then
            fail "$name.static still needs libwsserver.so"
        else
            pass "build $name against libwsserver.a"
        fi
    else
        fail "build $name against libwsserver.a"; cat "$OUT/$name.static.build.log"
    fi
}

build test_binding tests/cpp/test_binding.cpp "$OUT/client.o"
build echo_check tests/cpp/echo_check.cpp "$OUT/client.o"
EXAMPLES="echo_server seed004_chat"
# The Boost.Asio example, when Boost's headers are there (.ci/run installs libboost-dev).
if echo '#include <boost/asio.hpp>' | $CXX -std=c++17 -x c++ -fsyntax-only - >/dev/null 2>&1; then
    EXAMPLES="$EXAMPLES asio_echo"
else
    echo "note: no Boost headers (apt-get install libboost-dev): examples-cpp/asio_echo.cpp not built"
fi
for e in $EXAMPLES; do build "$e" "examples-cpp/$e.cpp"; done

# Runs a test binary; adds its "N passed, M failed" to the totals.
run_tests() {
    local name=$1 log=$2
    shift 2
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local line p f
    line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    grep -E '^FAIL|runtime error|ERROR: AddressSanitizer' "$log" | head -40
    if [ -z "$line" ]; then
        fail "$name: no summary (exit $rc); tail of $log:"; tail -20 "$log"; return
    fi
    p=$(awk '{print $1}' <<<"$line"); f=$(awk '{print $3}' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        fail "$name: exit status $rc"; tail -20 "$log"
    else
        echo "---- $name: $p passed, $f failed ($((SECONDS - start)) s)"
    fi
}
for kind in so static; do
    [ -x "$OUT/test_binding.$kind" ] && run_tests "test_binding ($kind)" "$OUT/test_binding.$kind.log" \
        timeout -k 5 120 "$OUT/test_binding.$kind"
done

# AddressSanitizer + UBSan on the binding and (below) the examples: the
# programs are instrumented and load libasan first, so the plain Rust
# library's malloc/free go through it too; LeakSanitizer runs at exit.
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_REPORT='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'
# shellcheck disable=SC2086
if $CXX $CXXFLAGS $SAN -o "$OUT/test_binding.asan" \
    tests/cpp/test_binding.cpp "$OUT/client.asan.o" $SO_LINK >"$OUT/test_binding.asan.build.log" 2>&1; then
    pass "build test_binding with $SAN"
    run_tests "test_binding (ASan+UBSan)" \
        "$OUT/test_binding.asan.log" timeout -k 5 180 "$OUT/test_binding.asan"
    if grep -qE "$SAN_REPORT" "$OUT/test_binding.asan.log"; then
        fail "sanitizers reported problems (see $OUT/test_binding.asan.log)"
    else
        pass "no sanitizer reports"
    fi
else
    fail "build test_binding with sanitizers"; cat "$OUT/test_binding.asan.build.log"
fi

# serve NAME BINARY [args...]: starts an example on port 0, waits for its
# "listening on ws://127.0.0.1:PORT" line, sets PORT and SERVER_PID.
serve() {
    local name=$1
    shift
    local log="$OUT/$name.run.log"
    : >"$log"
    "$@" >"$log" 2>"$log.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    PORT=
    local i
    for i in $(seq 1 500); do
        PORT=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$log" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    if [ -n "$PORT" ]; then
        pass "$name prints 'listening on ws://127.0.0.1:$PORT'"
    else
        fail "$name: no 'listening on' line"; cat "$log" "$log.err"
        return 1
    fi
}
# stop NAME SIGNAL: the example exits 0 on the signal, within 10 s.
stop() {
    local name=$1 sig=$2 i
    kill -"$sig" "$SERVER_PID" 2>/dev/null
    for i in $(seq 1 1000); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.01; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "$name did not exit on SIG$sig"; kill -9 "$SERVER_PID"
    fi
    wait "$SERVER_PID"
    local rc=$?
    if [ "$rc" -eq 0 ]; then pass "$name exits 0 on SIG$sig"; else fail "$name exited $rc on SIG$sig"; fi
}
# example NAME SIGNAL [echo_check args...]
example() {
    local name=$1 sig=$2 kind
    shift 2
    for kind in so static; do
        [ -x "$OUT/$name.$kind" ] || continue
        serve "$name.$kind" "$OUT/$name.$kind" 127.0.0.1 0 || continue
        if "$OUT/echo_check.so" "$PORT" "$@" >"$OUT/$name.$kind.check.log" 2>&1; then
            pass "$name.$kind echoes ($*: text, binary or a second text, and a 300-byte message)"
        else
            fail "$name.$kind echo"; cat "$OUT/$name.$kind.check.log"
        fi
        stop "$name.$kind" "$sig"
    done
}
example echo_server INT
example echo_server TERM
if [ -f "$OUT/asio_echo.so" ]; then
    example asio_echo INT
    example asio_echo TERM
fi
example seed004_chat INT / --text-only
# The examples again, built with the sanitizers and driven by an
# instrumented echo_check; a report in either fails (the example's exit
# status too: halt_on_error).
# shellcheck disable=SC2086
if $CXX $CXXFLAGS $SAN -o "$OUT/echo_check.asan" tests/cpp/echo_check.cpp "$OUT/client.asan.o" $SO_LINK \
    >"$OUT/echo_check.asan.build.log" 2>&1; then
    for e in "echo_server:" "seed004_chat:/ --text-only"; do
        name=${e%%:*} args=${e#*:}
        # shellcheck disable=SC2086
        if ! $CXX $CXXFLAGS $SAN -o "$OUT/$name.asan" "examples-cpp/$name.cpp" $SO_LINK >"$OUT/$name.asan.build.log" 2>&1; then
            fail "build $name with $SAN"; cat "$OUT/$name.asan.build.log"; continue
        fi
        serve "$name.asan" "$OUT/$name.asan" 127.0.0.1 0 || continue
        # shellcheck disable=SC2086
        if "$OUT/echo_check.asan" "$PORT" $args >"$OUT/$name.asan.check.log" 2>&1; then
            pass "$name (ASan+UBSan) echoes"
        else
            fail "$name (ASan+UBSan) echo"; cat "$OUT/$name.asan.check.log"
        fi
        stop "$name.asan" INT
        if grep -qE "$SAN_REPORT" "$OUT/$name.asan.run.log.err" "$OUT/$name.asan.check.log"; then
            fail "$name: sanitizers reported problems"
            grep -hE -A30 'ERROR: |runtime error:' "$OUT/$name.asan.run.log.err" "$OUT/$name.asan.check.log" | head -60
        else
            pass "$name and echo_check: no sanitizer reports"
        fi
    done
else
    fail "build echo_check with sanitizers"; cat "$OUT/echo_check.asan.build.log"
fi
for kind in so static; do
    log="$OUT/seed004_chat.$kind.run.log"
    if grep -q '^#1 connected$' "$log" && grep -q '^#1 says hello' "$log"; then
        pass "seed004_chat.$kind printed the seed's '#1 connected' and '#1 says ...' lines"
    else
        fail "seed004_chat.$kind output"; cat "$log"
    fi
done
# The CMake package: install into a temporary prefix, configure a separate
# project with find_package(wsserver), build a C and a C++ program (shared
# and static targets) and run them, with no LD_LIBRARY_PATH.
if command -v cmake >/dev/null; then
    CM=$(mktemp -d /tmp/wsserver-cmake.XXXXXX)
    if make -s install PREFIX="$CM/prefix" >"$OUT/cmake_install.log" 2>&1; then
        pass "make install PREFIX=$CM/prefix"
        for f in wsserver-config.cmake wsserver-config-version.cmake; do
            [ -f "$CM/prefix/lib/cmake/wsserver/$f" ] && pass "installed lib/cmake/wsserver/$f" || fail "lib/cmake/wsserver/$f missing"
        done
        if cmake -S tests/cpp/cmake_consumer -B "$CM/build" -DCMAKE_PREFIX_PATH="$CM/prefix" \
            -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" >"$OUT/cmake_configure.log" 2>&1 &&
            cmake --build "$CM/build" -j2 >"$OUT/cmake_build.log" 2>&1; then
            pass "CMake consumer: find_package(wsserver 0.1) configures and builds"
            for prog in consumer_c consumer_cpp consumer_cpp_static; do
                if env -u LD_LIBRARY_PATH "$CM/build/$prog" >"$OUT/$prog.log" 2>&1 && grep -q "^$prog ok\|^consumer_cpp ok" "$OUT/$prog.log"; then
                    pass "CMake consumer: $prog runs ($(head -1 "$OUT/$prog.log"))"
                else
                    fail "CMake consumer: $prog"; cat "$OUT/$prog.log"
                fi
            done
            if readelf -d "$CM/build/consumer_cpp_static" | grep -q 'NEEDED.*libwsserver'; then
                fail "consumer_cpp_static (wsserver::wsserver_static) needs libwsserver.so"
            else
                pass "wsserver::wsserver_static links libwsserver.a"
            fi
            if readelf -d "$CM/build/consumer_c" | grep -q 'NEEDED.*libwsserver.so.0'; then
                pass "wsserver::wsserver links the soname libwsserver.so.0"
            else
                fail "consumer_c does not need libwsserver.so.0"
            fi
        else
            fail "CMake consumer: configure/build"; cat "$OUT/cmake_configure.log" "$OUT/cmake_build.log" | tail -40
        fi
    else
        fail "make install for the CMake consumer"; cat "$OUT/cmake_install.log"
    fi
    rm -rf "$CM"
else
    fail "cmake is not installed (apt-get install cmake)"
fi
finish
