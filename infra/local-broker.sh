#!/bin/sh
# A local Kafka-protocol broker for the pipeline: tansu 0.6.0 with SQLite storage.
#
#   infra/local-broker.sh start DIR PORT   start tansu on 127.0.0.1:PORT with its data in DIR,
#                                          wait until it answers, create every topic of
#                                          infra/topics.txt (idempotent: a restart on the same
#                                          DIR keeps its topics and data)
#   infra/local-broker.sh stop DIR         stop it (SIGTERM, then SIGKILL after 10 s)
#
# Install tansu first: cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
# and the sqlite3 command (Debian: apt-get install sqlite3): tansu 0.6.0's schema has no index
# on its header table, so `start` adds one (infra/README.md, "tansu 0.6.0").
#
# Environment:
#   TANSU       the tansu binary (default: tansu on PATH)
#   OW_ADMIN    the ow-admin binary (default: `cargo run -p ow-admin` in this repository)
#   PARTITIONS  one partition count for every topic instead of the manifest's
#
# Files in DIR: ow.db (tansu's SQLite database), tansu.log, tansu.pid, tansu.port.
set -eu

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MANIFEST="$ROOT/infra/topics.txt"
TANSU="${TANSU:-tansu}"

usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

alive() {
    [ -f "$1/tansu.pid" ] && kill -0 "$(cat "$1/tansu.pid")" 2>/dev/null
}

admin() {
    if [ -n "${OW_ADMIN:-}" ]; then
        "$OW_ADMIN" "$@"
    else
        cargo run --quiet --manifest-path "$ROOT/Cargo.toml" -p ow-admin -- "$@"
    fi
}

stop() {
    dir="$1"
    if ! alive "$dir"; then
        rm -f "$dir/tansu.pid"
        echo "local-broker: no tansu running in $dir"
        return 0
    fi
    pid="$(cat "$dir/tansu.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge 100 ]; then
            # tansu 0.6.0 sometimes ignores SIGTERM (infra/README.md, "tansu 0.6.0").
            echo "local-broker: tansu (pid $pid) ignored SIGTERM for 10 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$dir/tansu.pid"
    echo "local-broker: stopped tansu (pid $pid) in $dir"
}

start() {
    dir="$1"
    port="$2"
    case "$port" in
        ''|*[!0-9]*) echo "local-broker: $port is not a port number" >&2; exit 2 ;;
    esac
    if ! "$TANSU" --version >/dev/null 2>&1; then
        echo "local-broker: $TANSU not found; install it with" >&2
        echo "  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql" >&2
        exit 1
    fi
    if ! sqlite3 -version >/dev/null 2>&1; then
        echo "local-broker: sqlite3 not found (needed to index tansu's header table); install it" >&2
        echo "  with your package manager, e.g. apt-get install sqlite3" >&2
        exit 1
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if alive "$dir"; then
        echo "local-broker: tansu already runs in $dir (pid $(cat "$dir/tansu.pid"))" >&2
        exit 1
    fi
    # tansu resolves the SQLite URL against its working directory (`sqlite:///abs` doubles
    # the path in 0.6.0), so it runs from DIR; it listens on IPv4 only, hence 127.0.0.1.
    (
        cd "$dir"
        exec "$TANSU" broker \
            --storage-engine sqlite://ow.db \
            --listener-url "tcp://127.0.0.1:$port" \
            --advertised-listener-url "tcp://127.0.0.1:$port" \
            >>tansu.log 2>&1
    ) &
    echo $! >"$dir/tansu.pid"
    echo "$port" >"$dir/tansu.port"
    echo "local-broker: tansu (pid $!) on 127.0.0.1:$port, data in $dir/ow.db, log in $dir/tansu.log"
    # ow-admin waits until the broker answers, then creates what is missing.
    set -- --brokers "127.0.0.1:$port" --state-dir "$dir/admin-state" --log off \
        create-topics --manifest "$MANIFEST" --wait 60s
    if [ -n "${PARTITIONS:-}" ]; then
        set -- "$@" --partitions "$PARTITIONS"
    fi
    if ! admin "$@"; then
        echo "local-broker: topics not created; the end of $dir/tansu.log:" >&2
        tail -n 20 "$dir/tansu.log" >&2 || true
        stop "$dir" >&2
        exit 1
    fi
    if ! alive "$dir"; then
        echo "local-broker: tansu exited; the end of $dir/tansu.log:" >&2
        tail -n 20 "$dir/tansu.log" >&2 || true
        exit 1
    fi
    # tansu 0.6.0 reads the headers of every record it fetches with a query on
    # header (topition, offset_id), a column pair its schema does not index: each fetched
    # record scans the whole header table. Once a topic holds many records with headers (a
    # dead-letter topic: 8 provenance headers each) every fetch of every topic slows to a
    # crawl and clients time out. The index makes it a lookup; `if not exists` keeps a restart
    # on the same DIR idempotent.
    if ! sqlite3 -cmd ".timeout 30000" "$dir/ow.db" \
        "create index if not exists ow_header_record on header (topition, offset_id);"; then
        echo "local-broker: could not index tansu's header table in $dir/ow.db" >&2
        stop "$dir" >&2
        exit 1
    fi
}

[ $# -ge 1 ] || usage
case "$1" in
    start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
