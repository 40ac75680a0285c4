#!/usr/bin/env bash
# Installs wsserver into a temporary prefix (make install PREFIX=...) and
# uses it as a new user would:
# - what is installed: header, C++ headers, example_common.h, .pc, soname
#   links, exported symbols, the examples under share/wsserver/examples;
# - the libraries are stripped (size bounds below, no .debug_* sections) and
#   the shared library's debug info is in lib/.debug/, named by its
#   .gnu_debuglink with the right CRC, holding DWARF for src/ (and gdb, when
#   present, finds it without being told);
# - an example copied alone out of share/wsserver/examples/c (and one out of
#   examples-c/) builds with only `pkg-config --cflags --libs wsserver`, its
#   RUNPATH is the installed lib, and it runs WITHOUT LD_LIBRARY_PATH: the
#   "listening on" line, an echo (Python websockets client), SIGTERM -> 0;
#   the same for the C++ echo example (g++ -std=c++17, pkg-config);
# - a static build from the installed libwsserver.a with `pkg-config --static`;
# - DESTDIR staging; PREFIX=/usr and RPATH=0 leave the rpath out of the .pc.
# Last line: "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check "what" command...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

PREFIX=$(mktemp -d /tmp/wsserver-install.XXXXXX)
WORK=$(mktemp -d /tmp/wsserver-install-work.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -9 "$SERVER_PID" 2>/dev/null; fi
    rm -rf "$PREFIX" "$WORK"
}
trap cleanup EXIT
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit $?
}

if ! command -v pkg-config >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq pkg-config) >/dev/null 2>&1 || true
fi
command -v pkg-config >/dev/null || { fail "pkg-config is not available"; finish; }

if make -s install PREFIX="$PREFIX" >"$WORK/install.log" 2>&1; then
    pass "make install PREFIX=$PREFIX"
else
    fail "make install PREFIX=$PREFIX"
    cat "$WORK/install.log"
    finish
fi
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR=${VERSION%%.*}

# What is installed.
check "header installed" test -f "$PREFIX/include/wsserver.h"
check "pkg-config file installed" test -f "$PREFIX/lib/pkgconfig/wsserver.pc"
check "libwsserver.so.$VERSION installed" test -f "$PREFIX/lib/libwsserver.so.$VERSION"
check "libwsserver.so.$MAJOR -> libwsserver.so.$VERSION" \
    test "$(readlink "$PREFIX/lib/libwsserver.so.$MAJOR")" = "libwsserver.so.$VERSION"
check "libwsserver.so -> libwsserver.so.$MAJOR" test "$(readlink "$PREFIX/lib/libwsserver.so")" = "libwsserver.so.$MAJOR"
check "libwsserver.a installed" test -f "$PREFIX/lib/libwsserver.a"
check "installed header is the source header" cmp -s include/wsserver.h "$PREFIX/include/wsserver.h"
for f in wsserver.hpp websocket.hpp; do
    check "include/wsserver/$f is bindings/cpp/$f" cmp -s "bindings/cpp/$f" "$PREFIX/include/wsserver/$f"
