#!/usr/bin/env python3
"""Autobahn|Testsuite (wstest's fuzzingclient) against the C examples.

    python3 tests/autobahn/run.py [--deflate auto|on|off] [--timeout S] MODE...

Modes (several may be given; each runs its own server and wstest):
  quick    cases 1-10 in full and the deflate subset (12.1.*, 13.1.*, 13.7.*)
           against build/examples/autobahn_server: what `make test` runs
  full     all 517 cases against build/examples/autobahn_server: `make
           autobahn`; the HTML report is build/autobahn/full/index.html
  limits   a handful of 9.x cases against build/examples/echo_server (the
           default limits, 1 MiB): those past the limits must end with close
           code 1009 at once, those within them must echo

Each run starts the server on 127.0.0.1 port 0 (the port from its
"listening on" line), writes a fuzzingclient spec and runs wstest from
build/autobahn-venv (tests/autobahn/install.sh, run by scripts/install-deps.sh)
with its report in build/autobahn/MODE/, then compares every case's
behavior and behaviorClose in index.json with tests/autobahn/expected.json.
A case fails when either is not OK or INFORMATIONAL (FAILED, NON-STRICT,
UNCLEAN, WRONG CODE...), when it differs from the expected file, when the
file has no entry for it, or when wstest did not report it.

--deflate (the switch for cases 12.* and 13.*, which wstest reports as
UNIMPLEMENTED when the server negotiates no permessage-deflate): `auto`, the
default, is `on` when include/wsserver.h defines WS_OPT_DEFLATE (the example
then turns it on) and `off` otherwise. Off: `quick` skips the deflate subset
and says so, `full` runs the cases and takes UNIMPLEMENTED for them (it
counts them apart). On: they are compared like every other case.

--record-missing adds to the expected file the cases it has no entry for
that passed strictly, with what they got (the deflate cases, for instance,
once the server negotiates deflate); a case that did not pass is not added.

Every run is bounded (--timeout, per mode: the default below); a wstest that
runs past it is killed and the case it was running is named. The last line
is "autobahn: N passed, M failed" (cases); exit status 0 when none failed.
"""
import argparse
import collections
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXPECTED = os.path.join(ROOT, "tests", "autobahn", "expected.json")
HEADER = os.path.join(ROOT, "include", "wsserver.h")
WSTEST = os.environ.get("AUTOBAHN_WSTEST", os.path.join(ROOT, "build", "autobahn-venv", "bin", "wstest"))
PASSING = {"OK", "INFORMATIONAL"}
UNIMPLEMENTED = "UNIMPLEMENTED"
DEFLATE_SECTIONS = ("12", "13")

# mode: (server, case patterns, default timeout in seconds)
MODES = {
    "quick": ("autobahn_server", ["%d.*" % s for s in (1, 2, 3, 4, 5, 6, 7, 9, 10)] + ["12.1.*", "13.1.*", "13.7.*"], 600),
    "full": ("autobahn_server", ["*"], 3600),
    "limits": ("echo_server", None, 120),  # cases: expected.json's "default_limits"
}


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def matches(case_id, patterns):
    """wstest's case patterns: '*' stands for any run of characters."""
    return any(fnmatch.fnmatchcase(case_id, p) for p in patterns)


def is_deflate_case(case_id):
    return case_id.split(".")[0] in DEFLATE_SECTIONS


def header_has_deflate():
    with open(HEADER, encoding="utf-8") as f:
        return re.search(r"^#define WS_OPT_DEFLATE\b", f.read(), re.M) is not None


