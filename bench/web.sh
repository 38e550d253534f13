#!/usr/bin/env bash
# The dashboard under load: wrk against the player page of a loaded player (64 connections),
# beside nginx serving the very same HTML bytes as a static file, in one run.
#
#   bench/web.sh            # 15 s per target
#   DURATION=30s bench/web.sh
#   BIN=/tmp/ow-web-before bench/web.sh   # another build of ow-web
#   EXTRA_ARGS="--page-cache-bytes 0" bench/web.sh   # every page rendered from the stores
#
# It builds ow-web in release mode, starts the embedded stack on a temporary state directory
# with OverFast answered from samples/overfast (no network), loads TeKrop-2217, then measures.
# Prints a Markdown table for BENCHMARKS.md, with ow-web's own CPU time per page (steadier than
# requests/s when other work shares the cores).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
WEB_PORT="${WEB_PORT:-18080}"
NGINX_PORT="${NGINX_PORT:-18081}"
PLAYER="TeKrop-2217"
PAGE="/players/${PLAYER}?platform=pc&mode=competitive"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "installing $2" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}
need wrk wrk
need nginx nginx
need curl curl

# BIN=/path/to/ow-web measures another binary (an older build, say) with the same script.
if [ -z "${BIN:-}" ]; then
  nice -n 10 cargo build --release -p ow-web >&2
  BIN=./target/release/ow-web
fi

work="$(mktemp -d)"
cleanup() {
  [ -n "${web_pid:-}" ] && kill "$web_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$BIN" --state-dir "$work/state" --replay samples/overfast \
  --listen "127.0.0.1:${WEB_PORT}" --log warn ${EXTRA_ARGS:-} >"$work/web.log" 2>&1 &
web_pid=$!

base="http://127.0.0.1:${WEB_PORT}"
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs -o /dev/null "$base/players/${PLAYER}" || true
for _ in $(seq 1 150); do
  if curl -fs "$base/api/players/${PLAYER}/status" | grep -q '"has_stats":true'; then break; fi
  sleep 0.2
done
curl -fs "$base${PAGE}" -o "$work/page.html"
bytes=$(wc -c <"$work/page.html")

mkdir -p "$work/www/players"
cp "$work/page.html" "$work/www/players/${PLAYER}"
# nginx's workers run as an unprivileged user when started as root: let them read the copy.
chmod 755 "$work" "$work/www" "$work/www/players"
chmod 644 "$work/www/players/${PLAYER}"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/html;
  server {
    listen 127.0.0.1:${NGINX_PORT};
    root $work/www;
    location / { try_files \$uri =404; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:${NGINX_PORT}/players/${PLAYER}" && break; sleep 0.1; done

# ow-web's CPU time so far (user + system), in clock ticks.
web_ticks() { awk '{print $14 + $15}' "/proc/$web_pid/stat"; }
# Runs wrk against $2, keeping its report in $work/$1.txt (and echoing it to stderr), and
# ow-web's CPU ticks over the run in $work/$1.ticks; fails when any answer was not a 2xx, so
# a broken target cannot pass for a fast one.
run() {
  local t0
  t0=$(web_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2" >"$work/$1.txt"
  echo $(($(web_ticks) - t0)) >"$work/$1.ticks"
  cat "$work/$1.txt" >&2
  if grep -q 'Non-2xx or 3xx responses' "$work/$1.txt"; then
    echo "error: $1 answered with errors during the run" >&2
    exit 1
  fi
}
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
p99() { grep -A4 'Latency Distribution' "$work/$1.txt" | awk '/99%/ {print $2}'; }
# Read now: by the end of the runs, the 1-minute load average mostly shows wrk's own load.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== ow-web ${PAGE}" >&2
run web "$base${PAGE}"
echo "== nginx, same ${bytes} bytes" >&2
run nginx "http://127.0.0.1:${NGINX_PORT}/players/${PLAYER}"
web_rps=$(rps web); web_p99=$(p99 web)
nginx_rps=$(rps nginx); nginx_p99=$(p99 nginx)
ratio=$(awk -v a="$web_rps" -v b="$nginx_rps" 'BEGIN { printf "%.1f%%", 100 * a / b }')
# ow-web's own CPU per page: steadier than requests/s when other work shares the cores.
web_cpu=$(awk -v t="$(cat "$work/web.ticks")" -v hz="$(getconf CLK_TCK)" \
  -v n="$(awk '/requests in/ {print $1}' "$work/web.txt")" 'BEGIN { printf "%.0f µs", 1e6 * t / hz / n }')

cat <<MD
| target | requests/s | p99 latency |
|---|---|---|
| ow-web \`${PAGE}\` (${bytes} bytes; extra args: ${EXTRA_ARGS:-none}) | ${web_rps} | ${web_p99} |
| nginx, the same bytes as a static file | ${nginx_rps} | ${nginx_p99} |
| ow-web / nginx | ${ratio} | |
| ow-web CPU per page (user + system, over its run) | ${web_cpu} | |

ow-web extra args: ${EXTRA_ARGS:-none}. wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency; $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average before the run: ${load_before}.
MD
