//! `Repartitioned::with_number_of_partitions`: an explicit repartition topic gets the count
//! asked for, whatever its source has; the records spread over all of its partitions and are
//! aggregated exactly; an existing topic with another count, or a table joined downstream
//! with another count, fails `start()` with a clear error; `describe()` shows the count.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::admin::Admin;
use ow_stream_core::dsl::{Materialized, Repartitioned};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{Error, StreamsBuilder, Topic, Topology};

const SOURCE_PARTITIONS: i32 = 2;
const REPARTITION_PARTITIONS: u32 = 8;
const ORDERS: usize = 200;
const CUSTOMERS: usize = 40;

fn orders() -> Topic<String, String> {
    Topic::new("orders", StringSerde, JsonSerde::new())
}

/// Orders keyed by order id, their value the customer: re-keyed by customer through an
/// 8-partition repartition topic, counted per customer.
fn topology(partitions: u32) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .select_key(|_, customer: &String| customer.clone())
        .repartition(
            Repartitioned::as_("by-customer")
                .with_key_serde(StringSerde)
                .with_number_of_partitions(partitions),
        )
        .group_by_key()
        .count(Materialized::as_("orders-per-customer"));
    b.build().unwrap()
}

fn order_records() -> Vec<(String, String, i64)> {
    (0..ORDERS)
        .map(|i| {
            (
                format!("order-{i}"),
                format!("c{}", i % CUSTOMERS),
                1_000 + i as i64,
            )
        })
        .collect()
}

#[test]
fn describe_shows_the_count() {
    let text = topology(REPARTITION_PARTITIONS).describe().to_string();
    assert!(
        text.contains(
            "Sink: by-customer-repartition-sink (topic: ${application_id}-by-customer-repartition, partitions: 8)"
        ),
        "{text}"
    );
    let json = serde_json::to_value(topology(REPARTITION_PARTITIONS).describe()).unwrap();
    assert!(json.to_string().contains("\"partitions\":8"), "{json}");
    // Without a count, the text and the data stay as before.
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .repartition(Repartitioned::as_("plain"))
        .to(&orders());
    let plain = b.build().unwrap().describe();
    assert!(!plain.to_string().contains("partitions:"), "{plain}");
    assert!(
        !serde_json::to_string(&plain)
            .unwrap()
            .contains("partitions")
    );
}

#[test]
fn a_count_of_zero_is_a_build_error() {
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .repartition(Repartitioned::as_("none").with_number_of_partitions(0))
        .to(&orders());
    let e = b.build().unwrap_err().to_string();
    assert!(
        e.contains("none-repartition") && e.contains("with_number_of_partitions"),
        "{e}"
    );
}

/// Records written to each partition of `topic` (end offsets: the local log purges consumed
/// repartition records, so reading them back would find fewer).
async fn written_per_partition(env: &TestEnv, topic: &str) -> Vec<i64> {
    let admin = Admin::new(&env.config("admin", std::path::Path::new("."))).unwrap();
    let offsets = admin.topic_offsets(&[topic]).await.unwrap();
    let mut partitions: Vec<_> = offsets[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.end))
        .collect();
    partitions.sort();
    partitions.into_iter().map(|(_, end)| end).collect()
}

on_both_backends!(records_spread_over_the_partitions_asked_for);

async fn records_spread_over_the_partitions_asked_for(env: TestEnv) {
    env.create("orders", SOURCE_PARTITIONS).await;
    let n = REPARTITION_PARTITIONS as i32;
    // The mock cluster does not let the application create topics; the local log does.
    env.create_internal("rp8-by-customer-repartition", n);
    env.create_internal("rp8-orders-per-customer-changelog", n);
    env.create_internal("rp8-dlq", 1);
    produce_at(&env, &orders(), &order_records()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(
        topology(REPARTITION_PARTITIONS),
        env.config("rp8", dir.path()),
    )
    .unwrap();
    streams.start().await.unwrap();
    let counts = streams
        .key_value_store::<String, i64>("orders-per-customer")
        .unwrap();
    wait_for("every order counted", Duration::from_secs(60), || {
        counts
            .all()
            .map(|a| a.iter().map(|(_, v)| v).sum::<i64>())
            .unwrap_or(0)
            == ORDERS as i64
    })
    .await;
    let all = counts.all().unwrap();
    assert_eq!(all.len(), CUSTOMERS);
    assert!(
        all.iter().all(|(_, v)| *v == (ORDERS / CUSTOMERS) as i64),
        "{all:?}"
    );
    streams.close().await.unwrap();
    let written = written_per_partition(&env, "rp8-by-customer-repartition").await;
    assert_eq!(written.len(), n as usize, "{written:?}");
    assert_eq!(written.iter().sum::<i64>(), ORDERS as i64, "{written:?}");
    // 40 customers over 8 partitions: more partitions used than the source's 2.
    let used = written.iter().filter(|&&w| w > 0).count();
    assert!(used > SOURCE_PARTITIONS as usize, "{written:?}");
    // The store downstream has one changelog partition per task of the 8.
    let changelog = written_per_partition(&env, "rp8-orders-per-customer-changelog").await;
    assert_eq!(changelog.len(), n as usize, "{changelog:?}");
}

on_both_backends!(an_existing_topic_with_another_count_fails_start);

async fn an_existing_topic_with_another_count_fails_start(env: TestEnv) {
    env.create("orders", SOURCE_PARTITIONS).await;
    env.create("rpx-by-customer-repartition", 3).await;
    env.create_internal("rpx-orders-per-customer-changelog", 8);
    env.create_internal("rpx-dlq", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(
        topology(REPARTITION_PARTITIONS),
        env.config("rpx", dir.path()),
    )
    .unwrap();
    let e = streams.start().await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::Config { .. })
            && text.contains("rpx-by-customer-repartition has 3 partitions; it needs 8"),
        "{text}"
    );
}

on_both_backends!(a_table_with_another_count_is_not_co_partitioned);

async fn a_table_with_another_count_is_not_co_partitioned(env: TestEnv) {
    let customers: Topic<String, String> = Topic::new("customers", StringSerde, JsonSerde::new());
    env.create("orders", SOURCE_PARTITIONS).await;
    env.create("customers", 4).await;
    env.create("enriched", 4).await;
    let b = StreamsBuilder::new();
    let names = b.table(&customers, Materialized::as_("customers"));
    b.stream(&orders())
        .select_key(|_, customer: &String| customer.clone())
        .repartition(
            Repartitioned::as_("by-customer")
                .with_key_serde(StringSerde)
                .with_number_of_partitions(REPARTITION_PARTITIONS),
        )
        .join(&names, |_, order: String, name: String| {
            format!("{order}:{name}")
        })
        .to(&Topic::new(
            "enriched",
            StringSerde,
            JsonSerde::<String>::new(),
        ));
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(b.build().unwrap(), env.config("rpj", dir.path())).unwrap();
    let e = streams.start().await.unwrap_err();
    match e {
        Error::NotCopartitioned {
            repartition_topic,
            expected,
            topic,
            actual,
            ..
        } => {
            assert_eq!(repartition_topic, "rpj-by-customer-repartition");
            assert_eq!((expected, topic.as_str(), actual), (8, "customers", 4));
        }
        other => panic!("expected NotCopartitioned, got {other}"),
    }
}
