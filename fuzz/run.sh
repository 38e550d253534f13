#!/usr/bin/env bash
# Builds the libFuzzer targets on stable Rust and runs each for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]    fuzz each target (default: all four) for SECONDS (60)
#   fuzz/run.sh --check                  run the committed corpus and regressions once per target
#
# Instrumentation is SanitizerCoverage (the flags cargo-fuzz passes), which stable rustc takes;
# only AddressSanitizer would need nightly, and the code under test is safe Rust. Debug
# assertions and overflow checks are on (fuzz/Cargo.toml's release profile).
# Each target reads its seeds from fuzz/corpus/<target>/ and its regressions from
# fuzz/regressions/<target>/, grows its corpus in fuzz/work/<target>/, writes a crashing input to
# fuzz/artifacts/<target>/ and its output to fuzz/logs/<target>.log. The machine is shared:
# everything runs under nice, one target at a time.
set -euo pipefail
cd "$(dirname "$0")"

all=(avro_frame overfast_body battletag log_recovery)
check=false
seconds=60
if [ "${1:-}" = "--check" ]; then
  check=true
  shift
elif [ -n "${1:-}" ]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
nice cargo build --release --target "$host" --bins
bin=target/$host/release

# The log-recovery target writes a small log per run: keep it in memory when possible.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi

mkdir -p logs
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "regressions/$t" "work/$t" "artifacts/$t"
  if $check; then
    echo "== $t: corpus and regressions, once"
    nice "$bin/$t" -runs=0 "corpus/$t" "regressions/$t" 2>&1 | tail -n 3 || status=1
    continue
  fi
  echo "== $t: $seconds s"
  # -rss_limit_mb: a hostile input may make a parser allocate; more than this is a finding.
  if ! nice "$bin/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      "work/$t" "corpus/$t" "regressions/$t" >"logs/$t.log" 2>&1; then
    status=1
    echo "$t: FAILED, see fuzz/logs/$t.log and fuzz/artifacts/$t/"
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "logs/$t.log" || true
  tail -n 1 "logs/$t.log"
done
exit $status
