#!/usr/bin/env bash
# ow-stream against its peers, in one run, on one tansu broker it starts itself:
# Quix Streams (Python, RocksDB), raw rdkafka consumers (the ceiling), and ow-stream on its
# local backend, for (a) map + filter, (b) keyed count with a persistent store and changelog,
# (c) the ow-processor topology on OverFast events. See BENCHMARKS.md ("Peers").
#
#   bench/peers.sh                     # everything, defaults below
#   N=100000 ONLY="a b" bench/peers.sh # smaller, workloads a and b only
#
# Every contender's run gets a fresh broker and database; each contender reads the input from
# offset zero, at-least-once with commits every COMMIT_MS, stops by itself once it has read
# the bulk plus LATENCY_RECORDS trickled records, and its output is read back and checked.
# The table goes to stdout and to bench/results/peers-<UTC time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-200000}"                 # keyed records for (a) and (b)
KEYS="${KEYS:-10000}"
EVENTS="${EVENTS:-2000}"         # OverFast events for (c)
PARTITIONS="${PARTITIONS:-3}"
COMMIT_MS="${COMMIT_MS:-5000}"
LATENCY_RECORDS="${LATENCY_RECORDS:-200}"
PORT="${PORT:-19092}"
ONLY="${ONLY:-a b c}"
TANSU="${TANSU:-$HOME/.cargo/bin/tansu}"
BROKERS="127.0.0.1:${PORT}"

log() { echo "== $*" >&2; }

# --- tansu 0.6.0, installed only when missing --------------------------------------------
if ! "$TANSU" --version >/dev/null 2>&1; then
  if pgrep -f "cargo install tansu" >/dev/null 2>&1; then
    log "tansu is being installed by another cargo install; waiting for it"
    while ! "$TANSU" --version >/dev/null 2>&1; do sleep 30; done
  else
    log "installing tansu 0.6.0 (cargo install, takes 10-25 minutes)"
    cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
  fi
fi
"$TANSU" --version >&2

# --- the sqlite3 command, to index tansu's header table (start_tansu) ----------------------
if ! sqlite3 -version >/dev/null 2>&1; then
  log "installing the Debian sqlite3 package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null
fi

# --- Quix Streams in a venv of our own ---------------------------------------------------
VENV="bench/.venv"
if ! "$VENV/bin/python" -c "import quixstreams, fastavro" >/dev/null 2>&1; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    log "python3 -m venv failed: installing the Debian python3-venv package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q quixstreams fastavro
fi
QUIX_VERSION="$("$VENV/bin/python" -c 'import quixstreams; print(quixstreams.__version__)')"

# --- our binaries --------------------------------------------------------------------------
if [ -z "${BENCH:-}" ]; then
  log "building ow-bench (release)"
  cargo build --release -p ow-bench >&2
  BENCH="$PWD/target/release/ow-bench"
fi

mkdir -p bench/results
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="bench/results/peers-${STAMP}.jsonl"
TABLE="bench/results/peers-${STAMP}.md"
work="$(mktemp -d)"
tansu_pid=""

stop_tansu() {
  if [ -n "$tansu_pid" ]; then
    kill "$tansu_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$tansu_pid" 2>/dev/null || break; sleep 0.1; done
    # tansu has been seen ignoring SIGTERM when it hangs.
    kill -9 "$tansu_pid" 2>/dev/null || true
    wait "$tansu_pid" 2>/dev/null || true
    tansu_pid=""
  fi
}
cleanup() { stop_tansu; rm -rf "$work"; }
trap cleanup EXIT

start_tansu() {
  local dir="$work/tansu-$1"
  mkdir -p "$dir"
  # tansu reads the sqlite:// path relative to its working directory.
  (cd "$dir" && exec "$TANSU" broker --storage-engine "sqlite://tansu.db" \
    --listener-url "tcp://127.0.0.1:${PORT}" --advertised-listener-url "tcp://127.0.0.1:${PORT}" \
    >"$dir/log" 2>&1) &
  tansu_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
      # tansu 0.6.0 does not index its header table: without this every fetched record scans
      # all header rows (infra/README.md, "tansu 0.6.0"), and every contender would pay it.
      sqlite3 -cmd ".timeout 30000" "$dir/tansu.db" \
        "create index if not exists ow_header_record on header (topition, offset_id);"
      return
    fi
    sleep 0.1
  done
  echo "tansu did not start; its log:" >&2; cat "$dir/log" >&2; return 1
}

