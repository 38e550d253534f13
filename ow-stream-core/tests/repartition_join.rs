//! A stream re-keyed before a join or an aggregation is repartitioned first, as in Kafka
//! Streams: on 4 partitions every order finds its customer (before, 5 of 20 did, silently);
//! the internal topic shows in `describe()`; `repartition(Repartitioned)` names it.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{Materialized, Repartitioned};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

const PARTITIONS: i32 = 4;
const ORDERS: usize = 20;
const CUSTOMERS: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    cents: i64,
}

fn orders() -> Topic<String, Order> {
    Topic::new("orders", StringSerde, JsonSerde::new())
}

fn customers() -> Topic<String, String> {
    Topic::new("customers", StringSerde, JsonSerde::new())
}

fn enriched() -> Topic<String, String> {
    Topic::new("enriched", StringSerde, JsonSerde::new())
}

/// Orders keyed by order id, re-keyed by customer, joined with the customers table; and the
/// revenue per customer, aggregated after the same key change.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let names = b.table(&customers(), Materialized::as_("customers"));
    let by_customer = b
        .stream(&orders())
        .select_key(|_, o: &Order| o.customer.clone())
        .named("orders-by-customer");
    by_customer
        .join(&names, |customer, o: Order, name: String| {
            format!("{customer}:{name}:{}", o.cents)
        })
        .to(&enriched());
    by_customer
        .map_values(|o: Order| o.cents)
        .with_serdes(StringSerde, JsonSerde::new())
        .group_by_key()
        .aggregate(
            || 0i64,
            |_, cents, total| total + cents,
            Materialized::as_("revenue")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        );
    b.build().unwrap()
}

fn order_records() -> Vec<(String, Order, i64)> {
    (0..ORDERS)
        .map(|i| {
            let order = Order {
                customer: format!("c{}", i % CUSTOMERS),
                cents: 100 + i as i64,
            };
            (format!("order-{i}"), order, 10_000 + i as i64)
        })
        .collect()
}

fn customer_records() -> Vec<(String, String, i64)> {
    (0..CUSTOMERS)
        .map(|i| (format!("c{i}"), format!("Customer {i}"), 1_000))
        .collect()
}

#[test]
fn describe_shows_the_repartition_topics() {
    let text = topology().describe().to_string();
    assert!(
        text.contains("${application_id}-orders-by-customer-repartition"),
        "{text}"
    );
    assert!(
        text.contains("${application_id}-revenue-repartition"),
        "{text}"
    );
    // Orders, then the join and the aggregation, each reading its repartition topic.
    assert_eq!(topology().describe().subtopologies.len(), 3, "{text}");
}

#[test]
fn every_order_joins_in_the_test_driver() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let c = driver.input_topic(&customers());
    for (k, v, ts) in customer_records() {
        c.pipe_input_at(k, v, ts).unwrap();
    }
    let o = driver.input_topic(&orders());
    for (k, v, ts) in order_records() {
        o.pipe_input_at(k, v, ts).unwrap();
    }
    let out = driver.output_topic(&enriched()).read_values().unwrap();
    assert_eq!(out.len(), ORDERS);
    assert!(out.contains(&"c3:Customer 3:103".to_string()), "{out:?}");
    let revenue = driver.key_value_store::<String, i64>("revenue").unwrap();
    assert_eq!(
        revenue.get(&"c0".into()).unwrap(),
        Some(100 + 105 + 110 + 115)
    );
}

#[test]
fn an_explicit_repartition_is_named_by_its_options() {
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .select_key(|_, o: &Order| o.customer.clone())
        .repartition(Repartitioned::as_("by-customer").with_key_serde(StringSerde))
        .group_by_key()
        .count(Materialized::as_("orders-per-customer"));
    let topology = b.build().unwrap();
    let text = topology.describe().to_string();
    assert!(text.contains("-by-customer-repartition"), "{text}");
    // Already partitioned by the key it aggregates: no second topic.
    assert!(!text.contains("orders-per-customer-repartition"), "{text}");
    let driver = TopologyTestDriver::new(topology).unwrap();
    let o = driver.input_topic(&orders());
    for (k, v, ts) in order_records() {
        o.pipe_input_at(k, v, ts).unwrap();
    }
    let counts = driver
        .key_value_store::<String, i64>("orders-per-customer")
        .unwrap();
    assert_eq!(counts.get(&"c1".into()).unwrap(), Some(4));
}

#[test]
fn a_key_change_without_serdes_is_a_clear_build_error() {
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .map(|_, o: Order| (o.customer, o.cents))
        .group_by_key()
        .count(Materialized::as_("counts"));
    let e = b.build().unwrap_err().to_string();
    assert!(
        e.contains("counts-repartition") && e.contains("serde"),
        "{e}"
    );
}

on_both_backends!(every_order_joins_on_four_partitions);

async fn every_order_joins_on_four_partitions(env: TestEnv) {
    for t in ["orders", "customers", "enriched"] {
        env.create(t, PARTITIONS).await;
    }
    for t in [
        "join4-orders-by-customer-repartition",
        "join4-revenue-repartition",
        "join4-customers-changelog",
        "join4-revenue-changelog",
    ] {
        env.create_internal(t, PARTITIONS);
    }
    env.create_internal("join4-dlq", 1);
    produce_at(&env, &customers(), &customer_records()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(topology(), env.config("join4", dir.path())).unwrap();
    streams.start().await.unwrap();
    let customers_store = streams
        .key_value_store::<String, String>("customers")
        .unwrap();
    wait_for("the customers table", Duration::from_secs(60), || {
        customers_store.all().map(|a| a.len()).unwrap_or(0) == CUSTOMERS
    })
    .await;
    produce_at(&env, &orders(), &order_records()).await;
    let revenue = streams.key_value_store::<String, i64>("revenue").unwrap();
    let expected: i64 = order_records().iter().map(|(_, o, _)| o.cents).sum();
    wait_for(
        "the revenue of every order",
        Duration::from_secs(60),
        || {
            revenue
                .all()
                .map(|a| a.iter().map(|(_, v)| v).sum::<i64>())
                .unwrap_or(0)
                == expected
        },
    )
    .await;
    wait_for("every order joined", Duration::from_secs(60), || {
        streams.node_counts().get("enriched-sink").copied() == Some(ORDERS as u64)
    })
    .await;
    streams.close().await.unwrap();
    let joined = env.read_all("enriched").await;
    assert_eq!(joined.len(), ORDERS);
    assert_eq!(streams.metrics().dead_letters, 0);
    // Each record sits in the partition of its customer, with the customer's table row.
    for r in &joined {
        let value: String = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let customer = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
        assert!(
            value.starts_with(&format!("{customer}:Customer ")),
            "{value}"
        );
    }
}
