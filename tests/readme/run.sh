#!/usr/bin/env bash
# Every code sample in README.md is compiled (tests/readme/extract.py finds
# the fenced blocks):
#   ```c       a complete program, compiled with the examples' warnings
#              (-Werror) against include/wsserver.h and linked against
#              target/release/libwsserver.so. A block right after a line
#              "<!-- fragment -->" is the body of a function with
#              `ws_server *srv` in scope (stdio.h and wsserver.h included),
#              compiled and linked the same way.
#   ```cpp     a complete C++17 program, compiled with g++ -std=c++17 and the
#              same warnings (-Werror) against bindings/cpp (wsserver.hpp,
#              websocket.hpp) and include/, linked like a C block. After
#              "<!-- fragment -->": the body of a function with
#              `wsserver::Server &server` in scope (<iostream>, <string>,
#              wsserver.hpp and websocket.hpp included), compiled the same.
#   ```cmake   a whole CMakeLists.txt of a project whose sources are app.cpp
#              and app.c (stubs written here: a C++ and a C program that
#              create a server); configured with CMAKE_PREFIX_PATH on a
#              temporary `make install`, built, and every executable it
#              made is run (they must start without LD_LIBRARY_PATH).
#   After "<!-- qt -->" (C++ and CMake blocks only), against the Qt binding,
#   with Qt 6 when found, else Qt 5 (pkg-config Qt6Core/Qt5Core); without
#   Qt the blocks are listed as skipped, with the reason:
#   ```cpp     a complete C++17 Qt program: one executable each in a CMake
#              project that takes bindings/qt through add_subdirectory (as
#              a user's project would), linked with wsserver::qt_libwebsocket
#              (so both <wsserver/QtServer.h> and seed 000's
#              "WebsocketServer.h"... are there), the same warnings
#              (-Werror); built in build/tests/readme/qt, kept between runs.
#   ```cmake   a whole CMakeLists.txt of a project whose sources are app.cpp
#              (a wsserver::QtServer program) and chat.cpp (a seed-000
#              program on WebsocketServer), stubs written here; configured
#              against a temporary `make install-qt`, built, and every
#              executable run without LD_LIBRARY_PATH. Needs Qt 6.
#   ```rust    a doctest: src/lib.rs includes README.md as the doc of
#              ReadmeDoctests; `cargo test --doc` compiles and runs it.
#   ```python  py_compile; a block that imports wsserver must also use only
#              names the package has (tests/readme/pynames.py, with
#              bindings/python on PYTHONPATH).
#   ```sh      bash -n.
#   ```text    not code; an unlabeled fence fails (rustdoc would take it
#              for Rust), and so does any other language (no checker).
# One line per block, then "N passed, M failed"; exit status non-zero on any
# failure.
set -u
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
CXX=${CXX:-g++}
PY=${PYTHON:-python3}
CFLAGS=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -Werror -O0)
CXXFLAGS=(-std=c++17 -Wall -Wextra -Wno-unused-parameter -Werror -O0)
LIB=target/release/libwsserver.so

passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [ -z "${2:-}" ] || sed 's/^/        /' <<<"$2" | head -n 15; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$LIB" ]; then
    cargo build --release --lib >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" | tail -n 20; }
fi
if [ ! -f "$LIB" ]; then
    echo "no $LIB: the library did not build"
    echo "0 passed, 1 failed"
    exit 1
fi

if ! "$PY" tests/readme/extract.py README.md "$tmp/blocks" >"$tmp/blocks.tsv" 2>"$tmp/extract.err"; then
    fail "README.md: cannot split into code blocks" "$(cat "$tmp/extract.err")"
    echo "$passed passed, $failed failed"
    exit 1
fi

