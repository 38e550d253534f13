//! Orders, customers and payments: the library for a shop, not for Overwatch, in one file.
//!
//! What it shows, in Kafka Streams' vocabulary:
//! - a **table** (`customers`, keyed by customer id) and a **stream–table join** that adds
//!   each order's country, after an explicit `repartition` (orders are keyed by order id);
//! - **revenue per country per hour**: re-keyed by country (`group_by`, through a repartition
//!   topic), **tumbling windows** of one hour with five minutes of grace, summed with
//!   `aggregate`, and **`suppress(until_window_closes)`**: one final figure per country and
//!   hour, written once the hour (and its grace) is over, never a running total;
//! - **sessions per customer**: `windowed_by_session` with a 30-minute inactivity gap (two
//!   orders 15 minutes apart are one visit; 70 minutes apart, two);
//! - **an orders–payments stream–stream join** (both keyed by order id): `left_join_stream`
//!   within 10 minutes after the order: a payment in time settles the order; an order without
//!   one comes out unpaid once its window has closed;
//! - **interactive queries**: the windowed revenue store and the customers table, read while
//!   the application runs.
//!
//! `run_on_test_driver` runs it on the broker-free test driver; `main` runs the same topology
//! on the durable local backend (topics in a temporary directory), which is what
//! `cargo run -p ow-stream-core --example orders` does (a few seconds). `tests/examples.rs`
//! runs both and checks they agree.
//!
//! Every topic has one partition: stream time, which closes windows, advances per partition,
//! and one partition lets the last order close every earlier window.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::dsl::{
    BufferConfig, Grouped, JoinWindows, Materialized, Repartitioned, SessionWindows, StreamJoined,
    Suppressed, TimeWindows, Windowed,
};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{Record, StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

/// 2024-01-01T00:00:00Z, in milliseconds.
const T0: i64 = 1_704_067_200_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// An order (the value of `orders`, keyed by order id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) order_id: String,
    pub(crate) customer: String,
    pub(crate) cents: i64,
}

/// A customer (the value of the `customers` table, keyed by customer id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Customer {
    pub(crate) name: String,
    pub(crate) country: String,
}

/// A payment (the value of `payments`, keyed by order id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub(crate) order_id: String,
    pub(crate) cents: i64,
}

/// An order and whether it was paid within 10 minutes (the value of `settlements`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Settlement {
    pub(crate) order_id: String,
    pub(crate) customer: String,
    pub(crate) paid: bool,
}

/// One visit of a customer (the value of `customer-sessions`, keyed by customer id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Visit {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) orders: i64,
}

/// The customers, written before any order: (id, name, country).
pub(crate) const CUSTOMERS: &[(&str, &str, &str)] =
    &[("c1", "Ada", "FR"), ("c2", "Bo", "SE"), ("c3", "Cy", "FR")];

/// The orders, in this order: (order id, customer, cents, minutes after T0).
pub(crate) const ORDERS: &[(&str, &str, i64, i64)] = &[
    ("o1", "c1", 1_200, 5),
    ("o2", "c2", 800, 10),
    ("o3", "c1", 500, 20),
    ("o4", "c3", 3_000, 50),
    // Stream time 01:30 closes the first hour (00:00–01:00, grace until 01:05).
    ("o5", "c1", 700, 90),
    ("o6", "c2", 400, 100),
    // Stream time 03:00 closes the second hour; the fourth stays open.
    ("o7", "c3", 100, 180),
];

/// The payments, in this order: (order id, cents, minutes after T0). o2's comes 20 minutes
/// after the order: too late.
pub(crate) const PAYMENTS: &[(&str, i64, i64)] = &[
    ("o1", 1_200, 6),
    ("o2", 800, 30),
    ("o4", 3_000, 55),
    ("o5", 700, 95),
];

fn orders() -> Topic<String, Order> {
    Topic::json("orders")
}

fn customers() -> Topic<String, Customer> {
    Topic::json("customers")
}

fn payments() -> Topic<String, Payment> {
    Topic::json("payments")
}

