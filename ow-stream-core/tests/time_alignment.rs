//! Stream–table time alignment (Kafka Streams' `max.task.idle.ms`): a task that reads a
//! stream and a table processes their records in timestamp order, waiting for a partition
//! whose records are still to be fetched, so a stream record finds the table row written
//! before it even when the stream's records were fetched first. Join misses are counted.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

const PARTITIONS: i32 = 4;
const CUSTOMERS: usize = 8;
const ORDERS: usize = 40;

fn orders() -> Topic<String, i64> {
    Topic::new("orders", StringSerde, JsonSerde::new())
}

fn customers() -> Topic<String, String> {
    Topic::new("customers", StringSerde, JsonSerde::new())
}

fn enriched() -> Topic<String, String> {
    Topic::new("enriched", StringSerde, JsonSerde::new())
}

/// Orders keyed by customer, joined with the customers table.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let names = b.table(&customers(), Materialized::as_("customers"));
    b.stream(&orders())
        .join(&names, |_, cents, name: String| format!("{name}:{cents}"))
        .to(&enriched());
    b.build().unwrap()
}

#[test]
fn a_join_miss_is_counted_in_the_test_driver() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let o = driver.input_topic(&orders());
    let c = driver.input_topic(&customers());
    o.pipe_input_at("c1".into(), 100, 10).unwrap();
    assert_eq!(driver.metrics().join_misses, 1);
    c.pipe_input_at("c1".into(), "Ada".into(), 20).unwrap();
    o.pipe_input_at("c1".into(), 200, 30).unwrap();
    assert_eq!(driver.metrics().join_misses, 1);
    let out = driver.output_topic(&enriched()).read_values().unwrap();
    assert_eq!(out, vec!["Ada:200".to_string()]);
    let mut text = String::new();
    driver.encode_metrics(&mut text).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ow_stream_dropped_records_total{")
                && l.contains("reason=\"join_miss\"")
                && l.ends_with("} 1")),
        "{text}"
    );
}

/// Writes every order (timestamps from 10 s on), then every customer (timestamp 1 s).
async fn produce_orders_then_customers(env: &TestEnv) {
    let orders_in: Vec<(String, i64, i64)> = (0..ORDERS)
        .map(|i| (format!("c{}", i % CUSTOMERS), i as i64, 10_000 + i as i64))
        .collect();
    produce_at(env, &orders(), &orders_in).await;
    let customers_in: Vec<(String, String, i64)> = (0..CUSTOMERS)
        .map(|i| (format!("c{i}"), format!("Customer {i}"), 1_000))
        .collect();
    produce_at(env, &customers(), &customers_in).await;
}

on_both_backends!(orders_written_before_their_customers_still_join);

/// Every order is in its topic before any customer is, but the customers carry earlier
/// timestamps: processed in timestamp order, every order joins.
async fn orders_written_before_their_customers_still_join(env: TestEnv) {
    for t in ["orders", "customers", "enriched"] {
        env.create(t, PARTITIONS).await;
    }
    env.create_internal("aligned-customers-changelog", PARTITIONS);
    env.create_internal("aligned-dlq", 1);
    produce_orders_then_customers(&env).await;

    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(topology(), env.config("aligned", dir.path())).unwrap();
    streams.start().await.unwrap();
    wait_for(
        "every order joined or missed",
        Duration::from_secs(60),
        || {
            let m = streams.metrics();
            let joined = streams
                .node_counts()
                .get("enriched-sink")
                .copied()
                .unwrap_or(0);
            joined + m.join_misses >= ORDERS as u64
        },
    )
    .await;
    assert_eq!(streams.metrics().join_misses, 0);
    streams.close().await.unwrap();
    let out = env.read_all("enriched").await;
    assert_eq!(out.len(), ORDERS);
}

/// With the alignment turned off (Kafka Streams' `max.task.idle.ms = -1`), records are
/// processed as fetched, and the misses are there to see in the metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_alignment_the_misses_are_counted() {
    let env = TestEnv::local();
    for t in ["orders", "customers", "enriched"] {
        env.create(t, 1).await;
    }
    produce_orders_then_customers(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("unaligned", dir.path()).with_max_task_idle(None);
    let mut streams = Streams::new(topology(), config).unwrap();
    streams.start().await.unwrap();
    let table = streams
        .key_value_store::<String, String>("customers")
        .unwrap();
    wait_for("every record processed", Duration::from_secs(60), || {
        let joined = streams
            .node_counts()
            .get("enriched-sink")
            .copied()
            .unwrap_or(0);
        joined + streams.metrics().join_misses >= ORDERS as u64
            && table.all().map(|a| a.len()).unwrap_or(0) == CUSTOMERS
    })
    .await;
    let m = streams.metrics();
    let joined = streams
        .node_counts()
        .get("enriched-sink")
        .copied()
        .unwrap_or(0);
    assert_eq!(joined + m.join_misses, ORDERS as u64);
    assert!(m.join_misses > 0, "the orders were read first: some miss");
    streams.close().await.unwrap();
}
