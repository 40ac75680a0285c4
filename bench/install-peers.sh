#!/usr/bin/env bash
# Installs what the benchmark's peer servers need on a fresh Debian machine.
# Idempotent. Reports each failure but never fails: the benchmark reports a
# peer that could not be installed as a "skipped: <reason>" row.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
failed=()

step() { # step NAME CMD...
  local name=$1; shift
  echo "install-peers: $name"
  if ! "$@"; then
    echo "install-peers: FAILED: $name" >&2
    failed+=("$name")
  fi
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

need_apt=()
# cmake and Qt 6 (base + websockets): the wsserver-qt and qtwebsockets rows.
# libssl-dev: Boost.Beast's --tls mode (asio's OpenSSL); libwebsockets-dev brings it too.
for pkg in libwebsockets-dev libboost-dev libssl-dev g++ gcc cmake qt6-base-dev qt6-websockets-dev nodejs npm python3-pip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# nodejs/npm/pip may come from elsewhere than apt (pyenv, nodesource): only ask apt when missing.
command -v node >/dev/null && need_apt=("${need_apt[@]/nodejs}")
command -v npm >/dev/null && need_apt=("${need_apt[@]/npm}")
command -v pip3 >/dev/null || command -v pip >/dev/null && need_apt=("${need_apt[@]/python3-pip}")
pkgs=()
for p in "${need_apt[@]}"; do [[ -n $p ]] && pkgs+=("$p"); done
if ((${#pkgs[@]})); then
  step "apt-get update" as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  step "apt-get install ${pkgs[*]}" as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
else
  echo "install-peers: apt packages already present"
fi

if command -v npm >/dev/null; then
  if [[ -f $here/node/package-lock.json ]]; then
    step "npm ci (bench/node)" npm ci --prefix "$here/node" --no-audit --no-fund --loglevel=error
  else
    step "npm install (bench/node)" npm install --prefix "$here/node" --no-audit --no-fund --loglevel=error
  fi
else
  failed+=("npm not found")
fi

py=$(command -v python3 || true)
if [[ -n $py ]]; then
  for mod in websockets picows matplotlib; do
    if "$py" -c "import $mod" 2>/dev/null; then
      echo "install-peers: python $mod already present"
    else
      step "pip install $mod" "$py" -m pip install -q --disable-pip-version-check "$mod"
    fi
  done
else
  failed+=("python3 not found")
fi

if ((${#failed[@]})); then
  echo "install-peers: done with failures: ${failed[*]}" >&2
else
  echo "install-peers: done"
fi
exit 0