/// `revenue-per-country`: one final sum per country and hour.
fn revenue() -> Topic<Windowed<String>, i64> {
    Topic::json_keys_and_values("revenue-per-country")
}

fn sessions() -> Topic<String, Visit> {
    Topic::json("customer-sessions")
}

fn settlements() -> Topic<String, Settlement> {
    Topic::json("settlements")
}

/// The whole application.
pub(crate) fn topology() -> Result<Topology, Box<dyn Error>> {
    let builder = StreamsBuilder::new();
    let customers = builder.table(&customers(), Materialized::as_("customers"));
    let orders = builder.stream(&orders());

    // Revenue per country and hour, final results only. The orders are keyed by order id:
    // re-keyed by customer (through a repartition topic) to meet the customers table.
    orders
        .select_key(|_order_id, order| order.customer.clone())
        .repartition(
            Repartitioned::as_("by-customer")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        )
        .join(&customers, |_customer, order: Order, customer: Customer| {
            (customer.country, order.cents)
        })
        .group_by(
            |_customer, (country, _cents)| country.clone(),
            Grouped::as_("by-country")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        )
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(3_600),
            Duration::from_secs(300),
        ))
        .aggregate(
            || 0_i64,
            |_country, (_, cents), sum| sum + cents,
            Materialized::as_("revenue").with_value_serde(JsonSerde::new()),
        )
        .suppress(
            Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("final-revenue"),
        )
        .to_stream()
        .to(&revenue());

    // Visits per customer: orders at most 30 minutes apart.
    orders
        .group_by(
            |_order_id, order| order.customer.clone(),
            Grouped::as_("orders-by-customer")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        )
        .windowed_by_session(
            SessionWindows::with_inactivity_gap(Duration::from_secs(1_800))
                .grace(Duration::from_secs(300)),
        )
        .count(Materialized::as_("visits"))
        .to_stream()
        // A merged-away session comes as `None`: only live sessions are written.
        .flat_map(|window: Windowed<String>, orders: Option<i64>| {
            orders.map(|orders| {
                let visit = Visit {
                    start: window.window.start,
                    end: window.window.end,
                    orders,
                };
                (window.key, visit)
            })
        })
        .to(&sessions());

    // Orders paid within 10 minutes, or not: both topics are keyed by order id (and have the
    // same partition count), so they join as they are.
    orders
        .left_join_stream(
            &builder.stream(&payments()),
            |order_id, order: Order, payment: Option<Payment>| Settlement {
                order_id: order_id.clone(),
                customer: order.customer,
                paid: payment.is_some_and(|p| p.cents >= order.cents),
            },
            JoinWindows::of_time_difference_and_grace(
                Duration::from_secs(600),
                Duration::from_secs(60),
            )
            // A payment comes after its order, never before.
            .before(Duration::ZERO),
            StreamJoined::as_("order-payments"),
        )
        .to(&settlements());
    Ok(builder.build()?)
}

/// What a run gives: the outputs and two interactive queries.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outcome {
    /// Final revenue per (country, hour start).
    pub(crate) revenue: BTreeMap<(String, i64), i64>,
    /// The latest visit per (customer, visit start).
    pub(crate) visits: BTreeMap<(String, i64), Visit>,
    /// Per order: paid in time or not (orders whose window is still open are missing).
    pub(crate) settlements: BTreeMap<String, bool>,
    /// Interactive query of the `revenue` window store: France's hours, final or not.
    pub(crate) france_by_hour: Vec<(i64, i64)>,
    /// Interactive query of the `customers` table: c1's name.
    pub(crate) c1_name: Option<String>,
}

impl Outcome {
    fn add_revenue(&mut self, key: Windowed<String>, cents: i64) {
        self.revenue.insert((key.key, key.window.start), cents);
    }

    fn add_visit(&mut self, customer: String, visit: Visit) {
        self.visits.insert((customer, visit.start), visit);
    }

    fn add_settlement(&mut self, s: Settlement) {
        self.settlements.insert(s.order_id, s.paid);
    }
}