# C: compile and link one block. $1 line, $2 mode, $3 file.
check_c() {
    local line=$1 mode=$2 file=$3 src="$tmp/c$1.c" out
    if [ "$mode" = fragment ]; then
        {
            printf '#include <stdio.h>\n#include <wsserver.h>\n'
            printf 'void readme_fragment(ws_server *srv);\nvoid readme_fragment(ws_server *srv) {\n'
            printf '#line %d "README.md"\n' "$line"
            cat "$file"
            printf '}\nint main(void) { readme_fragment(NULL); return 0; }\n'
        } >"$src"
    else
        { printf '#line %d "README.md"\n' "$line"; cat "$file"; } >"$src"
    fi
    if out=$("$CC" "${CFLAGS[@]}" -Iinclude -o "$tmp/c$line" "$src" -L"$(dirname "$LIB")" -lwsserver -lpthread 2>&1); then
        pass "README.md:$line c $mode: compiled and linked"
    else
        fail "README.md:$line c $mode: does not compile or link" "$out"
    fi
}

# C++: compile and link one block. $1 line, $2 mode, $3 file.
check_cpp() {
    local line=$1 mode=$2 file=$3 src="$tmp/cpp$1.cpp" out
    if ! command -v "$CXX" >/dev/null; then
        fail "README.md:$line cpp: no C++ compiler ($CXX)"
        return
    fi
    if [ "$mode" = fragment ]; then
        {
            printf '#include <iostream>\n#include <string>\n#include <wsserver.hpp>\n#include <websocket.hpp>\n'
            printf 'void readme_fragment(wsserver::Server &server);\nvoid readme_fragment(wsserver::Server &server) {\n'
            printf '#line %d "README.md"\n' "$line"
            cat "$file"
            printf '}\nint main() { wsserver::Server server; readme_fragment(server); return 0; }\n'
        } >"$src"
    else
        { printf '#line %d "README.md"\n' "$line"; cat "$file"; } >"$src"
    fi
    if out=$("$CXX" "${CXXFLAGS[@]}" -Iinclude -Ibindings/cpp -o "$tmp/cpp$line" "$src" -L"$(dirname "$LIB")" -lwsserver -lpthread 2>&1); then
        pass "README.md:$line cpp $mode: compiled and linked"
    else
        fail "README.md:$line cpp $mode: does not compile or link" "$out"
    fi
}

# The Qt the Qt blocks use: 6 when found, else 5; "" when neither is.
qt_major() {
    local v
    for v in 6 5; do
        if pkg-config --exists "Qt${v}Core" "Qt${v}Network" 2>/dev/null; then
            echo "$v"
            return
        fi
    done
}
QTV=$(qt_major)