done
check "include/wsserver/example_common.h installed" cmp -s examples-c/example_common.h "$PREFIX/include/wsserver/example_common.h"
for f in examples-c/*.c examples-c/example_common.h examples-c/example_web.h; do
    check "share/wsserver/examples/c/$(basename "$f") installed" cmp -s "$f" "$PREFIX/share/wsserver/examples/c/$(basename "$f")"
done
for f in examples-cpp/*.cpp; do
    check "share/wsserver/examples/cpp/$(basename "$f") installed" cmp -s "$f" "$PREFIX/share/wsserver/examples/cpp/$(basename "$f")"
done

# Stripped libraries, debug info apart. Measured at 0.1.0: .so 3.4 MB (24 MB
# unstripped), .a 16 MB (100 MB: debug info and the LLVM bitcode of Rust's
# std objects), debug file 5.8 MB (zlib-compressed DWARF).
SO_MAX=$((6 * 1024 * 1024))
A_MAX=$((28 * 1024 * 1024))
so_size=$(stat -c %s "$PREFIX/lib/libwsserver.so.$VERSION")
a_size=$(stat -c %s "$PREFIX/lib/libwsserver.a")
echo "installed sizes: libwsserver.so.$VERSION $so_size bytes, libwsserver.a $a_size bytes (build tree: $(stat -c %s target/release/libwsserver.so), $(stat -c %s target/release/libwsserver.a))"
check "installed libwsserver.so.$VERSION is under 6 MiB ($so_size bytes)" test "$so_size" -lt "$SO_MAX"
check "installed libwsserver.a is under 28 MiB ($a_size bytes)" test "$a_size" -lt "$A_MAX"
check "installed libwsserver.so.$VERSION has no .debug_* sections" \
    bash -c "! readelf -SW '$PREFIX/lib/libwsserver.so.$VERSION' | grep -qE '\] +\.debug_'"
check "installed libwsserver.a has no .debug_* or .llvmbc sections" \
    bash -c "! readelf -SW '$PREFIX/lib/libwsserver.a' | grep -qE '\] +\.(debug_|llvmbc)'"
check "installed libwsserver.so.$VERSION keeps its symbol table (backtraces name functions)" \
    bash -c "readelf -SW '$PREFIX/lib/libwsserver.so.$VERSION' | grep -q ' \.symtab '"
DBG="$PREFIX/lib/.debug/libwsserver.so.$VERSION.debug"
check "debug info installed as lib/.debug/libwsserver.so.$VERSION.debug" test -f "$DBG"
link=$(readelf -x .gnu_debuglink "$PREFIX/lib/libwsserver.so.$VERSION" 2>/dev/null |
    "$PY" -c '
import sys, re
raw = b"".join(bytes.fromhex("".join(m.group(1).split())) for m in re.finditer(r"^\s*0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ){1,4})", sys.stdin.read(), re.M))
name, _, rest = raw.partition(b"\0")
crc = int.from_bytes(raw[(len(name) + 4) // 4 * 4:][:4], "little")
print(name.decode(), "%08x" % crc)')
link_name=${link% *}
link_crc=${link#* }
file_crc=$("$PY" -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$DBG" 2>/dev/null)
check ".gnu_debuglink names $(basename "$DBG") (got '$link_name')" test "$link_name" = "$(basename "$DBG")"
check ".gnu_debuglink CRC matches the debug file ($link_crc vs $file_crc)" test -n "$file_crc" -a "$link_crc" = "$file_crc"
check "the debug file has DWARF for src/ (readelf --debug-dump=info)" \
    bash -c "readelf --debug-dump=info '$DBG' 2>/dev/null | grep -m1 -q 'DW_AT_name.*src/lib\.rs'"
if command -v gdb >/dev/null; then
    gdbout=$(gdb -nx -batch -ex 'info line ws_server_new_sized' "$PREFIX/lib/libwsserver.so.$VERSION" 2>&1)
    check "gdb finds the debug info by itself (info line ws_server_new_sized: $(head -c 60 <<<"$gdbout"))" \
        grep -q 'src/ffi/server.rs' <<<"$gdbout"
else
    echo "note: no gdb: its lookup of lib/.debug is not tried"
fi
soname=$(readelf -d "$PREFIX/lib/libwsserver.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname is libwsserver.so.0 (got '$soname')" test "$soname" = "libwsserver.so.0"
syms=$(nm -D --defined-only "$PREFIX/lib/libwsserver.so.$VERSION" | awk '{print $3}' | grep '^ws_' | sort -u)
declared=$(sed -nE 's/^[a-z].*[ *](ws_[a-z0-9_]+)\(.*/\1/p' "$PREFIX/include/wsserver.h" | sort -u)
missing=$(comm -13 <(echo "$syms") <(echo "$declared") | tr '\n' ' ')
extra=$(comm -23 <(echo "$syms") <(echo "$declared") | tr '\n' ' ')
check "every function of the installed header is exported ($(wc -w <<<"$declared") functions; missing: ${missing:-none})" \
    test -z "$missing"
check "every exported ws_* symbol is declared in the header (undeclared: ${extra:-none})" test -z "$extra"
for f in ws_version ws_result_name ws_last_error ws_server_new ws_server_free ws_server_set_option \
    ws_server_set_subprotocols ws_server_listen ws_server_port ws_server_send ws_server_broadcast \
    ws_server_disconnect ws_server_queued_bytes ws_server_close ws_request_path ws_request_query \
    ws_request_header ws_request_peer ws_request_subprotocol; do
    grep -qx "$f" <<<"$syms" || fail "the installed library exports $f"
done
nonws=$(nm -D --defined-only "$PREFIX/lib/libwsserver.so.$VERSION" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^ws_' |
    grep -vE '^(_init|_fini|__bss_start|_edata|_end)$' | head -5 | tr '\n' ' ')
check "no other global functions or data are exported (got: ${nonws:-none})" test -z "$nonws"