/// Every input record in time order: customers first (a day before the orders, so the table
/// has them when the orders come), then orders and payments merged by time.
fn inputs() -> (Vec<(String, Customer, i64)>, Vec<Input>) {
    let customers = CUSTOMERS
        .iter()
        .map(|(id, name, country)| {
            let c = Customer {
                name: (*name).into(),
                country: (*country).into(),
            };
            ((*id).to_string(), c, T0 - 24 * HOUR)
        })
        .collect();
    let mut events: Vec<Input> = ORDERS
        .iter()
        .map(|(id, customer, cents, minute)| Input::Order {
            order: Order {
                order_id: (*id).into(),
                customer: (*customer).into(),
                cents: *cents,
            },
            at: T0 + minute * MINUTE,
        })
        .chain(PAYMENTS.iter().map(|(id, cents, minute)| Input::Payment {
            payment: Payment {
                order_id: (*id).into(),
                cents: *cents,
            },
            at: T0 + minute * MINUTE,
        }))
        .collect();
    events.sort_by_key(Input::at);
    (customers, events)
}

/// An order or a payment, with its time.
enum Input {
    Order { order: Order, at: i64 },
    Payment { payment: Payment, at: i64 },
}

impl Input {
    fn at(&self) -> i64 {
        match self {
            Input::Order { at, .. } | Input::Payment { at, .. } => *at,
        }
    }
}

/// Runs the application on the test driver (called by `tests/examples.rs`).
#[allow(dead_code)]
pub(crate) fn run_on_test_driver() -> Result<Outcome, Box<dyn Error>> {
    let driver = TopologyTestDriver::new(topology()?)?;
    let (customer_records, events) = inputs();
    for (id, customer, at) in customer_records {
        driver
            .input_topic(&customers())
            .pipe_input_at(id, customer, at)?;
    }
    for event in events {
        match event {
            Input::Order { order, at } => {
                driver
                    .input_topic(&orders())
                    .pipe_input_at(order.order_id.clone(), order, at)?
            }
            Input::Payment { payment, at } => driver.input_topic(&payments()).pipe_input_at(
                payment.order_id.clone(),
                payment,
                at,
            )?,
        }
    }
    let mut outcome = Outcome::default();
    for (k, v) in driver.output_topic(&revenue()).read_key_values()? {
        outcome.add_revenue(k, v);
    }
    for (k, v) in driver.output_topic(&sessions()).read_key_values()? {
        outcome.add_visit(k, v);
    }
    for s in driver.output_topic(&settlements()).read_values()? {
        outcome.add_settlement(s);
    }
    outcome.france_by_hour = driver
        .window_store::<String, i64>("revenue")?
        .fetch(&"FR".to_string(), T0, T0 + 4 * HOUR)?
        .into_iter()
        .map(|(w, cents)| (w.start, cents))
        .collect();
    outcome.c1_name = driver
        .key_value_store::<String, Customer>("customers")?
        .get(&"c1".to_string())?
        .map(|c| c.name);
    Ok(outcome)
}

/// How many records each output gets from [`ORDERS`] and [`PAYMENTS`]: 4 final revenue
/// figures (FR and SE in the first two hours), 6 settlements (o7's window is still open), and
/// the visits (at least one record per visit; the record cache may collapse updates).
const FINAL_REVENUE: usize = 4;
const SETTLED: usize = 6;

