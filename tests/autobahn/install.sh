#!/usr/bin/env bash
# Installs Autobahn|Testsuite's `wstest` (CPython 2.7 only) into a virtualenv
# at build/autobahn-venv, from pyenv's 2.7.18 and the exact pins in
# ../shared/autobahn/requirements-py27.txt. Run by scripts/install-deps.sh.
# A quick no-op when the venv holds those same pins already (a copy of the
# requirements file is kept in the venv and compared).
#
# Python 2.7's own pip (19.2.3) installs virtualenv 16.7.12 (the last
# virtualenv that is a single script running on 2.7) into build/ only, never
# into pyenv's site-packages; that virtualenv creates the venv from its
# bundled wheels (pip 20.3.4, the last pip for 2.7), and the venv's pip
# installs the pins from PyPI. wsaccel is compiled here (gcc and pyenv's
# Python.h); everything else comes as cp27mu wheels.
#
# Environment: PYTHON27 (default: pyenv's 2.7.18), AUTOBAHN_VENV (default
# build/autobahn-venv), AUTOBAHN_REQUIREMENTS (default
# ../shared/autobahn/requirements-py27.txt). Exit status 0 when wstest runs
# from the venv, 1 otherwise (the reason on stderr).
set -u
cd "$(dirname "$0")/../.."
venv=${AUTOBAHN_VENV:-build/autobahn-venv}
req=${AUTOBAHN_REQUIREMENTS:-../shared/autobahn/requirements-py27.txt}
tools=build/autobahn-tools
say() { echo "autobahn install: $*" >&2; }

if [ ! -f "$req" ]; then
    say "no $req (the pins for wstest): not installed"
    exit 1
fi
if [ -x "$venv/bin/wstest" ] && cmp -s "$req" "$venv/requirements-py27.txt"; then
    exit 0
fi

py=${PYTHON27:-}
if [ -z "$py" ]; then
    for c in "$(pyenv root 2>/dev/null)/versions/2.7.18/bin/python" /root/.pyenv/versions/2.7.18/bin/python \
        "$HOME/.pyenv/versions/2.7.18/bin/python" "$(command -v python2.7)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            py=$c
            break
        fi
    done
fi
if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
    say "no CPython 2.7 (pyenv's 2.7.18, or PYTHON27=...): wstest not installed"
    exit 1
fi

start=$SECONDS
log=build/autobahn-install.log
mkdir -p build
: >"$log"
pip_quiet=(-q --disable-pip-version-check --no-warn-script-location)
step() { # what command...
    if ! "$@" >>"$log" 2>&1; then
        say "$1 failed (last lines of $log):"
        grep -v DEPRECATION "$log" | tail -n 15 >&2
        exit 1
    fi
}
say "creating $venv from $py (one to three minutes, mostly downloads)"
if [ ! -f "$tools/virtualenv.py" ]; then
    step "$py" -m pip install "${pip_quiet[@]}" --target "$tools" virtualenv==16.7.12
fi
rm -rf "$venv"
step "$py" "$tools/virtualenv.py" -q --no-download "$venv"
step "$venv/bin/python" -m pip install "${pip_quiet[@]}" -r "$req"
step "$venv/bin/wstest" --autobahnversion
cp "$req" "$venv/requirements-py27.txt"
say "$("$venv/bin/wstest" --autobahnversion 2>&1 | tr '\n' ' ')in $venv ($((SECONDS - start)) s)"
