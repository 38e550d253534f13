//! Foreign-key table–table joins (`Table::join_on_foreign_key`, `left_join_on_foreign_key`):
//! orders (order id → customer, amount) joined to customers (customer id → country). On the
//! test driver: an order before its customer, a customer arriving, a customer update fanning
//! out to several orders, an order changing customer, a customer deleted, an order deleted,
//! all with hand-computed change sequences and final stores. On both backends, with the
//! orders topic at 3 partitions and the customers topic at 2 (not co-partitioned): the
//! result stores equal the test driver's, and come back exact after a crash that loses the
//! state directory.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestEnv;
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{Headers, StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    customer: String,
    amount: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer {
    country: String,
}

fn orders() -> Topic<String, Order> {
    Topic::new("orders", StringSerde, JsonSerde::new())
}

fn customers() -> Topic<String, Customer> {
    Topic::new("customers", StringSerde, JsonSerde::new())
}

fn out(name: &str) -> Topic<String, Option<String>> {
    Topic::new(name, StringSerde, JsonSerde::new())
}

const JOINS: [&str; 2] = ["order-countries", "order-countries-left"];

/// The inner and the left foreign-key join of orders with customers, each result's changes
/// written to a topic named after its store plus `-out`.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let orders = b.table(&orders(), Materialized::as_("orders"));
    let customers = b.table(&customers(), Materialized::as_("customers"));
    orders
        .join_on_foreign_key(
            &customers,
            |o: &Order| o.customer.clone(),
            |o: &Order, c: Customer| format!("{}@{}", o.amount, c.country),
            Materialized::as_("order-countries").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("order-countries-out"));
    orders
        .left_join_on_foreign_key(
            &customers,
            |o: &Order| o.customer.clone(),
            |o: &Order, c: Option<Customer>| {
                format!("{}@{}", o.amount, c.map_or("-".into(), |c| c.country))
            },
            Materialized::as_("order-countries-left").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("order-countries-left-out"));
    b.build().unwrap()
}

fn order(customer: &str, amount: i64) -> Order {
    Order {
        customer: customer.into(),
        amount,
    }
}

fn customer(country: &str) -> Customer {
    Customer {
        country: country.into(),
    }
}

type Changes = Vec<(String, Option<String>)>;