# pkg-config answers from the installed .pc only.
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
export PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig"
check "pkg-config --modversion wsserver = $VERSION" test "$(pkg-config --modversion wsserver 2>/dev/null)" = "$VERSION"
CFLAGS_PC=$(pkg-config --cflags wsserver)
LIBS_PC=$(pkg-config --libs wsserver)
echo "pkg-config --cflags --libs wsserver: $CFLAGS_PC $LIBS_PC"
check "pkg-config --cflags points into the prefix" grep -q -- "-I$PREFIX/include" <<<"$CFLAGS_PC"
check "pkg-config --libs points into the prefix" grep -q -- "-L$PREFIX/lib" <<<"$LIBS_PC"
check "pkg-config --libs carries -Wl,-rpath,$PREFIX/lib" grep -q -- "-Wl,-rpath,$PREFIX/lib" <<<"$LIBS_PC"
check "pkg-config --cflags names include/wsserver (C++ headers, example_common.h)" \
    grep -q -- "-I$PREFIX/include/wsserver" <<<"$CFLAGS_PC"

# Build the example from a copy outside the source tree, so that nothing but
# pkg-config's flags can find the headers or the library: the installed
# example alone (example_common.h comes from include/wsserver/).
cp "$PREFIX/share/wsserver/examples/c/echo_server.c" "$WORK/"
# shellcheck disable=SC2046
if (cd "$WORK" && gcc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -O2 -o echo_server echo_server.c \
    $(pkg-config --cflags --libs wsserver)) >"$WORK/build.log" 2>&1; then
    pass "echo_server.c builds with pkg-config --cflags --libs wsserver"
else
    fail "echo_server.c builds with pkg-config --cflags --libs wsserver"
    cat "$WORK/build.log"
    finish
