#!/bin/sh
# Creates the pipeline's topics on a Kafka cluster, idempotently (`--if-not-exists`): the
# one-shot `topics` service of docker-compose.yml runs it inside the apache/kafka image.
# The topics and their configs come from the manifest, topics.txt (one topic per line:
# NAME PARTITIONS [KEY=VALUE ...]), the same file infra/local-broker.sh feeds to
# `ow-admin create-topics` for tansu.
#
# The applications create only their own internal topics (changelogs, repartition topics,
# dead-letter topics) and refuse to start while one of these is missing.
#
# Environment:
#   BOOTSTRAP   Kafka bootstrap servers (default kafka:19092, the compose network listener)
#   PARTITIONS  one partition count for every topic instead of the manifest's. The raw topic
#               and the four outputs of ow-processor must have the same count: a player's
#               records then have the same partition number in each of them.
#   MANIFEST    the topic manifest (default /topics.txt, where compose mounts infra/topics.txt)
#   KAFKA_BIN   where kafka-topics.sh is (default /opt/kafka/bin, as in apache/kafka)
set -eu

BOOTSTRAP="${BOOTSTRAP:-kafka:19092}"
PARTITIONS="${PARTITIONS:-}"
MANIFEST="${MANIFEST:-/topics.txt}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
TOPICS="$KAFKA_BIN/kafka-topics.sh"

# The broker may still be starting when this runs outside compose's health check.
tries=0
until "$TOPICS" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "create-topics: Kafka at $BOOTSTRAP did not answer within 2 minutes" >&2
        exit 1
    fi
    sleep 2
done

# One manifest line: NAME PARTITIONS [KEY=VALUE ...] (comments and blank lines skipped).
grep -v '^[[:space:]]*\(#\|$\)' "$MANIFEST" | sed 's/#.*//' | while read -r topic count configs; do
    [ -n "$topic" ] || continue
    set --
    for config in $configs; do
        set -- "$@" --config "$config"
    done
    "$TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$topic" --partitions "${PARTITIONS:-$count}" --replication-factor 1 "$@"
    echo "create-topics: $topic ready"
done

# One summary line per topic (partitions, replication, configs).
"$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic 'ow\..*' | grep -v 'Partition:' || true
