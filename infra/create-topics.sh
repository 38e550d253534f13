#!/bin/sh
# Creates the pipeline's topics on a Kafka cluster, idempotently (`--if-not-exists`): the
# one-shot `topics` service of docker-compose.yml runs it inside the apache/kafka image.
#
# The applications create only their own internal topics (changelogs, repartition topics,
# dead-letter topics) and refuse to start while one of these is missing.
#
# Environment:
#   BOOTSTRAP   Kafka bootstrap servers (default kafka:19092, the compose network listener)
#   PARTITIONS  partitions of every topic (default 6). ow.raw.player-profiles and the four
#               outputs of ow-processor must have the same count: a player's records then have
#               the same partition number in each of them.
#   KAFKA_BIN   where kafka-topics.sh is (default /opt/kafka/bin, as in apache/kafka)
set -eu

BOOTSTRAP="${BOOTSTRAP:-kafka:19092}"
PARTITIONS="${PARTITIONS:-6}"
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

# create TOPIC [--config key=value ...]
create() {
    topic="$1"
    shift
    "$TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1 "$@"
    echo "create-topics: $topic ready"
}

# Requests from the dashboard to ow-producer (keyed by player id).
create ow.player-requests
# One event per OverFast fetch, the raw body byte for byte: bodies go up to ow-producer's
# 8 MiB limit (a record that does not fit is written without its body).
create ow.raw.player-profiles --config max.message.bytes=8388608
# ow-processor's outputs (Topics::output_specs): three tables, compacted, and one event log.
create ow.stats.by-category --config cleanup.policy=compact
create ow.players.profile --config cleanup.policy=compact
create ow.stats.deltas
create ow.stats.daily --config cleanup.policy=compact

# One summary line per topic (partitions, replication, configs).
"$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic 'ow\..*' | grep -v 'Partition:' || true