/// Runs the application on the durable local backend until every expected output is there.
pub(crate) async fn run_on_local_backend() -> Result<Outcome, Box<dyn Error>> {
    let root = tempfile::tempdir()?;
    let config = StreamsConfig::new("orders", Backend::local(root.path().join("log")))
        .with_state_dir(root.path().join("state"))
        .with_commit_interval(Duration::from_millis(100));
    let topics = [
        "orders",
        "customers",
        "payments",
        "revenue-per-country",
        "customer-sessions",
        "settlements",
    ];
    let specs: Vec<TopicSpec> = topics.iter().map(|t| TopicSpec::new(*t, 1)).collect();
    Admin::new(&config)?.create_topics(&specs).await?;

    let producer = Producer::new(&config)?;
    let (customer_records, events) = inputs();
    for (id, customer, at) in customer_records {
        producer
            .send_record(&customers(), &Record::new(id, customer, at))
            .await?;
    }
    for event in events {
        match event {
            Input::Order { order, at } => {
                let key = order.order_id.clone();
                producer
                    .send_record(&orders(), &Record::new(key, order, at))
                    .await?
            }
            Input::Payment { payment, at } => {
                let key = payment.order_id.clone();
                producer
                    .send_record(&payments(), &Record::new(key, payment, at))
                    .await?
            }
        };
    }

    let mut streams = Streams::new(topology()?, config.clone())?;
    streams.start().await?;
    let revenue_out = Consumer::subscribe(&config, "orders-reader-revenue", &revenue())?;
    let visits_out = Consumer::subscribe(&config, "orders-reader-visits", &sessions())?;
    let settled_out = Consumer::subscribe(&config, "orders-reader-settled", &settlements())?;
    let mut outcome = Outcome::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut visits_seen = 0;
    while outcome.revenue.len() < FINAL_REVENUE
        || outcome.settlements.len() < SETTLED
        || visits_seen == 0
        || !outcome.visits.values().any(|v| v.end == T0 + 180 * MINUTE)
    {
        if let Some(failure) = streams.failure() {
            return Err(format!("the application failed: {failure}").into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the outputs did not all arrive within 60 s: {outcome:?} {:?}",
                streams.metrics()
            )
            .into());
        }
        let wait = Duration::from_millis(50);
        if let Ok(Some(r)) = tokio::time::timeout(wait, revenue_out.next()).await {
            let r = r?.record;
            outcome.add_revenue(r.key, r.value);
        }
        if let Ok(Some(r)) = tokio::time::timeout(wait, visits_out.next()).await {
            let r = r?.record;
            visits_seen += 1;
            outcome.add_visit(r.key, r.value);
        }
        if let Ok(Some(r)) = tokio::time::timeout(wait, settled_out.next()).await {
            outcome.add_settlement(r?.record.value);
        }
    }
    outcome.france_by_hour = streams
        .window_store::<String, i64>("revenue")?
        .fetch(&"FR".to_string(), T0, T0 + 4 * HOUR)?
        .into_iter()
        .map(|(w, cents)| (w.start, cents))
        .collect();
    outcome.c1_name = streams
        .key_value_store::<String, Customer>("customers")?
        .get(&"c1".to_string())?
        .map(|c| c.name);
    revenue_out.close().await?;
    visits_out.close().await?;
    settled_out.close().await?;
    streams.close().await?;
    Ok(outcome)
}

/// `HH:MM` after T0.
fn clock(ms: i64) -> String {
    let minutes = (ms - T0).div_euclid(MINUTE);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn print(outcome: &Outcome) {
    println!("final revenue per country and hour:");
    for ((country, start), cents) in &outcome.revenue {
        println!(
            "  {country} {}  {:>6.2}",
            clock(*start),
            *cents as f64 / 100.0
        );
    }
    println!("visits:");
    for ((customer, start), v) in &outcome.visits {
        println!(
            "  {customer} {}–{}  {} order(s)",
            clock(*start),
            clock(v.end),
            v.orders
        );
    }
    println!("settlements (paid within 10 minutes):");
    for (order, paid) in &outcome.settlements {
        println!("  {order} {}", if *paid { "paid" } else { "unpaid" });
    }
    println!("query: France by hour, open hours included (store `revenue`):");
    for (start, cents) in &outcome.france_by_hour {
        println!("  {}  {:>6.2}", clock(*start), *cents as f64 / 100.0);
    }
    println!(
        "query: customer c1 is {} (table `customers`)",
        outcome.c1_name.as_deref().unwrap_or("unknown")
    );
}

#[allow(dead_code)] // The integration test includes this file and calls the runs only.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run_on_local_backend().await {
        Ok(outcome) => {
            print(&outcome);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orders failed: {e}");
            ExitCode::FAILURE
        }
    }
}
