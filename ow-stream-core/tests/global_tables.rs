//! Global tables: a stream joined to a table copied whole onto every instance, by a key taken
//! from each record. On the test driver: inner and left joins, a key extracted from the value,
//! tombstones, update order, dead letters and `describe()`. On both backends: orders on 3
//! partitions joined to customers on 2 (no co-partitioning, no repartition), the store
//! bootstrapped before the first order, later updates seen by later orders, two instances
//! each seeing every key, a restart resuming from the checkpoint, a lost state directory
//! rebuilt from the topic, and an undecodable global record failing the application.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::config::OnError;
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::{Streams, StreamsState};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Customer {
    name: String,
    version: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    amount: u32,
}

fn customers() -> Topic<String, Customer> {
    Topic::json("customers")
}

fn orders() -> Topic<String, Order> {
    Topic::json("orders")
}

fn enriched() -> Topic<String, String> {
    Topic::json("enriched-orders")
}

/// Orders joined (inner) to the global customers table by the order's customer field.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let customers = b.global_table(&customers(), Materialized::as_("customers-by-id"));
    b.stream(&orders())
        .join_global(
            &customers,
            |_order_id, order| order.customer.clone(),
            |order, customer| format!("{}x{}v{}", customer.name, order.amount, customer.version),
        )
        .to(&enriched());
    b.build().unwrap()
}

fn order(customer: &str, amount: u32) -> Order {
    Order {
        customer: customer.into(),
        amount,
    }
}

fn customer(name: &str, version: u32) -> Customer {
    Customer {
        name: name.into(),
        version,
    }
}

#[test]
fn inner_join_uses_the_extracted_key_the_latest_update_and_tombstones() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let c = driver.input_topic(&customers());
    let o = driver.input_topic(&orders());
    c.pipe_input("c1".into(), customer("ada", 1)).unwrap();
    o.pipe_input("o1".into(), order("c1", 3)).unwrap();
    c.pipe_input("c1".into(), customer("ada", 2)).unwrap();
    o.pipe_input("o2".into(), order("c1", 4)).unwrap();
    // A customer the table does not know: no output, a join miss.
    o.pipe_input("o3".into(), order("c2", 5)).unwrap();
    // A tombstone deletes the row: later orders of that customer miss.
    c.pipe_raw(Some(b"c1"), None, 0).unwrap();
    o.pipe_input("o4".into(), order("c1", 6)).unwrap();
    let out = driver.output_topic(&enriched()).read_key_values().unwrap();
    assert_eq!(
        out,
        vec![
            ("o1".to_string(), "adax3v1".to_string()),
            ("o2".to_string(), "adax4v2".to_string()),
        ]
    );
    assert_eq!(driver.metrics().join_misses, 2);
    let store = driver
        .key_value_store::<String, Customer>("customers-by-id")
        .unwrap();
    assert_eq!(store.get(&"c1".into()).unwrap(), None);
}

#[test]
fn left_join_emits_every_record() {
    let b = StreamsBuilder::new();
    let customers_table = b.global_table(&customers(), Materialized::as_("customers-by-id"));
    b.stream(&orders())
        .left_join_global(
            &customers_table,
            |_, order| order.customer.clone(),
            |order, customer| match customer {
                Some(c) => format!("{}:{}", c.name, order.amount),
                None => format!("?:{}", order.amount),
            },
        )
        .to(&enriched());
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    driver
        .input_topic(&orders())
        .pipe_input("o1".into(), order("c1", 1))
        .unwrap();
    driver
        .input_topic(&customers())
        .pipe_input("c1".into(), customer("bob", 1))
        .unwrap();
    driver
        .input_topic(&orders())
        .pipe_input("o2".into(), order("c1", 2))
        .unwrap();
    let out = driver.output_topic(&enriched()).read_key_values().unwrap();
    assert_eq!(
        out,
        vec![
            ("o1".to_string(), "?:1".to_string()),
            ("o2".to_string(), "bob:2".to_string()),
        ]
    );
    assert_eq!(driver.metrics().join_misses, 0);
}

#[test]
fn an_undecodable_global_record_is_dead_lettered_with_its_provenance() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    driver
        .input_topic(&customers())
        .pipe_raw(Some(b"c1"), Some(b"not json"), 7)
        .unwrap();
    let dead = driver.dead_letters();
    assert_eq!(dead.len(), 1);
    let header = |name: &str| dead[0].headers.last_str(name).map(str::to_string);
    assert_eq!(header("ow.dlq.topic").as_deref(), Some("customers"));
    assert_eq!(header("ow.dlq.stage").as_deref(), Some("deserialize"));
    assert_eq!(header("ow.dlq.offset").as_deref(), Some("0"));
    assert_eq!(dead[0].value.as_deref(), Some(&b"not json"[..]));
    let store = driver
        .key_value_store::<String, Customer>("customers-by-id")
        .unwrap();
    assert!(store.all().unwrap().is_empty());
    assert_eq!(driver.metrics().dead_letters, 1);
}

