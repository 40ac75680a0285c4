#!/usr/bin/env bash
# Builds the C tests (into build/tests/c/) against include/wsserver.h, links
# each one twice (libwsserver.so and libwsserver.a), runs both, then once
# more built with AddressSanitizer + UBSan against libwsserver.so, then runs
# the .so builds under valgrind (definite/indirect leaks and any error fail).
# Last line: "N passed, M failed". Exit status non-zero on any failure.
#   WSTEST_VERBOSE=1   print every check
#   WSTEST_ASAN=0      skip the sanitizer pass
#   WSTEST_VALGRIND=0  skip the valgrind pass
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=build/tests/c
REL=target/release
CC=${CC:-gcc}
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

if [ ! -f "$REL/libwsserver.so" ] || [ ! -f "$REL/libwsserver.a" ]; then
    make -s lib >/dev/null 2>&1 || true
fi
if [ ! -f "$REL/libwsserver.so" ] || [ ! -f "$REL/libwsserver.a" ]; then
    fail "libwsserver.so/.a missing: run make first"
    finish
fi

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
CFLAGS="-std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Itests/c -DEXPECTED_VERSION=\"$VERSION\""
COMMON="tests/c/check.c tests/c/client.c tests/c/events.c tests/c/evq.c"
TESTS="test_api test_traffic test_backpressure test_lifecycle test_sigpipe test_tls test_abi test_events test_event_backpressure test_send_limit test_stress test_topics test_stats test_handshake test_http test_deflate test_backplane test_budget"

for t in $TESTS; do
    # shellcheck disable=SC2086
    if $CC $CFLAGS -o "$OUT/$t.so" "tests/c/$t.c" $COMMON -L"$REL" -lwsserver -Wl,-rpath,"$ROOT/$REL" -lpthread \
        >"$OUT/$t.build.log" 2>&1; then
        pass "build $t against libwsserver.so"
    else
        fail "build $t against libwsserver.so (see $OUT/$t.build.log)"
        cat "$OUT/$t.build.log"
    fi
    # shellcheck disable=SC2086
    if $CC $CFLAGS -o "$OUT/$t.static" "tests/c/$t.c" $COMMON "$REL/libwsserver.a" -lpthread -ldl -lm \
        >"$OUT/$t.static.build.log" 2>&1; then
        pass "build $t against libwsserver.a"
        if readelf -d "$OUT/$t.static" | grep -q 'NEEDED.*libwsserver'; then
            fail "$t.static still needs libwsserver.so"
        fi
    else
        fail "build $t against libwsserver.a (see $OUT/$t.static.build.log)"
        cat "$OUT/$t.static.build.log"
    fi
done

# Certificates for test_tls (scripts/make-certs.sh, needs the openssl tool).
if [ -f "$OUT/certs/server.pem" ] && [ -f "$OUT/certs/ed448.key" ]; then
    export WSTEST_CERTS="$ROOT/$OUT/certs"
elif command -v openssl >/dev/null && [ -f scripts/make-certs.sh ] &&
    bash scripts/make-certs.sh "$OUT/certs" >"$OUT/certs.log" 2>&1; then
    export WSTEST_CERTS="$ROOT/$OUT/certs"
else
    echo "note: no certificates (openssl missing?): test_tls checks arguments only"
fi

# Runs one test binary; adds its "N passed, M failed" to the totals.
run_one() {
    local name=$1 log=$2
    shift 2
    local start=$SECONDS
    "$@" >"$log" 2>&1
    summarize "$name" "$log" $? $((SECONDS - start))
}

# Starts one test binary in the background, at most WSTEST_JOBS (2) at
# once (the sanitizer and valgrind passes: each run is mostly one busy
# thread); `collect` reports it once all are done.
run_bg() { # log command...
    local log=$1
    shift
    rm -f "$log.rc"
    while [ "$(jobs -rp | wc -l)" -ge "${WSTEST_JOBS:-2}" ]; do wait -n; done
    (
        start=$SECONDS
        "$@" >"$log" 2>&1
        echo "$? $((SECONDS - start))" >"$log.rc"
    ) &
}
collect() { # name log
    local rc secs
    read -r rc secs <"$2.rc" 2>/dev/null || { rc=lost secs=0; }
    summarize "$1" "$2" "$rc" "$secs"
}