# CMake: configure, build and run one block against $tmp/prefix. $1 line,
# $2 file, $3 mode (qt: against `make install-qt`, Qt stubs).
check_cmake() {
    local line=$1 file=$2 mode=${3:-program} dir="$tmp/cmake$1" out bin ran=0 what=cmake
    [ "$mode" = qt ] && what="cmake qt"
    if ! command -v cmake >/dev/null; then
        fail "README.md:$line $what: cmake is not installed"
        return
    fi
    if [ "$mode" = qt ] && ! pkg-config --exists Qt6Core Qt6Network 2>/dev/null; then
        printf 'skip  README.md:%s %s: Qt 6 (Core, Network) not found by pkg-config\n' "$line" "$what"
        return
    fi
    if [ ! -d "$tmp/prefix" ] && ! out=$(make -s install PREFIX="$tmp/prefix" 2>&1); then
        fail "README.md:$line $what: make install PREFIX=$tmp/prefix failed" "$out"
        return
    fi
    if [ "$mode" = qt ] && [ ! -f "$tmp/prefix/lib/cmake/wsserver_qt/wsserver_qt-config.cmake" ] &&
        ! out=$(make -s install-qt PREFIX="$tmp/prefix" 2>&1); then
        fail "README.md:$line $what: make install-qt PREFIX=$tmp/prefix failed" "$(tail -n 15 <<<"$out")"
        return
    fi
    mkdir -p "$dir"
    cp "$file" "$dir/CMakeLists.txt"
    if [ "$mode" = qt ]; then
        cat >"$dir/app.cpp" <<'QTAPP'
#include <wsserver/QtServer.h>
#include <QCoreApplication>
#include <cstdio>
int main(int argc, char **argv) {
    QCoreApplication app(argc, argv);
    wsserver::QtServer server;
    if (!server.listen(QHostAddress::LocalHost, 0)) return 1;
    server.close();
    printf("QtServer on Qt %s, wsserver %s\n", qVersion(), ws_version());
    return 0;
}
QTAPP
        cat >"$dir/chat.cpp" <<'QTCHAT'
#include "SslHandler.h"
#include "WebsocketServer.h"
#include <QCoreApplication>
#include <cstdio>
int main(int argc, char **argv) {
    QCoreApplication app(argc, argv);
    WebsocketServer server;
    if (!server.listen(QHostAddress("127.0.0.1"), 0)) return 1;
    server.close();
    printf("WebsocketServer on Qt %s\n", qVersion());
    return 0;
}
QTCHAT
    else
        printf '#include <wsserver.hpp>\n#include <iostream>\nint main() { wsserver::Server s; std::cout << wsserver::version() << "\\n"; }\n' >"$dir/app.cpp"
        printf '#include <wsserver.h>\n#include <stdio.h>\nint main(void) { ws_server *s = ws_server_new(NULL, NULL); puts(ws_version()); ws_server_free(s); return 0; }\n' >"$dir/app.c"
    fi
    if ! out=$(cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" 2>&1 && cmake --build "$dir/build" 2>&1); then
        fail "README.md:$line $what: does not configure or build" "$(tail -n 15 <<<"$out")"
        return
    fi
    for bin in $(find "$dir/build" -maxdepth 1 -type f -executable); do
        if ! out=$(env -u LD_LIBRARY_PATH QT_QPA_PLATFORM=offscreen timeout 30 "$bin" 2>&1); then
            fail "README.md:$line $what: $(basename "$bin") does not run" "$out"
            return
        fi
        ran=$((ran + 1))
    done
    pass "README.md:$line $what: configured against an installed prefix, built, $ran program(s) ran"
}

# Qt C++ blocks: collected by the main loop, then built together (one
# executable each) against bindings/qt in build/tests/readme/qt.
qt_lines=() qt_files=()
check_qt_cpp() {
    local dir=build/tests/readme/qt line out i
    if [ ${#qt_lines[@]} -eq 0 ]; then
        return
    fi
    if [ -z "$QTV" ] || ! command -v cmake >/dev/null; then
        for line in "${qt_lines[@]}"; do
            printf 'skip  README.md:%s cpp qt: %s\n' "$line" \
                "$(command -v cmake >/dev/null && echo 'no Qt 6 or Qt 5 (Core, Network) found by pkg-config' || echo 'cmake is not installed')"
        done
        return
    fi
    mkdir -p "$dir/src"
    rm -f "$dir"/src/*.cpp
    {
        echo 'cmake_minimum_required(VERSION 3.16)'
        echo 'project(readme_qt CXX)'
        echo 'set(CMAKE_CXX_STANDARD 17)'
        echo 'set(CMAKE_CXX_STANDARD_REQUIRED ON)'
        echo "add_subdirectory(\"$PWD/bindings/qt\" wsserver_qt)"
    } >"$dir/src/CMakeLists.txt"
    for i in "${!qt_lines[@]}"; do
        line=${qt_lines[$i]}
        { printf '#line %d "README.md"\n' "$line"; cat "${qt_files[$i]}"; } >"$dir/src/readme_$line.cpp"
        {
            echo "add_executable(readme_$line readme_$line.cpp)"
            echo "target_compile_options(readme_$line PRIVATE ${CXXFLAGS[*]:1})"
            echo "target_link_libraries(readme_$line PRIVATE wsserver::qt_libwebsocket)"
        } >>"$dir/src/CMakeLists.txt"
    done
    if ! out=$(cmake -S "$dir/src" -B "$dir/build" -DQT_MAJOR_VERSION="$QTV" -DCMAKE_BUILD_TYPE=Debug 2>&1) ||
        ! out=$(cmake --build "$dir/build" --target wsserver_qt${QTV}_libwebsocket -j2 2>&1); then
        for line in "${qt_lines[@]}"; do
            fail "README.md:$line cpp qt: bindings/qt does not configure or build with Qt $QTV" "$(tail -n 15 <<<"$out")"
        done
        return
    fi
    for line in "${qt_lines[@]}"; do
        if out=$(cmake --build "$dir/build" --target "readme_$line" 2>&1); then
            pass "README.md:$line cpp qt: compiled and linked against bindings/qt (Qt $QTV)"
        else
            fail "README.md:$line cpp qt: does not compile or link (Qt $QTV)" "$(grep -E 'error|Error' <<<"$out" | head -n 15)"
        fi
    done
}

rust_lines=()
while IFS=$'\t' read -r line lang mode file; do
    base=${lang%%,*}
    if [ "$mode" = fragment ] && [ "$base" != c ] && [ "$base" != cpp ]; then
        fail "README.md:$line $lang: <!-- fragment --> is for C and C++ blocks only"
        continue
    fi
    if [ "$mode" = qt ] && [ "$base" != cpp ] && [ "$base" != cmake ]; then
        fail "README.md:$line $lang: <!-- qt --> is for C++ and CMake blocks only"
        continue
    fi
    case $base in
        c) check_c "$line" "$mode" "$file" ;;
        cpp)
            if [ "$mode" = qt ]; then
                qt_lines+=("$line")
                qt_files+=("$file")
            else
                check_cpp "$line" "$mode" "$file"
            fi ;;
        cmake) check_cmake "$line" "$file" "$mode" ;;
        rust)
            case ",$lang," in
                *,ignore,* | *,compile_fail,* | *,text,*)
                    fail "README.md:$line $lang: this attribute makes rustdoc skip the block" ;;
                *) rust_lines+=("$line") ;;
            esac ;;
        python)
            if ! out=$("$PY" -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' \
                "$file" "$tmp/py$line.pyc" 2>&1); then
                fail "README.md:$line python: does not compile" "$out"
            elif ! grep -qE '^\s*(import|from) wsserver' "$file"; then
                pass "README.md:$line python: py_compile"
            elif ! out=$(PYTHONPATH=bindings/python "$PY" -c 'import wsserver' 2>&1); then
                fail "README.md:$line python: compiles, but the wsserver package (bindings/python) does not import" "$out"
            elif out=$(PYTHONPATH=bindings/python "$PY" tests/readme/pynames.py "$file" 2>&1); then
                pass "README.md:$line python: py_compile, $out"
            else
                fail "README.md:$line python: uses names the wsserver package lacks" "$out"
            fi ;;
        sh | bash)
            if out=$(bash -n "$file" 2>&1); then
                pass "README.md:$line sh: bash -n"
            else
                fail "README.md:$line sh: syntax error" "$out"
            fi ;;
        text) printf 'text  README.md:%s not code\n' "$line" ;;
        "") fail "README.md:$line: unlabeled code block (rustdoc compiles it as Rust): label it, e.g. \`\`\`text" ;;
        *) fail "README.md:$line $lang: no checker for this language" ;;
    esac
done <"$tmp/blocks.tsv"

check_qt_cpp

# Rust: the doctests of ReadmeDoctests, one per ```rust block, in order.
if [ ${#rust_lines[@]} -gt 0 ]; then
    cargo test --release --doc -- ReadmeDoctests >"$tmp/doctest.log" 2>&1
    mapfile -t results < <(grep -E '^test src/lib.rs - ReadmeDoctests \(line [0-9]+\)' "$tmp/doctest.log" |
        sort -t'(' -k2 -V | sed -E 's/.* \.\.\. (.*)$/\1/')
    if [ ${#results[@]} -ne ${#rust_lines[@]} ]; then
        fail "README.md rust: ${#rust_lines[@]} block(s) but ${#results[@]} ReadmeDoctests doctest(s) ran" \
            "$(grep -vE '^\s*(Compiling|Blocking)' "$tmp/doctest.log" | tail -n 15)"
    else
        for i in "${!rust_lines[@]}"; do
            if [ "${results[$i]}" = ok ]; then
                pass "README.md:${rust_lines[$i]} rust: doctest compiled and ran"
            else
                fail "README.md:${rust_lines[$i]} rust: doctest ${results[$i]}" \
                    "$(sed -n '/^failures:/,/^test result/p' "$tmp/doctest.log" | head -n 30)"
            fi
        done
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