#[test]
fn describe_shows_the_global_store_and_no_repartition_or_changelog() {
    let b = StreamsBuilder::new();
    let customers_table = b.global_table(&customers(), Materialized::as_("customers-by-id"));
    b.stream(&orders())
        // A key change upstream: a join with a global table still needs no repartition.
        .select_key(|_, o: &Order| o.customer.clone())
        .join_global(
            &customers_table,
            |_, o| o.customer.clone(),
            |o, c| format!("{}{}", c.name, o.amount),
        )
        .to(&enriched());
    let topology = b.build().unwrap();
    let d = topology.describe();
    let text = d.to_string();
    assert_eq!(d.subtopologies.len(), 1, "{text}");
    assert!(!text.contains("repartition"), "{text}");
    assert!(!text.contains("changelog: customers-by-id"), "{text}");
    assert!(
        text.contains(
            "   Sub-topology: 1 for global store (will not generate tasks)\n    Source: customers-by-id-global-source (topic: customers)\n      --> customers-by-id-global-table\n    Processor: customers-by-id-global-table (stores: [customers-by-id])\n      --> none\n      <-- customers-by-id-global-source\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "customers-by-id (key-value, sub-topology 1, changelog: customers (its source topic))"
        ),
        "{text}"
    );
    assert_eq!(d.global_stores.len(), 1);
    assert!(d.to_dot().contains("store:customers-by-id"));
}

#[test]
fn a_store_name_or_topic_used_twice_is_rejected() {
    let b = StreamsBuilder::new();
    b.global_table(&customers(), Materialized::as_("dup"));
    b.stream(&orders())
        .to_table(Materialized::as_("dup"))
        .to_stream()
        .to(&Topic::<String, Order>::json("x"));
    assert!(b.build().is_err());

    let b = StreamsBuilder::new();
    b.global_table(&customers(), Materialized::as_("a"));
    b.stream(&customers())
        .to(&Topic::<String, Customer>::json("y"));
    assert!(b.build().is_err());
}

/// The customer records produced in order: 20 customers, then 5 updates, then 1 more.
fn customer_records(phase: usize) -> Vec<(String, Customer, i64)> {
    match phase {
        0 => (0..20)
            .map(|i| (format!("c{i}"), customer(&format!("n{i}"), 1), 1_000))
            .collect(),
        1 => (0..5)
            .map(|i| (format!("c{i}"), customer(&format!("n{i}"), 2), 2_000))
            .collect(),
        _ => vec![("c7".into(), customer("n7", 3), 3_000)],
    }
}

/// The global store after `phases` phases, as the test driver builds it: the oracle.
fn expected_store(phases: usize) -> BTreeMap<String, Customer> {
    let driver = TopologyTestDriver::with_config(
        topology(),
        TestDriverConfig::default().with_persistent_stores(),
    )
    .unwrap();
    let input = driver.input_topic(&customers());
    for phase in 0..phases {
        for (k, v, t) in customer_records(phase) {
            input.pipe_input_at(k, v, t).unwrap();
        }
    }
    store_of_driver(&driver)
}

fn store_of_driver(driver: &TopologyTestDriver) -> BTreeMap<String, Customer> {
    driver
        .key_value_store::<String, Customer>("customers-by-id")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect()
}

fn store_of(streams: &Streams) -> BTreeMap<String, Customer> {
    streams
        .key_value_store::<String, Customer>("customers-by-id")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect()
}

async fn enriched_out(env: &TestEnv) -> BTreeMap<String, String> {
    env.latest_json("enriched-orders")
        .await
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect()
}

