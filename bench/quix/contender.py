"""Quix Streams contender of bench/peers.sh: workloads (a) map + filter and (b) keyed count,
written as a Quix Streams user would (its RocksDB state and changelog topics for (b)).

Stops by itself once it has consumed --expect records (committing on the way out) and prints
one JSON line: records consumed, ms from process start to the first and to the --bulk-th record.
"""

import argparse
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
    p.add_argument("--workload", choices=["a", "b"], required=True)
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
    if args.workload == "a":
        out = app.topic("bench.map-filter", key_serializer="str", value_serializer="bytes")
        sdf = sdf.filter(lambda v: int(v[:10]) % 2 == 0).apply(lambda v: v.upper())
    else:
        out = app.topic("bench.counts", key_serializer="str", value_serializer="json")

        def count(_value, state):
            n = state.get("count", 0) + 1
            state.set("count", n)
            return n

        sdf = sdf.apply(count, stateful=True)
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
