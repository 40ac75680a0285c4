#!/usr/bin/env bash
# TLS through the C ABI: configuration errors from C, then wss with Python
# (`websockets` + `ssl`) against the tls_echo_server example and a C test
# server that reloads its certificate. Certificates are made fresh here.
set -u
cd "$(dirname "$0")/../.."
make -s all >/dev/null || exit 1
out=build/tests/tls
mkdir -p "$out"
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
bash scripts/make-certs.sh "$certs" >/dev/null || exit 1
cflags="-O1 -g -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude"
libs="-Ltarget/release -lwsserver -Wl,-rpath,$PWD/target/release -lpthread"
for prog in tls_config_errors tls_reload_server; do
    cc $cflags -o "$out/$prog" "tests/tls/$prog.c" $libs || exit 1
done
passed=0 failed=0
count() { # add the "N passed, M failed" line of a log to the totals
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    [ -n "$line" ] || failed=$((failed + 1))
}
"$out/tls_config_errors" "$certs" | tee "$out/config.log"; count "$out/config.log"
python3 tests/tls/test_wss.py "$certs" "$out" 2>&1 | tee "$out/wss.log"; count "$out/wss.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
