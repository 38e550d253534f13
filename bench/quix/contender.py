"""Quix Streams contender of bench/peers.sh: workloads (a) map + filter, (b) keyed count and
(c) OverFast events exploded into one record per (platform, mode, hero, category) of every
newer snapshot, written as a Quix Streams user would (its RocksDB state and changelog topics
for (b) and for (c)'s last snapshot time per player).

Stops by itself once it has consumed --expect records (committing on the way out) and prints
one JSON line: records consumed, ms from process start to the first and to the --bulk-th record.
"""

import argparse
import io
import json
import os
import time

START_MS = float(os.environ.get("OW_BENCH_START_MS", time.time() * 1000))

from quixstreams import Application  # noqa: E402  (imports are part of the start-up time)
from quixstreams.models.topics.manager import TopicManager  # noqa: E402

# tansu 0.6.0 leaves `retention.ms` out of its DescribeConfigs answers, which Quix Streams
# needs to derive its changelog topics' settings (it already tolerates a missing
# `retention.bytes`). Fill in Kafka's "keep forever" default before it looks.
_derive = TopicManager.derive_topic_config


def _derive_with_defaults(topics):
    topics = list(topics)
    for t in topics:
        t.broker_config.extra_config.setdefault("retention.ms", "-1")
    return _derive(topics)


TopicManager.derive_topic_config = staticmethod(_derive_with_defaults)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--workload", choices=["a", "b", "c"], required=True)
    p.add_argument("--raw-schema", default="schemas/ow.raw.player-profiles-value.avsc")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--commit-interval-ms", type=int, default=5000)
    p.add_argument("--bulk", type=int, required=True)
    p.add_argument("--expect", type=int, required=True)
    args = p.parse_args()

    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval_ms / 1000.0,
        state_dir=args.state_dir,
        processing_guarantee="at-least-once",
    )
    if args.workload == "c":
        source = app.topic("ow.raw.player-profiles", key_deserializer="bytes",
                           value_deserializer="bytes")
    else:
        source = app.topic("bench.input", key_deserializer="str", value_deserializer="bytes")
    seen = {"n": 0, "first": None, "bulk": None}

    def counted(_value):
        seen["n"] += 1
        now = time.time() * 1000 - START_MS
        if seen["first"] is None:
            seen["first"] = now
        if seen["n"] == args.bulk:
            seen["bulk"] = now
        if seen["n"] >= args.expect:
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.update(counted)
    if args.workload == "c":
        import fastavro

        with open(args.raw_schema) as f:
            schema = fastavro.parse_schema(json.load(f))
        out = app.topic("ow.stats.by-category", key_serializer="bytes", value_serializer="json")

        def decode(value):
            # Confluent framing: magic byte, 4-byte schema id, then the Avro body.
            return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)

        def explode(raw, state):
            if raw.get("outcome") != "ok" or not raw.get("body"):
                return []
            body = json.loads(raw["body"])
            updated = (body.get("summary") or {}).get("last_updated_at") or 0
            last = state.get("last_updated_at", None)
            if last is not None and updated <= last:
                return []
            state.set("last_updated_at", updated)
            records = []
            for platform, modes in (body.get("stats") or {}).items():
                for mode, stats in (modes or {}).items():
                    for hero, categories in ((stats or {}).get("career_stats") or {}).items():
                        for c in categories or []:
                            records.append({
                                "player_id": raw["player_id"], "platform": platform,
                                "gamemode": mode, "hero": hero, "category": c["category"],
                                "stats": {s["key"]: s["value"] for s in c.get("stats") or []},
                                "snapshot_at": updated,
                            })
            return records

        sdf = sdf.apply(decode).apply(explode, stateful=True, expand=True)
        category_key = ("player_id", "platform", "gamemode", "hero", "category")
        sdf.to_topic(out, key=lambda r: json.dumps([r[k] for k in category_key]).encode())
    elif args.workload == "a":
        out = app.topic("bench.map-filter", key_serializer="str", value_serializer="bytes")
        sdf = sdf.filter(lambda v: int(v[:10]) % 2 == 0).apply(lambda v: v.upper())
    else:
        out = app.topic("bench.counts", key_serializer="str", value_serializer="json")

        def count(_value, state):
            n = state.get("count", 0) + 1
            state.set("count", n)
            return n

        sdf = sdf.apply(count, stateful=True)
    if args.workload != "c":
        sdf.to_topic(out)
    app.run()
    print(json.dumps({
        "records": seen["n"],
        "first_record_ms": seen["first"] or 0.0,
        "bulk_ms": seen["bulk"] or 0.0,
        "checksum": None,
    }), flush=True)


if __name__ == "__main__":
    main()
