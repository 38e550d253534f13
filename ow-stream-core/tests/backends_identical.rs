//! One topology, one input, two backends: the output topics of a run on librdkafka's mock
//! cluster and of a run on the durable local log are byte-identical, partition by partition
//! (same partitioner, same encoding, same order).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, wait_for};
use ow_stream_core::client::Producer;
use ow_stream_core::dsl::{Grouped, Materialized, TimeWindows, Windowed};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{AvroSerde, JsonSerde, StringSerde};
use ow_stream_core::{Headers, RawRecord, Record, StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

const VIEW_SCHEMA: &str = r#"{"type": "record", "name": "PageView", "namespace": "test",
  "fields": [{"name": "user", "type": "string"}, {"name": "page", "type": "string"},
             {"name": "millis", "type": "long"}]}"#;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct PageView {
    user: String,
    page: String,
    millis: i64,
}

/// Output partitions equal the repartition partitions and outputs keep the grouping key, so each
/// output partition is written by exactly one task, in one deterministic order.
const PARTITIONS: i32 = 3;

fn topology(registry: &SchemaRegistry) -> Topology {
    let views: Topic<String, PageView> = Topic::new(
        "views",
        StringSerde,
        AvroSerde::<PageView>::from_avsc(registry, VIEW_SCHEMA).unwrap(),
    );
    let b = StreamsBuilder::new();
    let pages = b.stream(&views).filter(|_, v| !v.page.is_empty()).group_by(
        |_, v| v.page.clone(),
        Grouped::as_("by-page")
            .with_key_serde(StringSerde)
            .with_value_serde(AvroSerde::<PageView>::from_avsc(registry, VIEW_SCHEMA).unwrap()),
    );
    pages
        .count(Materialized::as_("page-counts"))
        .to_stream()
        .to(&Topic::new(
            "page-counts",
            StringSerde,
            JsonSerde::<i64>::new(),
        ));
    pages
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("page-minutes"))
        .to_stream()
        // Same key as the task's partition: each output partition has one writer.
        .map(|w: Windowed<String>, n| (w.key, (w.window.start, n)))
        .to(&Topic::new(
            "page-minutes",
            StringSerde,
            JsonSerde::<(i64, i64)>::new(),
        ));
    b.build().unwrap()
}

/// Runs the topology on `env` over the same 600 input records; returns the output topics.
async fn run(env: TestEnv, app: &str) -> BTreeMap<&'static str, Vec<RawRecord>> {
    // One input partition: each repartition partition then has one writer, in one order.
    env.create("views", 1).await;
    env.create("page-counts", PARTITIONS).await;
    env.create("page-minutes", PARTITIONS).await;
    env.create_internal(&format!("{app}-by-page-repartition"), PARTITIONS);
    env.create_internal(&format!("{app}-page-counts-changelog"), PARTITIONS);
    env.create_internal(&format!("{app}-page-minutes-changelog"), PARTITIONS);
    env.create_internal(&format!("{app}-dlq"), 1);
    let registry = SchemaRegistry::mock(&format!("identical-{app}"));
    let state = tempfile::tempdir().unwrap();
    // No record cache: what leaves a cache depends on when commits happen, which differs from
    // run to run; every update is deterministic.
    let config = env
        .config(app, state.path())
        .with_internal_topic_partitions(PARTITIONS)
        .with_cache_max_bytes(0);

    // Same records, same timestamps, same headers, sent one by one (same order per partition).
    let producer = Producer::new(&config).unwrap();
    let views: Topic<String, PageView> = Topic::new(
        "views",
        StringSerde,
        AvroSerde::<PageView>::from_avsc(&registry, VIEW_SCHEMA).unwrap(),
    );
    for i in 0..600i64 {
        let view = PageView {
            user: format!("u{}", i % 17),
            page: format!("/p{}", i % 11),
            millis: i * 700,
        };
        let record = Record::new(view.user.clone(), view, 1_700_000_000_000 + i * 700)
            .with_headers(Headers::new().with("seq", i.to_string()));
        producer.send_record(&views, &record).await.unwrap();
    }

    let mut streams = Streams::new(topology(&registry), config).unwrap();
    streams.start().await.unwrap();
    wait_for("all views counted", Duration::from_secs(60), || {
        streams
            .key_value_store::<String, i64>("page-counts")
            .unwrap()
            .all()
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>()
            == 600
    })
    .await;
    streams.close().await.unwrap();
    let mut out = BTreeMap::new();
    for topic in ["page-counts", "page-minutes"] {
        out.insert(topic, env.read_all(topic).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_write_the_same_bytes() {
    let kafka = run(TestEnv::mock(), "same-app").await;
    let local = run(TestEnv::local(), "same-app").await;
    for (topic, records) in &kafka {
        let other = &local[topic];
        assert_eq!(records.len(), other.len(), "{topic}: record counts");
        assert!(!records.is_empty());
        for (a, b) in records.iter().zip(other) {
            assert_eq!(
                (
                    a.partition,
                    a.offset,
                    a.timestamp,
                    &a.key,
                    &a.value,
                    &a.headers
                ),
                (
                    b.partition,
                    b.offset,
                    b.timestamp,
                    &b.key,
                    &b.value,
                    &b.headers
                ),
                "{topic}"
            );
        }
    }
}
