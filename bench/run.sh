#!/usr/bin/env bash
# Builds the load generator and every peer server (those named with --only),
# then runs all workloads against all servers, one server at a time (see
# bench/README.md).
#
#   bash bench/run.sh [--quick] [extra wsbench arguments, e.g. --only raw-tcp]
#
# Output: a table on stdout, build/bench/results.json, build/bench/chart.png.
# A peer that cannot be built or installed becomes a "skipped: <reason>" row.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$root/build/bench"
cd "$root"

args=("$@")
# With --only, only the servers named are built (the quick run in `make
# test` asks for four, and building the rest took it minutes).
only=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --only) only=${args[i + 1]:-} ;;
    --only=*) only=${args[i]#--only=} ;;
  esac
done
wanted() { # wanted NAME...: true if any NAME is to be measured
  [[ -z $only ]] && return 0
  local n
  for n in "$@"; do [[ ,$only, == *,$n,* ]] && return 0; done
  return 1
}
mkdir -p "$out/bin" "$out/skip" "$out/logs"
rm -f "$out"/skip/*.txt

say() { echo "[run.sh] $*" >&2; }
skip() { # skip NAME REASON
  say "$1 skipped: $2"
  echo "$2" >"$out/skip/$1.txt"
}
# Rebuild a peer only when its source is newer than its binary.
stale() { [[ ! -x $1 || $2 -nt $1 ]]; }
last_line() { grep -v '^\s*$' "$1" | grep -iE 'error|fatal|not found|No such' | head -n 1 | cut -c1-200; }

# Enough file descriptors for 100k connections on each side, when allowed.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
say "fd limit: $(ulimit -n)"

# 1. The load generator and the Rust peers.
say "cargo build --release -p wsbench"
if ! cargo build --release -p wsbench 2>"$out/logs/build-wsbench.log"; then
  cat "$out/logs/build-wsbench.log" >&2
  say "the load generator did not build: nothing to measure"
  exit 1
fi
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$root/target")
bins="$target_dir/release"

# The wsserver Rust-API peer needs the core crate to build.
if wanted wsserver-rust; then
  say "cargo build --release -p wsbench --features wsserver-api --bin wsserver_echo"
fi
if wanted wsserver-rust && ! cargo build --release -p wsbench --features wsserver-api --bin wsserver_echo 2>"$out/logs/build-wsserver_echo.log"; then
  skip wsserver-rust "Rust-API peer did not build: $(last_line "$out/logs/build-wsserver_echo.log") (log: build/bench/logs/build-wsserver_echo.log)"
fi

# 2. wsserver through its C API: built by the root Makefile.
if [[ ! -x build/examples/echo_server ]]; then
  skip wsserver-c "build/examples/echo_server not built (run make first)"
fi
#    Its broadcast row: bench/peers/wsserver_publish.c (topics), on the same
#    library. Without it only that row is skipped (skip/wsserver-c-publish.txt).
so="$target_dir/release/libwsserver.so"
if ! wanted wsserver-c; then
  :
elif [[ ! -f $so ]]; then
  skip wsserver-c-publish "$so not built (run make first)"
elif { stale "$out/bin/wsserver_publish" bench/peers/wsserver_publish.c || stale "$out/bin/wsserver_publish" "$so" ||
  stale "$out/bin/wsserver_publish" include/wsserver.h; } &&
  ! gcc -O2 -g -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -o "$out/bin/wsserver_publish" \
    bench/peers/wsserver_publish.c -L"$target_dir/release" -lwsserver -Wl,-rpath,"$target_dir/release" -lpthread \
    2>"$out/logs/build-wsserver_publish.log"; then
  rm -f "$out/bin/wsserver_publish"
  skip wsserver-c-publish "wsserver_publish.c did not build: $(last_line "$out/logs/build-wsserver_publish.log")"
fi

# 3. libwebsockets peer.
say "building the C and C++ peers"
if ! wanted libwebsockets; then
  :
elif pkg-config --exists libwebsockets 2>/dev/null || [[ -f /usr/include/libwebsockets.h ]]; then
  lws_flags=$(pkg-config --cflags --libs libwebsockets 2>/dev/null || echo "-lwebsockets")
  # shellcheck disable=SC2086
  if stale "$out/bin/lws_echo" bench/peers/lws_echo.c &&
    ! gcc -O2 -Wall -o "$out/bin/lws_echo" bench/peers/lws_echo.c $lws_flags 2>"$out/logs/build-lws.log"; then
    skip libwebsockets "lws_echo.c did not build: $(last_line "$out/logs/build-lws.log")"
  fi
else
  skip libwebsockets "libwebsockets-dev not installed (bench/install-peers.sh)"
fi

# 4. Boost.Beast peer.
if ! wanted boost-beast; then
  :
elif [[ -f /usr/include/boost/beast.hpp ]]; then
  if stale "$out/bin/beast_echo" bench/peers/beast_echo.cpp &&
    ! g++ -O2 -std=c++17 -Wall -o "$out/bin/beast_echo" bench/peers/beast_echo.cpp -pthread -lssl -lcrypto 2>"$out/logs/build-beast.log"; then
    skip boost-beast "beast_echo.cpp did not build: $(last_line "$out/logs/build-beast.log")"
  fi
else
  skip boost-beast "libboost-dev (Beast) not installed (bench/install-peers.sh)"
fi

# 5. Node ws peer: install from the lock file if not there yet.
if wanted node-ws && command -v npm >/dev/null && [[ ! -f bench/node/node_modules/ws/package.json ]]; then
  say "npm ci in bench/node"
  npm ci --prefix bench/node --no-audit --no-fund --loglevel=error >"$out/logs/npm.log" 2>&1 ||
    skip node-ws "npm ci failed: $(tail -n 1 "$out/logs/npm.log")"
fi
command -v node >/dev/null || skip node-ws "node not installed"

# 6. The Qt rows: wsserver-qt (examples-qt/echo_server.cpp on bindings/qt) and
#    qtwebsockets (bench/peers/qtwebsockets_echo.cpp on QWebSocketServer), one
#    CMake project (bench/peers/qt) with one Qt for both: 6 when found, else 5.
#    cmake --build only recompiles what changed.
qt_why=""
if ! wanted wsserver-qt qtwebsockets; then
  :
elif ! command -v cmake >/dev/null; then
  qt_why="cmake not installed (bench/install-peers.sh)"
elif ! pkg-config --exists Qt6WebSockets 2>/dev/null && ! pkg-config --exists Qt5WebSockets 2>/dev/null; then
  qt_why="Qt WebSockets not installed: qt6-base-dev qt6-websockets-dev or qtbase5-dev libqt5websockets5-dev (bench/install-peers.sh)"
else
  say "building the Qt rows (cmake, bench/peers/qt)"
  if ! { cmake -S bench/peers/qt -B "$out/qt" -DCMAKE_BUILD_TYPE=Release -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$out/bin" &&
    cmake --build "$out/qt" -j2; } >"$out/logs/build-qt.log" 2>&1; then
    qt_why="bench/peers/qt did not build: $(last_line "$out/logs/build-qt.log") (log: build/bench/logs/build-qt.log)"
  fi
fi
if [[ -n $qt_why ]]; then
  skip wsserver-qt "$qt_why"
  skip qtwebsockets "$qt_why"
fi

# 7. Python peers (pip installs are done by bench/install-peers.sh).
python3 -c 'import websockets' 2>/dev/null || skip python-websockets "python package websockets not installed (pip install websockets)"
python3 -c 'import picows' 2>/dev/null || skip python-picows "python package picows not installed (pip install picows)"

# Run: the load generator on CPU 1, each server on CPU 0.
pin=()
if [[ $(nproc --all) -ge 2 ]] && command -v taskset >/dev/null; then
  pin=(taskset -c 1)
else
  say "fewer than 2 CPUs or no taskset: not pinning"
  args+=(--server-cpu none)
fi
"${pin[@]}" "$bins/wsbench" --root "$root" --out "$out" "${args[@]}"
rc=$?

# Chart (needs matplotlib; the table and JSON stand without it).
if [[ -f $out/results.json ]]; then
  if python3 bench/chart.py "$out/results.json" "$out/chart.png" 2>"$out/logs/chart.log"; then
    say "wrote $out/chart.png"
  else
    say "no chart: $(tail -n 1 "$out/logs/chart.log")"
  fi
fi
exit $rc
