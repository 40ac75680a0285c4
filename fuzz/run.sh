#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named) for SECONDS each:
#   bash fuzz/run.sh [SECONDS [TARGET...]]      (default 120 s, all targets)
# Builds them all once (`cargo fuzz build`, AddressSanitizer + LeakSanitizer
# unless FUZZ_SANITIZER says otherwise), then runs FUZZ_JOBS (2) at a time.
# Each run starts from the committed seeds in fuzz/corpus/<target>/ and
# from what earlier runs found in build/fuzz/corpus/<target>/, where new
# entries go (the committed corpus is never written). A crash, leak or hang
# fails the run and prints the reproducer under build/fuzz/artifacts/.
set -u
cd "$(dirname "$0")/.."
secs=${1:-120}
shift $(($# > 0 ? 1 : 0))
jobs=${FUZZ_JOBS:-2}
sanitizer=${FUZZ_SANITIZER:-address}
all=(reader reader_deflate handshake static_path inflater ffi_tls_pem ffi_config tls13_records)
targets=("${@:-${all[@]}}")
out=build/fuzz
export RUSTC_BOOTSTRAP=1 # cargo-fuzz wants nightly flags; this is the one stable toolchain

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is not installed (bash scripts/install-deps.sh installs it)" >&2
    exit 1
fi
start=$SECONDS
mkdir -p "$out/logs"
if ! cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" >"$out/logs/build.log" 2>&1; then
    tail -40 "$out/logs/build.log"
    echo "fuzz: the build failed (log: $out/logs/build.log)"
    exit 1
fi
echo "fuzz: built ${#all[@]} targets in $((SECONDS - start)) s (sanitizer: $sanitizer)"
bin=fuzz/target/x86_64-unknown-linux-gnu/release

run_one() { # target
    local t=$1
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/tmp/$t"
    local TIMEFORMAT="%U %S" # CPU seconds, to tell the rate on a shared machine
    { time TMPDIR=$PWD/$out/tmp/$t "$bin/$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" "$out/corpus/$t" "fuzz/corpus/$t" \
        >"$out/logs/$t.log" 2>&1; echo $? >"$out/logs/$t.rc"; } 2>"$out/logs/$t.cpu"
    rm -rf "$out/tmp/$t"
}

report() { # target rc
    local t=$1 rc=$2 log=$out/logs/$1.log
    local last execs rate cpu corpus
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cpu=$(awk "{ print \$1 + \$2 }" "$out/logs/$t.cpu" 2>/dev/null)
    corpus=$(ls "$out/corpus/$t" | wc -l)
    if [ "$rc" = 0 ]; then
        printf 'fuzz: %-15s ok  %s runs, %s exec/s (%s per CPU second), %s, corpus %s (+%s kept in %s)\n' \
            "$t" "${execs:-?}" "${rate:-?}" "$(awk -v n="${execs:-0}" -v c="${cpu:-0}" 'BEGIN { print (c > 0 ? int(n / c) : "?") }')" \
            "$(grep -o 'cov: [0-9]* ft: [0-9]*' <<<"$last")" "$(ls "fuzz/corpus/$t" | wc -l)" "$corpus" "$out/corpus/$t"
        return 0
    fi
    echo "fuzz: $t FAILED (exit $rc); the end of $log:"
    grep -v '^#' "$log" | tail -30
    local a
    for a in "$out/artifacts/$t"/*; do
        [ -e "$a" ] || continue
        echo "fuzz: reproducer: $a"
        echo "fuzz:   replay: RUSTC_BOOTSTRAP=1 cargo fuzz run $t $a"
        echo "fuzz:   shrink: RUSTC_BOOTSTRAP=1 cargo fuzz tmin $t $a"
    done
    return 1
}

passed=0 failed=0
for t in "${targets[@]}"; do
    rm -f "$out/artifacts/$t"/* "$out/logs/$t.rc"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_one "$t" &
done
wait
for t in "${targets[@]}"; do
    if report "$t" "$(cat "$out/logs/$t.rc" 2>/dev/null || echo lost)"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "fuzz: ${#targets[@]} targets x ${secs} s, $jobs at a time, $((SECONDS - start)) s in all"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
