#!/usr/bin/env bash
# Freshness of the embedded stack (issue 12): how long a battletag typed in the web takes to
# show its stats on the page, hop by hop, and how long a raw event takes to be visible in the
# web's stores. OverFast is replayed from a directory holding the recorded TeKrop-2217 body under
# every battletag looked up (the replay answers at once, with no network).
#
#   bench/freshness.sh                     # builds ow-web (release), 100 look-ups, 100 refreshes
#   PLAYERS=20 bench/freshness.sh
#   BIN=/tmp/ow-web-before FOLLOW=poll bench/freshness.sh   # another binary, the old page script
#   EXTRA_ARGS="--commit-interval-ms 1000" bench/freshness.sh
#
# FOLLOW=long-poll (default) follows a look-up as the page script does now (the status endpoint
# waits server-side for a change); FOLLOW=poll as it did before (the status every 2000 ms).
# Also prints ow-web's CPU use while idle (the cost of short commit intervals) and over the run.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYERS="${PLAYERS:-100}"
FOLLOW="${FOLLOW:-long-poll}"
POLL_MS="${POLL_MS:-2000}"
PORT="${PORT:-18090}"
IDLE_SECS="${IDLE_SECS:-10}"
EXTRA_ARGS="${EXTRA_ARGS:-}"

if [ -z "${BIN:-}" ]; then
  nice -n 10 cargo build --release -p ow-web >&2
  BIN=./target/release/ow-web
fi

work="$(mktemp -d)"
cleanup() {
  [ -n "${web_pid:-}" ] && kill "$web_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The same recorded body under every battletag (the body does not name the player).
mkdir -p "$work/overfast"
for i in $(seq 0 $((PLAYERS - 1))); do
  cp samples/overfast/TeKrop-2217.json "$work/overfast/Fresh${i}-$((10000 + i)).json"
done

# shellcheck disable=SC2086
"$BIN" --state-dir "$work/state" --replay "$work/overfast" --listen "127.0.0.1:${PORT}" \
  --client-requests-per-minute 100000 --refresh-cooldown 1s --log warn $EXTRA_ARGS \
  >"$work/web.log" 2>&1 &
web_pid=$!
base="http://127.0.0.1:${PORT}"
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

web_ticks() { awk '{print $14 + $15}' "/proc/$web_pid/stat"; }
hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(web_ticks); sleep "$IDLE_SECS"; t1=$(web_ticks)
idle=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f %%", 100 * t / hz / s }')

start=$(date +%s.%N)
python3 bench/freshness.py --base "$base" --players "$PLAYERS" --follow "$FOLLOW" \
  --poll-ms "$POLL_MS" --json "$work/samples.json"
end=$(date +%s.%N)
t2=$(web_ticks)
busy=$(awk -v t=$((t2 - t1)) -v hz="$hz" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f %% over %.0f s", 100 * t / hz / (b - a), b - a }')
mkdir -p bench/results
cp "$work/samples.json" "bench/results/freshness-$(date -u +%Y%m%dT%H%M%SZ)-${FOLLOW}.json"

cat <<MD

follow=${FOLLOW}; binary ${BIN}; extra args: ${EXTRA_ARGS:-none}; ow-web CPU (user + system, % of one core): idle ${idle} (${IDLE_SECS} s before the look-ups), during the run ${busy}.
$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average before: ${load_before}, after: $(cut -d' ' -f1-3 /proc/loadavg).
MD