class Server:
    """One example server on 127.0.0.1:0; stop() ends it and checks its exit."""

    def __init__(self, name, outdir):
        self.name = name
        self.binary = os.path.join(ROOT, "build", "examples", name)
        self.log_path = os.path.join(outdir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "127.0.0.1", "0"], stdout=subprocess.PIPE, stderr=self.log)
        self.url = None
        found = []
        reader = threading.Thread(target=lambda: found.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(10)
        line = found[0].decode("utf-8", "replace").strip() if found else ""
        m = re.match(r"listening on (ws://127\.0\.0\.1:\d+)$", line)
        if not m:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError("%s printed no 'listening on ws://127.0.0.1:PORT' line within 10 s (got %r; %s)"
                               % (name, line, tail))
        self.url = m.group(1)

    def log_tail(self, n=10):
        """The last lines the server wrote to stderr (build/autobahn/MODE/server.log)."""
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "its stderr: " + (" | ".join(lines[-n:]) if lines else "empty")

    def stop(self):
        """SIGTERM, then up to 10 s; returns None when it exited 0, else what went wrong."""
        problem = None
        if self.proc.poll() is not None:
            problem = "%s had exited already with status %s (%s)" % (self.name, self.proc.returncode, self.log_tail())
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(10)
                if status != 0:
                    problem = "%s exited with status %s on SIGTERM (%s)" % (self.name, status, self.log_tail())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problem = "%s did not exit within 10 s of SIGTERM (killed)" % self.name
        self.proc.stdout.close()
        self.log.close()
        return problem


def run_wstest(url, cases, outdir, timeout):
    """Runs the fuzzingclient; returns (index.json's cases, problems)."""
    spec = {
        "outdir": outdir,
        "servers": [{"agent": "wsserver", "url": url}],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_path = os.path.join(outdir, "fuzzingclient.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
    index = os.path.join(outdir, "index.json")
    if os.path.exists(index):
        os.remove(index)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_path = os.path.join(outdir, "wstest.log")
    current = [None]
    with open(log_path, "w") as log:
        proc = subprocess.Popen([WSTEST, "-m", "fuzzingclient", "-s", spec_path], cwd=outdir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

        def follow():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                m = re.match(r"Running test case ID (\S+) ", line)
                if m:
                    current[0] = m.group(1)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        problems = []
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            problems.append("wstest ran past %d s and was killed while running case %s" % (timeout, current[0]))
        reader.join(10)
    if proc.returncode not in (0, -signal.SIGKILL) and not problems:
        problems.append("wstest exited with status %s (see %s)" % (proc.returncode, log_path))
    if not os.path.exists(index):
        problems.append("wstest wrote no %s (see %s)" % (index, log_path))
        return {}, problems
    with open(index) as f:
        report = json.load(f)
    return report.get("wsserver", {}), problems


def load_expected():
    with open(EXPECTED) as f:
        return json.load(f)


def write_expected(expected):
    """Writes the expected file back in its layout: case maps in case order, a short map on one line."""

    def layout(value, indent):
        pad = "  " * (indent + 1)
        if isinstance(value, dict) and (any(isinstance(v, (dict, list)) for v in value.values())
                                        or len(json.dumps(value)) > 100):
            keys = list(value)
            if all(re.match(r"^\d+(\.\d+)*$", k) for k in keys):
                keys.sort(key=case_key)
            items = ["%s%s: %s" % (pad, json.dumps(k), layout(value[k], indent + 1)) for k in keys]
            return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
        if isinstance(value, list) and value:
            return "[\n" + ",\n".join(pad + layout(v, indent + 1) for v in value) + "\n" + "  " * indent + "]"
        return json.dumps(value)

    with open(EXPECTED, "w") as f:
        f.write(layout(expected, 0) + "\n")


def record_missing(results, expected):
    """--record-missing: adds the cases the file has no entry for and that passed strictly."""
    added = []
    for case_id, got in results.items():
        if case_id not in expected["cases"] and got["behavior"] in PASSING and got["behaviorClose"] in PASSING:
            expected["cases"][case_id] = {"behavior": got["behavior"], "behaviorClose": got["behaviorClose"]}
            added.append(case_id)
    if added:
        write_expected(expected)
        print("recorded %d cases in %s: %s" % (len(added), EXPECTED, " ".join(sorted(added, key=case_key))))


def describe(case_id, got, want=None, note=None):
    text = "%-8s got %s / %s (close code %s, %d ms)" % (case_id, got["behavior"], got["behaviorClose"],
                                                         got.get("remoteCloseCode"), got.get("duration", 0))
    if want is not None:
        text += ", expected %s / %s" % (want["behavior"], want["behaviorClose"])
    if note:
        text += " -- " + note
    return text


def check_conformance(mode, results, expected, deflate, outdir):
    """The quick and full modes: every case against the expected file. Returns (passed, failures)."""
    cases, notes = expected["cases"], expected.get("notes", {})
    failures, passed, unimplemented = [], 0, []
    for case_id in sorted(results, key=case_key):
        got = results[case_id]
        if not deflate and is_deflate_case(case_id) and got["behavior"] == UNIMPLEMENTED:
            unimplemented.append(case_id)
            continue
        want = cases.get(case_id)
        bad = got["behavior"] not in PASSING or got["behaviorClose"] not in PASSING
        differs = want is not None and (want["behavior"], want["behaviorClose"]) != (got["behavior"], got["behaviorClose"])
        if want is None:
            failures.append(describe(case_id, got, note="no entry in tests/autobahn/expected.json"
                                     + ("; " + notes[case_id] if case_id in notes else "")))
        elif bad or differs:
            failures.append(describe(case_id, got, want, notes.get(case_id)))
        else:
            passed += 1
    behaviors = collections.Counter(r["behavior"] for r in results.values())
    closes = collections.Counter(r["behaviorClose"] for r in results.values())
    print("%s: %d cases reported; behavior: %s; behaviorClose: %s" % (
        mode, len(results), ", ".join("%s %d" % kv for kv in sorted(behaviors.items())),
        ", ".join("%s %d" % kv for kv in sorted(closes.items()))))
    for case_id in sorted(notes, key=case_key):
        if case_id in results:
            got = results[case_id]
            print("%s: %s (note: %s)" % (mode, describe(case_id, got), notes[case_id]))
    if unimplemented:
        print("%s: %d deflate cases (%s ... %s) UNIMPLEMENTED, taken as expected: --deflate is off, "
              "the server negotiates no permessage-deflate" % (mode, len(unimplemented), unimplemented[0], unimplemented[-1]))
    print("%s: report %s" % (mode, os.path.join(outdir, "index.html")))
    return passed, failures


def check_limits(results, expected):
    """The limits mode: refused cases end with 1009 at once, the others echo."""
    failures, passed = [], 0
    for case_id, want in sorted(expected["default_limits"]["cases"].items(), key=lambda kv: case_key(kv[0])):
        got = results.get(case_id)
        if got is None:
            continue  # counted as not reported by the caller
        if "remoteCloseCode" in want:
            bound = expected["default_limits"]["refused_within_ms"]
            if got.get("remoteCloseCode") != want["remoteCloseCode"]:
                failures.append(describe(case_id, got, note="expected the server's close code %d" % want["remoteCloseCode"]))
            elif got.get("duration", 0) > bound:
                failures.append(describe(case_id, got, note="refused, but not within %d ms" % bound))
            else:
                passed += 1
                print("limits: %s refused with %d in %d ms" % (case_id, got["remoteCloseCode"], got.get("duration", 0)))
        elif (got["behavior"], got["behaviorClose"]) != (want["behavior"], want["behaviorClose"]):
            failures.append(describe(case_id, got, want, "within the default limits: must echo"))
        else:
            passed += 1
            print("limits: %s echoed (%s / %s, %d ms)" % (case_id, got["behavior"], got["behaviorClose"], got.get("duration", 0)))
    return passed, failures


def run_mode(mode, args, expected, deflate):
    server_name, patterns, default_timeout = MODES[mode]
    timeout = args.timeout or default_timeout
    outdir = os.path.join(ROOT, "build", "autobahn", mode)
    os.makedirs(outdir, exist_ok=True)
    if mode == "limits":
        patterns = sorted(expected["default_limits"]["cases"], key=case_key)
    elif mode == "quick" and not deflate:
        skipped = [p for p in patterns if is_deflate_case(p)]
        patterns = [p for p in patterns if not is_deflate_case(p)]
        print("quick: --deflate is off (include/wsserver.h has no WS_OPT_DEFLATE, or --deflate off): "
              "skipping the deflate subset %s" % " ".join(skipped))
    print("%s: %s on 127.0.0.1:0; cases %s (at most %d s)" % (mode, server_name, " ".join(patterns), timeout))
    start = time.monotonic()
    try:
        server = Server(server_name, outdir)
    except (OSError, RuntimeError) as e:
        return 0, 1, ["%s: cannot start %s: %s" % (mode, server_name, e)]
    try:
        results, problems = run_wstest(server.url, patterns, outdir, timeout)
    finally:
        stopped = server.stop()
    failures = ["%s: %s" % (mode, p) for p in problems]
    if stopped:
        failures.append("%s: %s" % (mode, stopped))
    if args.record_missing and mode != "limits":
        record_missing(results, expected)
    if mode == "limits":
        passed, case_failures = check_limits(results, expected)
        wanted = set(patterns)
    else:
        passed, case_failures = check_conformance(mode, results, expected, deflate, outdir)
        wanted = {c for c in expected["cases"] if matches(c, patterns)}
    failures += ["%s: %s" % (mode, f) for f in case_failures]
    missing = sorted(wanted - set(results), key=case_key)
    if missing:
        shown = " ".join(missing[:20]) + (" ... (%d more)" % (len(missing) - 20) if len(missing) > 20 else "")
        failures.append("%s: %d expected cases not reported by wstest: %s" % (mode, len(missing), shown))
    # A case counts once; a run-wide problem (timeout, server exit) once more.
    failed = len(case_failures) + len(missing) + len(problems) + (1 if stopped else 0)
    print("%s: %d passed, %d failed, in %.0f s" % (mode, passed, failed, time.monotonic() - start))
    return passed, failed, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modes", nargs="+", choices=sorted(MODES), metavar="MODE", help="quick, full, limits")
    parser.add_argument("--deflate", choices=("auto", "on", "off"), default="auto",
                        help="cases 12.* and 13.*: auto (on when include/wsserver.h has WS_OPT_DEFLATE), on, off")
    parser.add_argument("--record-missing", action="store_true",
                        help="add to tests/autobahn/expected.json the cases it lacks that passed strictly (OK or "
                             "INFORMATIONAL); those that did not are not added, and fail")
    parser.add_argument("--timeout", type=int, default=0, help="seconds each mode may take (default: per mode)")
    args = parser.parse_args()
    deflate = header_has_deflate() if args.deflate == "auto" else args.deflate == "on"
    print("autobahn: deflate %s (%s)" % ("on" if deflate else "off",
                                         "--deflate " + args.deflate if args.deflate != "auto" else
                                         "include/wsserver.h %s WS_OPT_DEFLATE" % ("defines" if deflate else "has no")))
    if not os.access(WSTEST, os.X_OK):
        print("autobahn: no %s: run scripts/install-deps.sh (tests/autobahn/install.sh)" % WSTEST)
        print("autobahn: 0 passed, 1 failed")
        return 1
    expected = load_expected()
    total_passed, total_failed, failures = 0, 0, []
    for mode in args.modes:
        passed, failed, mode_failures = run_mode(mode, args, expected, deflate)
        total_passed += passed
        total_failed += failed
        failures += mode_failures
    if failures:
        print("autobahn: FAILED:")
        for f in failures:
            print("  " + f)
    print("autobahn: %d passed, %d failed" % (total_passed, total_failed))
    return 1 if failures or total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