# A finished run's summary line, added to the totals.
summarize() { # name log rc seconds
    local name=$1 log=$2 rc=$3 secs=$4
    local line
    line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    local p f
    p=$(awk '{print $1}' <<<"$line")
    f=$(awk '{print $3}' <<<"$line")
    grep -E '^(FAIL|note)' "$log" | head -40
    if [ -z "$line" ]; then
        fail "$name: no summary (exit $rc, $secs s); tail of $log:"
        tail -20 "$log"
        return
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then
        fail "$name: exit status $rc"
        tail -20 "$log"
    else
        echo "---- $name: $p passed, $f failed ($secs s)"
    fi
}

for t in $TESTS; do
    for kind in so static; do
        [ -x "$OUT/$t.$kind" ] || continue
        run_one "$t ($kind)" "$OUT/$t.$kind.log" timeout -k 5 150 "$OUT/$t.$kind"
    done
done

# AddressSanitizer + UndefinedBehaviorSanitizer (gcc's libasan/libubsan):
# the test programs and the C client are instrumented, and since the test
# links -fsanitize, libasan loads first and every malloc/free (the Rust
# library's too) goes through it; the plain libwsserver.so is not
# instrumented. LeakSanitizer runs at exit. Any report fails the suite.
# The timeout scale (2) also skips test_event_backpressure's RSS bound,
# which ASan's shadow memory and quarantine would break.
if [ "${WSTEST_ASAN:-1}" != "0" ]; then
    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    for t in $TESTS; do
        rm -f "$OUT/$t.asan"
        # shellcheck disable=SC2086
        if ! $CC $CFLAGS $SAN -o "$OUT/$t.asan" "tests/c/$t.c" $COMMON -L"$REL" -lwsserver -Wl,-rpath,"$ROOT/$REL" \
            -lpthread >"$OUT/$t.asan.build.log" 2>&1; then
            fail "build $t with $SAN (see $OUT/$t.asan.build.log)"
            cat "$OUT/$t.asan.build.log"
            continue
        fi
        ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 WSTEST_TIMEOUT_SCALE=2 \
            run_bg "$OUT/$t.asan.log" timeout -k 5 300 "$OUT/$t.asan"
    done
    wait
    for t in $TESTS; do
        [ -x "$OUT/$t.asan" ] || continue
        alog="$OUT/$t.asan.log"
        collect "$t (ASan+UBSan)" "$alog"
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' \
            "$alog"; then
            fail "$t: sanitizers reported problems:"
            grep -E -A30 'ERROR: |runtime error:' "$alog" | head -60
        else
            pass "$t: ASan+UBSan clean (no errors, no leaks)"
        fi
    done
fi

if [ "${WSTEST_VALGRIND:-1}" != "0" ]; then
    if ! command -v valgrind >/dev/null; then
        fail "valgrind is not installed (set WSTEST_VALGRIND=0 to skip)"
    else
        # test_sigpipe forks its servers (a child killed by a signal would
        # only show as leaks): it is not run under valgrind.
        for t in $TESTS; do
            [ "$t" = test_sigpipe ] && continue
            [ -x "$OUT/$t.so" ] || continue
            WSTEST_TIMEOUT_SCALE=${WSTEST_VALGRIND_SCALE:-8} run_bg "$OUT/$t.valgrind.out" \
                timeout -k 5 300 valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
                --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file="$OUT/$t.valgrind.log" "$OUT/$t.so"
        done
        wait
        for t in $TESTS; do
            [ "$t" = test_sigpipe ] && continue
            [ -x "$OUT/$t.so" ] || continue
            vlog="$OUT/$t.valgrind.log"
            collect "$t (valgrind)" "$OUT/$t.valgrind.out"
            if grep -qE 'ERROR SUMMARY: [1-9]|(definitely|indirectly) lost|Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched|Syscall param|overlap|Process terminating' \
                "$vlog" 2>/dev/null; then
                fail "$t: valgrind reported problems:"
                head -60 "$vlog"
            else
                pass "$t: valgrind clean (no errors, no definite/indirect leaks)"
            fi
        done
    fi
fi
finish