# run <row name> <workload> <backend: kafka|local> <extra run flags...> -- <contender...>
run() {
  local name="$1" workload="$2" backend="$3"; shift 3
  local slug; slug="$(echo "$name-$workload" | tr -c 'a-zA-Z0-9\n' '-')"
  local brokers="$BROKERS" latency="$LATENCY_RECORDS"
  local records="$N"
  # No latency trickle for (c): its outputs are checked by count only.
  if [ "$workload" = c ]; then records="$EVENTS"; latency=0; fi
  if [ "$backend" = kafka ]; then
    start_tansu "$slug"
  else
    brokers="local://$work/local-$slug/log"; latency=0
  fi
  rm -rf "$work/registry"
  log "$name, workload $workload ($records records)"
  local status=0
  OW_BROKERS="$brokers" "$BENCH" run --name "$name" --workload "$workload" \
    --partitions "$PARTITIONS" --records "$records" --keys "$KEYS" \
    --latency-records "$latency" --registry-dir "$work/registry" --results "$RESULTS" "$@" \
    || status=$?
  if [ "$status" != 0 ]; then
    echo "{\"name\":\"$name\",\"workload\":\"$workload\",\"records\":0,\"wall_s\":0,\"cpu_s\":0,\"peak_rss_mib\":0,\"first_record_ms\":0,\"bulk_ms\":0,\"latency_p50_ms\":null,\"latency_p99_ms\":null,\"output_records\":null,\"invalid\":\"the run failed (exit $status), see the log\"}" >>"$RESULTS"
  fi
  stop_tansu
  rm -rf "$work/state-$slug"
}

for w in $ONLY; do
  if [ "$w" = c ]; then bulk="$EVENTS"; expect_kafka="$EVENTS"; else
    bulk="$N"; expect_kafka=$(( N + LATENCY_RECORDS )); fi
  if [ "$w" != c ]; then
    run "raw rdkafka count" "$w" kafka --group raw-count --no-output -- \
      "$BENCH" raw --brokers "$BROKERS" --group raw-count --commit-interval-ms "$COMMIT_MS" \
      --bulk "$bulk" --expect "$expect_kafka"
    run "raw rdkafka count+decode" "$w" kafka --group raw-decode --no-output -- \
      "$BENCH" raw --brokers "$BROKERS" --group raw-decode --decode --commit-interval-ms "$COMMIT_MS" \
      --bulk "$bulk" --expect "$expect_kafka"
    run "Quix Streams" "$w" kafka --group quix-bench -- \
      "$VENV/bin/python" bench/quix/contender.py --brokers "$BROKERS" \
      --group quix-bench --workload "$w" --state-dir "$work/state-quix-$w" \
      --commit-interval-ms "$COMMIT_MS" --bulk "$bulk" --expect "$expect_kafka"
  else
    run "Quix Streams" "$w" kafka --group quix-bench -- \
      "$VENV/bin/python" bench/quix/contender.py --brokers "$BROKERS" \
      --group quix-bench --workload c --state-dir "$work/state-quix-$w" \
      --commit-interval-ms "$COMMIT_MS" --bulk "$bulk" --expect "$expect_kafka"
  fi
  app=bench-ow-stream; [ "$w" = c ] && app=ow-processor
  run "ow-stream (Kafka)" "$w" kafka --group "$app" -- \
    "$BENCH" ow-stream --brokers "$BROKERS" --workload "$w" --state-dir "$work/state-ow-$w" \
    --commit-interval-ms "$COMMIT_MS" --bulk "$bulk" --expect "$expect_kafka" \
    --registry-dir "$work/registry"
  run "ow-stream (local)" "$w" local --group "$app" -- \
    "$BENCH" ow-stream --brokers "local://$work/local-$(echo "ow-stream (local)-$w" | tr -c 'a-zA-Z0-9\n' '-')/log" \
    --workload "$w" --state-dir "$work/state-owl-$w" \
    --commit-interval-ms "$COMMIT_MS" --bulk "$bulk" --expect "$bulk" \
    --registry-dir "$work/registry"
done

{
  echo "# Peers: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`N=$N KEYS=$KEYS EVENTS=$EVENTS PARTITIONS=$PARTITIONS COMMIT_MS=$COMMIT_MS LATENCY_RECORDS=$LATENCY_RECORDS ONLY=\"$ONLY\" bench/peers.sh\`"
  echo "($(nproc) CPUs, $("$TANSU" --version), Quix Streams $QUIX_VERSION, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  "$BENCH" table --results "$RESULTS"
} | tee "$TABLE"
echo "results: $RESULTS, $TABLE" >&2