async fn wait_for_outputs(env: &TestEnv, n: usize) -> BTreeMap<String, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = enriched_out(env).await;
        if out.len() >= n {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {n} outputs: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup(env: &TestEnv, app: &str) {
    env.create("orders", 3).await;
    env.create("customers", 2).await;
    env.create("enriched-orders", 3).await;
    env.create_internal(&format!("{app}-dlq"), 1);
}

async fn start(config: &ow_stream_core::config::StreamsConfig) -> Streams {
    let mut s = Streams::new(topology(), config.clone()).unwrap();
    s.start().await.unwrap();
    s
}

on_both_backends!(orders_join_a_bootstrapped_global_table);

async fn orders_join_a_bootstrapped_global_table(env: TestEnv) {
    let app = "global-app";
    setup(&env, app).await;
    produce_at(&env, &customers(), &customer_records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config(app, dir.path());
    let first = start(&config).await;
    // Bootstrapped before `start` returned: every key is there, on this instance.
    assert_eq!(store_of(&first), expected_store(1));
    assert_eq!(first.metrics().records_restored, 20);
    let text = first.describe().to_string();
    assert!(text.contains("for global store"), "{text}");

    // Orders keyed by order id, unrelated to customer keys, on 3 partitions against 2.
    let batch: Vec<(String, Order, i64)> = (0..20)
        .map(|i| {
            (
                format!("order-{i}"),
                order(&format!("c{}", 19 - i), i),
                5_000,
            )
        })
        .collect();
    produce_at(&env, &orders(), &batch).await;
    let out = wait_for_outputs(&env, 20).await;
    for i in 0..20u32 {
        assert_eq!(
            out.get(&format!("order-{i}")),
            Some(&format!("n{}x{i}v1", 19 - i)),
            "{out:?}"
        );
    }

    // Later updates are seen by later orders.
    produce_at(&env, &customers(), &customer_records(1)).await;
    let want = expected_store(2);
    wait_for("the updates", Duration::from_secs(60), || {
        store_of(&first) == want
    })
    .await;
    let later: Vec<(String, Order, i64)> = (0..5)
        .map(|i| {
            (
                format!("later-{i}"),
                order(&format!("c{i}"), 100 + i),
                6_000,
            )
        })
        .collect();
    produce_at(&env, &orders(), &later).await;
    let out = wait_for_outputs(&env, 25).await;
    for i in 0..5u32 {
        assert_eq!(
            out.get(&format!("later-{i}")),
            Some(&format!("n{i}x{}v2", 100 + i))
        );
    }

    // A second instance of the same application (Kafka only: the local log runs one
    // instance per application) sees every key too, though it owns other partitions.
    if !env.is_local() {
        let dir2 = tempfile::tempdir().unwrap();
        let second = start(&env.config(app, dir2.path())).await;
        assert_eq!(store_of(&second), want);
        second.close().await.unwrap();
    }

    // A clean restart resumes from the checkpoint: only the record written meanwhile is read.
    first.close().await.unwrap();
    produce_at(&env, &customers(), &customer_records(2)).await;
    let restarted = start(&config).await;
    assert_eq!(restarted.metrics().records_restored, 1);
    assert_eq!(store_of(&restarted), expected_store(3));

    // A crash that loses the state directory: the store is rebuilt from the whole topic.
    restarted.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    let rebuilt = start(&config).await;
    assert_eq!(rebuilt.metrics().records_restored, 26);
    assert_eq!(store_of(&rebuilt), expected_store(3));
    assert_eq!(rebuilt.state(), StreamsState::Running);
    rebuilt.close().await.unwrap();
}

on_both_backends!(an_undecodable_global_record_fails_the_application);

async fn an_undecodable_global_record_fails_the_application(env: TestEnv) {
    let app = "global-poison";
    setup(&env, app).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env
        .config(app, dir.path())
        .with_deserialization_errors(OnError::Fail);
    let streams = start(&config).await;
    assert_eq!(streams.state(), StreamsState::Running);
    let producer = ow_stream_core::client::Producer::new(&config).unwrap();
    producer
        .send_raw(
            "customers",
            Some(b"c1"),
            Some(b"{poison"),
            1,
            &Default::default(),
        )
        .await
        .unwrap();
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
    let failure = streams.failure().unwrap();
    assert!(failure.contains("customers"), "{failure}");
    assert_eq!(streams.metrics().stream_thread_failures, 1);
    assert!(streams.close().await.is_err());
}

/// Strings, but decoding `"panic"` panics: a bug in user code on the global path.
struct PanickySerde;

impl ow_stream_core::serde::Serde<String> for PanickySerde {
    fn serialize_into(
        &self,
        _ctx: ow_stream_core::serde::SerdeContext<'_>,
        value: &String,
        out: &mut Vec<u8>,
    ) -> Result<(), ow_stream_core::serde::SerdeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn deserialize(
        &self,
        _ctx: ow_stream_core::serde::SerdeContext<'_>,
        bytes: &[u8],
    ) -> Result<String, ow_stream_core::serde::SerdeError> {
        assert!(bytes != b"panic", "the customer serde panicked");
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

on_both_backends!(a_panic_in_the_global_thread_fails_the_application);

async fn a_panic_in_the_global_thread_fails_the_application(env: TestEnv) {
    let app = "global-panic";
    setup(&env, app).await;
    let names: Topic<String, String> = Topic::new(
        "customers",
        ow_stream_core::serde::StringSerde,
        PanickySerde,
    );
    let b = StreamsBuilder::new();
    let table = b.global_table(&names, Materialized::as_("names"));
    b.stream(&orders())
        .join_global(
            &table,
            |_, o| o.customer.clone(),
            |o, n| format!("{n}{}", o.amount),
        )
        .to(&enriched());
    let dir = tempfile::tempdir().unwrap();
    let config = env.config(app, dir.path());
    let mut streams = Streams::new(b.build().unwrap(), config.clone()).unwrap();
    streams.start().await.unwrap();
    produce_at(&env, &names, &[("c1".to_string(), "panic".to_string(), 1)]).await;
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
    let failure = streams.failure().unwrap();
    assert!(failure.contains("the customer serde panicked"), "{failure}");
    assert!(streams.close().await.is_err());
}