fn changes(list: &[(&str, Option<&str>)]) -> Changes {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

fn rows(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn orders_follow_their_customers() {
    let d = TopologyTestDriver::new(topology()).unwrap();
    let o = d.input_topic(&orders());
    let c = d.input_topic(&customers());
    // An order before its customer: no inner result, a left result without a country.
    o.pipe_input_at("o1".into(), order("c1", 10), 1).unwrap();
    // The customer arrives.
    c.pipe_input_at("c1".into(), customer("PT"), 2).unwrap();
    o.pipe_input_at("o2".into(), order("c1", 20), 3).unwrap();
    // A customer update fans out to both orders.
    c.pipe_input_at("c1".into(), customer("ES"), 4).unwrap();
    c.pipe_input_at("c2".into(), customer("FR"), 5).unwrap();
    // o1 moves to c2: its result is replaced, and it no longer follows c1.
    o.pipe_input_at("o1".into(), order("c2", 11), 6).unwrap();
    c.pipe_input_at("c1".into(), customer("DE"), 7).unwrap();
    // c1 deleted: o2's inner result goes, its left result loses the country.
    c.pipe_tombstone_at("c1".into(), 8).unwrap();
    // o1 deleted: its results go, and c2's next update reaches nothing.
    o.pipe_tombstone_at("o1".into(), 9).unwrap();
    c.pipe_input_at("c2".into(), customer("IT"), 10).unwrap();
    o.pipe_input_at("o3".into(), order("c2", 30), 11).unwrap();
    o.pipe_input_at("o4".into(), order("c9", 5), 12).unwrap();
    // o3 moves to a customer that does not exist (yet): the inner result is deleted.
    o.pipe_input_at("o3".into(), order("c8", 31), 13).unwrap();
    c.pipe_input_at("c8".into(), customer("NL"), 14).unwrap();
    // A delete of an order that never was changes nothing.
    o.pipe_tombstone_at("o9".into(), 15).unwrap();

    let read = |t: &str| d.output_topic(&out(t)).read_key_values().unwrap();
    assert_eq!(
        read("order-countries-out"),
        changes(&[
            ("o1", Some("10@PT")),
            ("o2", Some("20@PT")),
            ("o1", Some("10@ES")),
            ("o2", Some("20@ES")),
            ("o1", Some("11@FR")),
            ("o2", Some("20@DE")),
            ("o2", None),
            ("o1", None),
            ("o3", Some("30@IT")),
            ("o3", None),
            ("o3", Some("31@NL")),
        ])
    );
    assert_eq!(
        read("order-countries-left-out"),
        changes(&[
            ("o1", Some("10@-")),
            ("o1", Some("10@PT")),
            ("o2", Some("20@PT")),
            ("o1", Some("10@ES")),
            ("o2", Some("20@ES")),
            ("o1", Some("11@FR")),
            ("o2", Some("20@DE")),
            ("o2", Some("20@-")),
            ("o1", None),
            ("o3", Some("30@IT")),
            ("o4", Some("5@-")),
            ("o3", Some("31@-")),
            ("o3", Some("31@NL")),
        ])
    );
    let store = |name: &str| {
        d.key_value_store::<String, String>(name)
            .unwrap()
            .all()
            .unwrap()
    };
    assert_eq!(store("order-countries"), rows(&[("o3", "31@NL")]));
    assert_eq!(
        store("order-countries-left"),
        rows(&[("o2", "20@-"), ("o3", "31@NL"), ("o4", "5@-")])
    );
}

#[test]
fn describe_shows_the_internal_topics_nodes_and_stores() {
    let description = topology().describe();
    let text = description.to_string();
    for join in JOINS {
        for topic in [
            "subscription-registration-topic",
            "subscription-response-topic",
        ] {
            assert!(
                text.contains(&format!("${{application_id}}-{join}-{topic}")),
                "{text}"
            );
        }
        for node in [
            format!("Processor: {join}-subscription-send (stores: [{join}-foreign-keys, orders])"),
            format!(
                "Processor: {join}-subscription-processor (stores: [{join}-subscription-store, customers])"
            ),
            format!(
                "Processor: {join}-subscription-join-foreign (stores: [{join}-subscription-store, customers])"
            ),
            format!("Processor: {join}-subscription-response-resolver (stores: [orders])"),
            format!("Processor: {join} (stores: [{join}])"),
        ] {
            assert!(text.contains(&node), "{node} not in {text}");
        }
    }
    // The orders side and the customers side are two sub-topologies, talking through the
    // internal topics.
    assert_eq!(description.subtopologies.len(), 2, "{text}");
}

/// One change of either table: `(side, key, value)`, `None` a tombstone; side 0 is orders
/// (the value picks the customer and the amount), side 1 customers.
type Op = (u8, String, Option<i64>);

const ORDERS: i64 = 24;
const CUSTOMERS: i64 = 6;

/// Changes of 24 orders and 6 customers: inserts, updates, customer changes, deletes and
/// re-inserts. The second half changes only o0–o11 and c0–c2.
fn ops(half: usize) -> Vec<Op> {
    let mut out = Vec::new();
    let (rounds, orders, customers) = if half == 0 {
        (0..4, 0..ORDERS, 0..CUSTOMERS)
    } else {
        (4..8, 0..ORDERS / 2, 0..CUSTOMERS / 2)
    };
    for round in rounds {
        for c in customers.clone() {
            // c5 never exists; customers divisible by 2 are deleted every third round.
            if c != 5 {
                let v = (round % 3 != 2 || c % 2 == 1).then_some(round * 100 + c);
                out.push((1, format!("c{c}"), v));
            }
        }
        for o in orders.clone() {
            // Orders divisible by 5 are deleted on odd rounds; the rest move customer.
            let v = (round % 2 == 0 || o % 5 != 0).then_some(round * 1000 + o);
            out.push((0, format!("o{o}"), v));
        }
    }
    out
}

fn order_of(x: i64) -> Order {
    order(&format!("c{}", (x / 7 + x) % CUSTOMERS), x)
}

fn customer_of(x: i64) -> Customer {
    customer(&format!("country{x}"))
}

/// What the test driver makes of the changes: the oracle for the backends.
fn expected(halves: &[usize]) -> BTreeMap<&'static str, Vec<(String, String)>> {
    let d = TopologyTestDriver::new(topology()).unwrap();
    let o = d.input_topic(&orders());
    let c = d.input_topic(&customers());
    let all = halves.iter().flat_map(|h| ops(*h));
    for (i, (side, k, v)) in all.enumerate() {
        let t = i as i64;
        match (side, v) {
            (0, Some(v)) => o.pipe_input_at(k, order_of(v), t).unwrap(),
            (0, None) => o.pipe_tombstone_at(k, t).unwrap(),
            (_, Some(v)) => c.pipe_input_at(k, customer_of(v), t).unwrap(),
            (_, None) => c.pipe_tombstone_at(k, t).unwrap(),
        }
    }
    JOINS
        .into_iter()
        .map(|j| {
            let mut rows = d
                .key_value_store::<String, String>(j)
                .unwrap()
                .all()
                .unwrap();
            rows.sort();
            (j, rows)
        })
        .collect()
}

async fn produce_ops(env: &TestEnv, ops: &[Op], base: i64) {
    let producer =
        ow_stream_core::client::Producer::new(&env.config("producer", std::path::Path::new(".")))
            .unwrap();
    for (i, (side, k, v)) in ops.iter().enumerate() {
        let (topic, value) = match (side, v) {
            (0, v) => (
                "orders",
                v.map(|v| serde_json::to_vec(&order_of(v)).unwrap()),
            ),
            (_, v) => (
                "customers",
                v.map(|v| serde_json::to_vec(&customer_of(v)).unwrap()),
            ),
        };
        // From an epoch time on: a producer given timestamp 0 stamps the current time.
        let ts = 1_700_000_000_000 + base + i as i64;
        producer
            .send_raw(
                topic,
                Some(k.as_bytes()),
                value.as_deref(),
                ts,
                &Headers::new(),
            )
            .await
            .unwrap();
    }
}

/// The input topics (orders at 3 partitions, customers at 2), the output topics, and the
/// internal topics the mock cluster cannot create itself.
async fn create_topics(env: &TestEnv, app: &str) {
    env.create_internal(&format!("{app}-orders-changelog"), 3);
    env.create_internal(&format!("{app}-customers-changelog"), 2);
    for join in JOINS {
        env.create_internal(&format!("{app}-{join}-changelog"), 3);
        env.create_internal(&format!("{app}-{join}-foreign-keys-changelog"), 3);
        env.create_internal(&format!("{app}-{join}-subscription-response-topic"), 3);
        env.create_internal(&format!("{app}-{join}-subscription-store-changelog"), 2);
        env.create_internal(&format!("{app}-{join}-subscription-registration-topic"), 2);
    }
    env.create_internal(&format!("{app}-dlq"), 1);
    env.create_internal(&format!("{app}-shutdown"), 1);
    env.create("orders", 3).await;
    env.create("customers", 2).await;
    for join in JOINS {
        env.create(&format!("{join}-out"), 2).await;
    }
}

async fn results(streams: &Streams) -> Option<BTreeMap<&'static str, Vec<(String, String)>>> {
    let mut out = BTreeMap::new();
    for j in JOINS {
        let mut rows = streams
            .key_value_store::<String, String>(j)
            .ok()?
            .all()
            .ok()?;
        // Rows come partition by partition.
        rows.sort();
        out.insert(j, rows);
    }
    Some(out)
}

async fn wait_for_results(streams: &Streams, want: &BTreeMap<&'static str, Vec<(String, String)>>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while results(streams).await.as_ref() != Some(want) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(results(streams).await.as_ref(), Some(want));
}

on_both_backends!(foreign_key_join_results_are_exact_after_a_crash);

async fn foreign_key_join_results_are_exact_after_a_crash(env: TestEnv) {
    let app = "fk-joins";
    create_topics(&env, app).await;
    let first_half = expected(&[0]);
    let want = expected(&[0, 1]);
    assert!(want.values().all(|rows| rows.len() > 4), "{want:?}");
    assert_ne!(first_half, want);
    produce_ops(&env, &ops(0), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let config: StreamsConfig = env.config(app, dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    // Across partitions, through both internal topics: the results equal the driver's.
    wait_for_results(&first, &first_half).await;
    let commits = first.metrics().commits;
    common::wait_for("two more commits", Duration::from_secs(60), || {
        first.metrics().commits > commits + 1
    })
    .await;
    // A crash, and the state directory lost with it: every store comes back from its
    // changelog alone.
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    produce_ops(&env, &ops(1), 1_000_000).await;
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    wait_for_results(&second, &want).await;
    second.close().await.unwrap();
}