fi
needed=$(readelf -d "$WORK/echo_server" | sed -n 's/.*(NEEDED).*\[\(libwsserver[^]]*\)\].*/\1/p')
check "the binary needs libwsserver.so.0 (got '$needed')" test "$needed" = "libwsserver.so.0"
runpath=$(readelf -d "$WORK/echo_server" | sed -n 's/.*R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
check "the binary's run path is the installed lib only (got '$runpath')" test "$runpath" = "$PREFIX/lib"
resolved=$(env -u LD_LIBRARY_PATH ldd "$WORK/echo_server" | awk '/libwsserver/ {print $3}')
check "without LD_LIBRARY_PATH it resolves to the installed copy ($resolved)" \
    test "$(readlink -f "$resolved")" = "$(readlink -f "$PREFIX/lib/libwsserver.so.$VERSION")"

# The same example copied alone out of the source tree's examples-c/.
mkdir -p "$WORK/from-source"
cp examples-c/poll_server.c "$WORK/from-source/"
# shellcheck disable=SC2046
if (cd "$WORK/from-source" && gcc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -O2 -o poll_server poll_server.c \
    $(pkg-config --cflags --libs wsserver)) >"$WORK/build-src.log" 2>&1; then
    pass "examples-c/poll_server.c copied alone builds with pkg-config (installed example_common.h)"
else
    fail "examples-c/poll_server.c copied alone builds with pkg-config"
    cat "$WORK/build-src.log"
fi

# The C++ echo example, copied alone, with g++ and the same flags.
mkdir -p "$WORK/cpp"
cp "$PREFIX/share/wsserver/examples/cpp/echo_server.cpp" "$PREFIX/share/wsserver/examples/cpp/seed004_chat.cpp" "$WORK/cpp/"
CXX_OK=
for ex in echo_server seed004_chat; do
    # shellcheck disable=SC2046
    if (cd "$WORK/cpp" && g++ -std=c++17 -Wall -Wextra -Werror -O2 -o "$ex" "$ex.cpp" \
        $(pkg-config --cflags --libs wsserver)) >"$WORK/build-cpp.log" 2>&1; then
        pass "examples/cpp/$ex.cpp copied alone builds with g++ -std=c++17 and pkg-config"
        CXX_OK=1
    else
        fail "examples/cpp/$ex.cpp copied alone builds with g++ -std=c++17 and pkg-config"
        cat "$WORK/build-cpp.log"
    fi
done

# The echo client, a tiny Python websockets script.
cat >"$WORK/echo_client.py" <<'PYEOF'
import asyncio, sys
from websockets.asyncio.client import connect
async def main(url):
    async with connect(url, proxy=None, open_timeout=10, close_timeout=10, ping_interval=None) as ws:
        await ws.send("installed hello")
        assert await asyncio.wait_for(ws.recv(), 10) == "installed hello"
        await ws.send(b"\x00\x01\x02")
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01\x02"
    print("echo ok")
asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
PYEOF

# Run it from the installed library.
run_server() { # run_server BINARY -> sets SERVER_PID, URL
    local bin=$1
    rm -f "$WORK/out" "$WORK/err"
    env -u LD_LIBRARY_PATH "$bin" 127.0.0.1 0 >"$WORK/out" 2>"$WORK/err" &
    SERVER_PID=$!
    URL=
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$WORK/out" 2>/dev/null; then break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    local line
    line=$(head -1 "$WORK/out" 2>/dev/null)
    if [[ $line =~ ^listening\ on\ (ws://127\.0\.0\.1:[0-9]+)$ ]]; then
        URL=${BASH_REMATCH[1]}
        pass "$(basename "$bin") prints '$line'"
    else
        fail "$(basename "$bin") prints 'listening on ws://127.0.0.1:PORT' (got '$line'; stderr: $(head -3 "$WORK/err"))"
    fi
}
stop_server() { # SIGTERM, expect exit 0 within 10 s
    local name=$1
    kill -TERM "$SERVER_PID" 2>/dev/null
    local rc=
    for _ in $(seq 200); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID"
            rc=$?
            break
        fi
        sleep 0.05
    done
    if [ -z "$rc" ]; then
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        fail "$name exits after SIGTERM (still running after 10 s)"
    else
        check "$name exits with status 0 after SIGTERM (got $rc)" test "$rc" -eq 0
    fi
    SERVER_PID=
}
check_echo() { # check_echo "what": the echo client against $URL (set by run_server)
    [ -n "$URL" ] || return
    if timeout 40 "$PY" "$WORK/echo_client.py" "$URL" >"$WORK/client.log" 2>&1; then
        pass "$1"
    else
        fail "$1:"
        cat "$WORK/client.log"
    fi
}

run_server "$WORK/echo_server"
check_echo "the installed echo_server echoes without LD_LIBRARY_PATH (python websockets client)"
stop_server "echo_server (shared)"
if [ -x "$WORK/cpp/echo_server" ]; then
    run_server "$WORK/cpp/echo_server"
    check_echo "the C++ echo_server echoes without LD_LIBRARY_PATH"
    stop_server "echo_server (C++)"
fi

# A static build: the installed libwsserver.a plus what `pkg-config --static`
# lists as private libraries must be enough.
PRIVATE=$(pkg-config --static --libs-only-l wsserver | sed 's/-lwsserver//')
echo "pkg-config --static --libs-only-l wsserver (minus -lwsserver): $PRIVATE"
# shellcheck disable=SC2046,SC2086
if (cd "$WORK" && gcc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -O2 -o echo_server_static echo_server.c \
    $(pkg-config --cflags wsserver) "$PREFIX/lib/libwsserver.a" $PRIVATE) >"$WORK/build-static.log" 2>&1; then
    pass "echo_server.c links statically with libwsserver.a and pkg-config --static's libraries"
    check "the static binary does not need libwsserver.so" \
        bash -c "! readelf -d '$WORK/echo_server_static' | grep -q 'NEEDED.*libwsserver'"
    run_server "$WORK/echo_server_static"
    check_echo "the static echo_server echoes"
    stop_server "echo_server (static)"
else
    fail "echo_server.c links statically with libwsserver.a and pkg-config --static's libraries"
    cat "$WORK/build-static.log"
fi

# DESTDIR staging puts the same tree under DESTDIR with the final prefix in the .pc.
STAGE="$WORK/stage"
if make -s install DESTDIR="$STAGE" PREFIX=/opt/wsserver >"$WORK/destdir.log" 2>&1; then
    check "make install DESTDIR=... PREFIX=/opt/wsserver stages the library" \
        test -f "$STAGE/opt/wsserver/lib/libwsserver.so.$VERSION"
    check "the staged .pc names the final prefix" grep -q '^prefix=/opt/wsserver$' "$STAGE/opt/wsserver/lib/pkgconfig/wsserver.pc"
    check "the staged .pc's rpath is the final libdir" \
        grep -q '^Libs: -L${libdir} -Wl,-rpath,${libdir} -lwsserver$' "$STAGE/opt/wsserver/lib/pkgconfig/wsserver.pc"
else
    fail "make install DESTDIR=... PREFIX=/opt/wsserver"
    cat "$WORK/destdir.log"
fi
rm -rf "$STAGE"
# PREFIX=/usr: the loader's own directory, no rpath; RPATH=0 leaves it out anywhere.
for args in "PREFIX=/usr" "PREFIX=/opt/wsserver RPATH=0"; do
    # shellcheck disable=SC2086
    if make -s install DESTDIR="$STAGE" $args >"$WORK/destdir.log" 2>&1; then
        pc=$(find "$STAGE" -name wsserver.pc)
        check "make install $args: .pc without rpath ($(grep '^Libs:' "$pc"))" \
            grep -q '^Libs: -L${libdir} -lwsserver$' "$pc"
    else
        fail "make install DESTDIR=... $args"
        cat "$WORK/destdir.log"
    fi
    rm -rf "$STAGE"
done
finish
