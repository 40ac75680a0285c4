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

# CMake: configure, build and run one block against $tmp/prefix. $1 line, $2 file.
check_cmake() {
    local line=$1 file=$2 dir="$tmp/cmake$1" out bin ran=0
    if ! command -v cmake >/dev/null; then
        fail "README.md:$line cmake: cmake is not installed"
        return
    fi
    if [ ! -d "$tmp/prefix" ] && ! out=$(make -s install PREFIX="$tmp/prefix" 2>&1); then
        fail "README.md:$line cmake: make install PREFIX=$tmp/prefix failed" "$out"
        return
    fi
    mkdir -p "$dir"
    cp "$file" "$dir/CMakeLists.txt"
    printf '#include <wsserver.hpp>\n#include <iostream>\nint main() { wsserver::Server s; std::cout << wsserver::version() << "\\n"; }\n' >"$dir/app.cpp"
    printf '#include <wsserver.h>\n#include <stdio.h>\nint main(void) { ws_server *s = ws_server_new(NULL, NULL); puts(ws_version()); ws_server_free(s); return 0; }\n' >"$dir/app.c"
    if ! out=$(cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" 2>&1 && cmake --build "$dir/build" 2>&1); then
        fail "README.md:$line cmake: does not configure or build" "$(tail -n 15 <<<"$out")"
        return
    fi
    for bin in $(find "$dir/build" -maxdepth 1 -type f -executable); do
        if ! out=$(env -u LD_LIBRARY_PATH "$bin" 2>&1); then
            fail "README.md:$line cmake: $(basename "$bin") does not run" "$out"
            return
        fi
        ran=$((ran + 1))
    done
    pass "README.md:$line cmake: configured against an installed prefix, built, $ran program(s) ran"
}

rust_lines=()
while IFS=$'\t' read -r line lang mode file; do
    base=${lang%%,*}
    if [ "$mode" = fragment ] && [ "$base" != c ] && [ "$base" != cpp ]; then
        fail "README.md:$line $lang: <!-- fragment --> is for C and C++ blocks only"
        continue
    fi
    case $base in
        c) check_c "$line" "$mode" "$file" ;;
        cpp) check_cpp "$line" "$mode" "$file" ;;
        cmake) check_cmake "$line" "$file" ;;
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
