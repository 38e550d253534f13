//! Throughput of the two backends, in records/s: librdkafka's in-process mock cluster and the
//! durable local log under each fsync policy ([`LocalFsync::Always`], `Interval(10ms)`,
//! `Never`).
//!
//! | benchmark | what one element is |
//! |---|---|
//! | `e2e_map_count/<env>` | a 100-byte record produced with the typed `Producer`, processed by a running `Streams` app (`map_values → group_by_key → count → to`), and its count read back by a typed `Consumer` |
//! | `produce/producer/<env>/<size>` | a record written with the typed `Producer` (at most 256 sends in flight) and acknowledged |
//! | `produce/stream-thread/<env>/<size>` | a record written by a stream thread's producer (one trigger record fans out into 1000 outputs: the batched path the runtime writes outputs, changelogs and repartition topics with), acknowledged |
//! | `consume/consumer/<env>/<size>` | a record read and decoded by a typed `Consumer` of a new group, reading a filled topic from the start |
//! | `consume/stream-thread/<env>/<size>` | a record read and decoded by the stream thread of a new application (a source and a filter that drops everything) |
//!
//! `<env>` is `mock`, `local-always`, `local-interval10ms` or `local-never` (at-least-once),
//! or `local-always-eos` and `local-never-eos` (exactly-once: the stream threads write through
//! transactions, consumers read committed); `<size>` is the
//! value size, `100B` or `10KB` (keys are short strings cycling over 1000 values). Topics
//! have 4 partitions (8 for the 10 KB consume topic on the mock). The commit interval is
//! 100 ms. Criterion's elements are records, measured in batches of 1000 per iteration with
//! linear sampling: the reported time per batch is the slope over samples of growing size, so
//! a fixed cost per sample (the last acknowledgement, the producer's linger) drops out.
//!
//! What is not measured: creating clients, joining groups, starting applications, filling
//! the topics read by the consume benchmarks, and the first record a new consumer or
//! application receives (which includes its group join). Each measurement batch times only the
//! records after that; the consume benchmarks report the rate over whole passes, scaled to the
//! batch size.
//!
//! The mock cluster keeps at most 5 MiB per partition and silently drops older records, so
//! the end-to-end benchmark keeps at most 20 000 records between the producer and the output
//! consumer, and the consume benchmarks fill their topics to below the cap (4 × 25 000
//! 100-byte records, 8 × 400 10 KB records; 200 000 and 20 000 on the local log) and read them
//! in passes. The mock's delay before a new group's first rebalance (3 s, like a broker's
//! `group.initial.rebalance.delay.ms`) is set to 0 so that the passes do not wait for it, and
//! its clients use `fetch.wait.max.ms=10`: the mock answers a fetch that finds no data only
//! after that wait even when data arrives meanwhile, where a broker answers at once.
//!
//! Run: `cargo bench -p ow-stream-core --bench backends -- --warm-up-time 1 --measurement-time 5`
//! (a filter after `--`, such as `produce/producer`, selects benchmarks).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use futures::{StreamExt, TryStreamExt};
use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{
    Backend, LocalFsync, LocalOptions, ProcessingGuarantee, StreamsConfig,
};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{BytesSerde, JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};
use tokio::runtime::Runtime;

/// Partitions of the benchmark topics.
const PARTITIONS: i32 = 4;
/// Distinct keys.
const KEYS: usize = 1000;
/// Sends of the typed producer in flight at once.
const IN_FLIGHT: usize = 256;
/// Records between the producer and the output consumer in the end-to-end benchmark.
const E2E_WINDOW: u64 = 20_000;
/// Records per measured iteration: criterion's elements are records, in batches of this many
/// (a single record would be dominated by per-batch latencies such as the producer's linger).
const BATCH: u64 = 1000;
/// The longest a benchmark waits for records before it gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Value sizes: name, bytes.
const SIZES: [(&str, usize); 2] = [("100B", 100), ("10KB", 10_000)];

/// Where the topics live.
enum Kind {
    /// librdkafka's mock cluster, owned by this producer handle.
    Mock(BaseProducer),
    /// The local log in this directory.
    Local {
        dir: tempfile::TempDir,
        fsync: LocalFsync,
        guarantee: ProcessingGuarantee,
    },
}

/// A backend to benchmark, with the state directories of its applications.
struct Env {
    name: &'static str,
    kind: Kind,
    state: tempfile::TempDir,
    apps: AtomicU64,
}

impl Env {
    fn mock() -> Env {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .unwrap_or_else(|e| panic!("cannot create the mock cluster: {e}"));
        // SAFETY: `owner` is a live client created with `test.mock.num.brokers`, so it owns a
        // mock cluster, which lives as long as `owner`; the call only sets an integer on it.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            assert!(!cluster.is_null(), "the client owns a mock cluster");
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
        Env::new("mock", Kind::Mock(owner))
    }

    fn local(name: &'static str, fsync: LocalFsync) -> Env {
        Env::local_with(name, fsync, ProcessingGuarantee::AtLeastOnce)
    }

    fn local_with(name: &'static str, fsync: LocalFsync, guarantee: ProcessingGuarantee) -> Env {
        let dir = tempfile::tempdir().expect("temporary directory");
        Env::new(
            name,
            Kind::Local {
                dir,
                fsync,
                guarantee,
            },
        )
    }

    fn new(name: &'static str, kind: Kind) -> Env {
        Env {
            name,
            kind,
            state: tempfile::tempdir().expect("temporary directory"),
            apps: AtomicU64::new(0),
        }
    }

    fn all() -> Vec<fn() -> Env> {
        vec![
            Env::mock,
            || Env::local("local-always", LocalFsync::Always),
            || {
                Env::local(
                    "local-interval10ms",
                    LocalFsync::Interval(Duration::from_millis(10)),
                )
            },
            || Env::local("local-never", LocalFsync::Never),
            // Exactly-once: stream threads write through transactions, the typed consumer
            // reads committed.
            || {
                Env::local_with(
                    "local-always-eos",
                    LocalFsync::Always,
                    ProcessingGuarantee::ExactlyOnce,
                )
            },
            || {
                Env::local_with(
                    "local-never-eos",
                    LocalFsync::Never,
                    ProcessingGuarantee::ExactlyOnce,
                )
            },
        ]
    }

    fn is_mock(&self) -> bool {
        matches!(self.kind, Kind::Mock(_))
    }

    /// A configuration for application (or client) `app`.
    fn config(&self, app: &str) -> StreamsConfig {
        let config = match &self.kind {
            Kind::Mock(owner) => {
                let bootstrap = owner
                    .client()
                    .mock_cluster()
                    .expect("the client owns a mock cluster")
                    .bootstrap_servers();
                StreamsConfig::new(app, Backend::kafka(bootstrap))
                    .with_kafka_setting("session.timeout.ms", "6000")
                    .with_kafka_setting("heartbeat.interval.ms", "500")
                    // The mock answers a fetch that finds no data only after this wait, even
                    // when data arrives meanwhile (a broker answers at once): keep it short.
                    .with_kafka_setting("fetch.wait.max.ms", "10")
            }
            Kind::Local {
                dir,
                fsync,
                guarantee,
            } => StreamsConfig::new(app, Backend::local(dir.path().join("log")))
                .with_local_options(LocalOptions::default().with_fsync(*fsync))
                .with_processing_guarantee(*guarantee),
        };
        config
            .with_state_dir(self.state.path().join(app))
            .with_commit_interval(Duration::from_millis(100))
    }

    /// A new application id starting with `prefix`.
    fn app(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.apps.fetch_add(1, Ordering::Relaxed))
    }

    /// Creates a topic the benchmark reads or writes.
    async fn create(&self, topic: &str, partitions: i32) {
        match &self.kind {
            Kind::Mock(_) => self.create_internal(topic, partitions),
            Kind::Local { .. } => Admin::new(&self.config("admin"))
                .expect("admin client")
                .create_topics(&[TopicSpec::new(topic, partitions)])
                .await
                .unwrap_or_else(|e| panic!("cannot create {topic}: {e}")),
        }
    }

    /// Creates an internal topic of an application where the backend cannot create it itself
    /// (the mock cluster); the local backend creates its own.
    fn create_internal(&self, topic: &str, partitions: i32) {
        if let Kind::Mock(owner) = &self.kind {
            owner
                .client()
                .mock_cluster()
                .expect("the client owns a mock cluster")
                .create_topic(topic, partitions, 1)
                .unwrap_or_else(|e| panic!("cannot create {topic}: {e}"));
        }
    }

    /// Starts `topology` as a new application whose id starts with `prefix`.
    async fn start(&self, prefix: &str, topology: Topology, internal: &[(&str, i32)]) -> Streams {
        let app = self.app(prefix);
        for (suffix, partitions) in internal {
            self.create_internal(&format!("{app}-{suffix}"), *partitions);
        }
        self.create_internal(&format!("{app}-dlq"), 1);
        let mut streams = Streams::new(topology, self.config(&app))
            .unwrap_or_else(|e| panic!("cannot create {app}: {e}"));
        streams
            .start()
            .await
            .unwrap_or_else(|e| panic!("cannot start {app}: {e}"));
        streams
    }
}

fn bytes_topic(name: &str) -> Topic<String, Vec<u8>> {
    Topic::new(name.to_string(), StringSerde, BytesSerde)
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|k| format!("key-{k:04}")).collect()
}

/// Sends records `from..from + n` (keys cycling over `keys`) with at most [`IN_FLIGHT`] sends
/// waiting for their acknowledgement at once.
async fn send_all(
    producer: &Producer,
    topic: &Topic<String, Vec<u8>>,
    keys: &[String],
    from: u64,
    n: u64,
    value: &Vec<u8>,
) {
    futures::stream::iter(from..from + n)
        .map(|i| producer.send(topic, &keys[i as usize % KEYS], value))
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
        .unwrap_or_else(|e| panic!("cannot produce to {}: {e}", topic.name()));
}

/// The benchmark filter given on the command line, when it is a plain string. Criterion reads
/// it as a regular expression and does the filtering; this copy only lets the setup of
/// benchmarks that cannot match (filling topics, starting applications) be skipped. A filter
/// with regex syntax skips nothing.
fn plain_filter() -> Option<String> {
    // Criterion's options that take a value.
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "--output-format",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        if args[i].starts_with('-') {
            if WITH_VALUE.contains(&args[i].as_str()) {
                i += 1;
            }
        } else {
            filter = Some(args[i].clone());
        }
        i += 1;
    }
    filter.filter(|f| !f.contains(|c| "\\.+*?()|[]{}^$".contains(c)))
}

/// Whether any of the benchmarks `ids` can run under the command line's filter.
fn wanted(ids: &[String]) -> bool {
    static FILTER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    match FILTER.get_or_init(plain_filter) {
        Some(filter) => ids.iter().any(|id| id.contains(filter.as_str())),
        None => true,
    }
}

/// A benchmark group whose elements are records, [`BATCH`] per iteration, sampled linearly
/// (the time per batch is the slope over samples of growing size, so a fixed cost per sample,
/// such as waiting for the last acknowledgement, does not count).
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Linear);
    group
}

/// Waits until `done()` is true, checking that `streams` (if any) has not failed.
async fn wait_until(what: &str, streams: Option<&Streams>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if let Some(failure) = streams.and_then(Streams::failure) {
            panic!("the application failed while waiting for {what}: {failure}");
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// End to end: produce, process (map + count), consume the counts.
fn e2e(c: &mut Criterion, rt: &Runtime, env: &Env) {
    if !wanted(&[format!("e2e_map_count/{}", env.name)]) {
        return;
    }
    let input = bytes_topic("e2e-in");
    let output: Topic<String, i64> = Topic::new("e2e-out", StringSerde, JsonSerde::new());
    let builder = StreamsBuilder::new();
    builder
        .stream(&input)
        .map_values(|v: Vec<u8>| v.len() as u64)
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&output);
    let topology = builder.build().expect("the e2e topology builds");
    let keys = keys();
    let value = vec![b'v'; 100];

    let (streams, producer, counted, reader) = rt.block_on(async {
        env.create(input.name(), PARTITIONS).await;
        env.create(output.name(), PARTITIONS).await;
        let streams = env
            .start("e2e", topology, &[("counts-changelog", PARTITIONS)])
            .await;
        let producer = Producer::new(&env.config("e2e-producer")).expect("producer");
        let consumer = Consumer::subscribe(&env.config("e2e-reader"), "e2e-reader", &output)
            .expect("consumer");
        let counted = Arc::new(AtomicU64::new(0));
        let count = counted.clone();
        let reader = tokio::spawn(async move {
            while let Some(record) = consumer.next_raw().await {
                if let Err(e) = record {
                    panic!("cannot read the counts: {e}");
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        // One record through the whole pipeline before measuring: groups joined, stores open.
        send_all(&producer, &input, &keys, 0, 1, &value).await;
        wait_until("the first count", Some(&streams), || {
            counted.load(Ordering::Relaxed) >= 1
        })
        .await;
        (streams, producer, counted, reader)
    });

    let mut group = group(c, "e2e_map_count");
    let mut next = 1u64;
    group.bench_function(env.name, |b| {
        b.iter_custom(|iters| {
            let records = iters * BATCH;
            rt.block_on(async {
                let base = counted.load(Ordering::Relaxed);
                let start = Instant::now();
                let mut sent = 0u64;
                while sent < records {
                    let in_pipeline = || sent - (counted.load(Ordering::Relaxed) - base);
                    wait_until("the pipeline to drain", Some(&streams), || {
                        in_pipeline() <= E2E_WINDOW
                    })
                    .await;
                    let n = (records - sent).min(1000);
                    send_all(&producer, &input, &keys, next, n, &value).await;
                    next += n;
                    sent += n;
                }
                wait_until("every count", Some(&streams), || {
                    counted.load(Ordering::Relaxed) - base >= records
                })
                .await;
                start.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(async {
        reader.abort();
        streams
            .close()
            .await
            .unwrap_or_else(|e| panic!("e2e application failed: {e}"));
    });
}

/// A topology that writes `n` records of `value` for each trigger record whose value is `n`.
fn fanout_topology(
    trigger: &Topic<String, u64>,
    output: &Topic<String, Vec<u8>>,
    value: usize,
) -> Topology {
    let keys = Arc::new(keys());
    let value = Arc::new(vec![b'v'; value]);
    let builder = StreamsBuilder::new();
    builder
        .stream(trigger)
        .flat_map(move |_, n: u64| {
            let (keys, value) = (keys.clone(), value.clone());
            (0..n).map(move |i| (keys[i as usize % KEYS].clone(), value.to_vec()))
        })
        .to(output);
    builder.build().expect("the fan-out topology builds")
}

/// Writing: the typed producer, and a stream thread's batched producer.
fn produce(c: &mut Criterion, rt: &Runtime, env: &Env) {
    let mut group = group(c, "produce");
    let keys = keys();
    for (size_name, size) in SIZES {
        if !wanted(&[format!("produce/producer/{}/{size_name}", env.name)]) {
            continue;
        }
        let topic = bytes_topic(&format!("produce-{size_name}"));
        let producer = rt.block_on(async {
            env.create(topic.name(), PARTITIONS).await;
            Producer::new(&env.config("producer")).expect("producer")
        });
        let value = vec![b'v'; size];
        let mut next = 0u64;
        group.bench_function(format!("producer/{}/{size_name}", env.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    send_all(&producer, &topic, &keys, next, iters * BATCH, &value).await;
                    next += iters * BATCH;
                    start.elapsed()
                })
            })
        });
    }
    for (size_name, size) in SIZES {
        if !wanted(&[format!("produce/stream-thread/{}/{size_name}", env.name)]) {
            continue;
        }
        let trigger: Topic<String, u64> = Topic::new(
            format!("fanout-trigger-{size_name}"),
            StringSerde,
            JsonSerde::new(),
        );
        let output = bytes_topic(&format!("fanout-out-{size_name}"));
        let (streams, producer) = rt.block_on(async {
            env.create(trigger.name(), 1).await;
            env.create(output.name(), PARTITIONS).await;
            let streams = env
                .start("fanout", fanout_topology(&trigger, &output, size), &[])
                .await;
            let producer = Producer::new(&env.config("trigger-producer")).expect("producer");
            // The stream thread is ready once it has written one record.
            producer
                .send(&trigger, &"warm-up".to_string(), &1)
                .await
                .unwrap_or_else(|e| panic!("cannot produce a trigger: {e}"));
            wait_until("the first fanned-out record", Some(&streams), || {
                streams.metrics().records_produced >= 1
            })
            .await;
            (streams, producer)
        });
        group.bench_function(format!("stream-thread/{}/{size_name}", env.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let base = streams.metrics().records_produced;
                    let start = Instant::now();
                    // One trigger per batch.
                    for _ in 0..iters {
                        producer
                            .send(&trigger, &"trigger".to_string(), &BATCH)
                            .await
                            .unwrap_or_else(|e| panic!("cannot produce a trigger: {e}"));
                    }
                    wait_until("the fanned-out records", Some(&streams), || {
                        streams.metrics().records_produced - base >= iters * BATCH
                    })
                    .await;
                    start.elapsed()
                })
            })
        });
        rt.block_on(async {
            streams
                .close()
                .await
                .unwrap_or_else(|e| panic!("fan-out application failed: {e}"));
        });
    }
    group.finish();
}

/// Time to read `records` records, in passes over a topic holding `filled` records: each pass
/// is a new reader whose first record is not timed; the rate over the passes is scaled to
/// `records`.
async fn passes<F, Fut>(records: u64, filled: u64, mut pass: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = (u64, Duration)>,
{
    let (mut read, mut timed) = (0u64, Duration::ZERO);
    while read < records {
        let want = (records - read).min(filled - 1);
        let (n, elapsed) = pass(want).await;
        read += n;
        timed += elapsed;
    }
    timed.mul_f64(records as f64 / read as f64)
}

/// Reading: the typed consumer, and a stream thread.
fn consume(c: &mut Criterion, rt: &Runtime, env: &Env) {
    let mut group = group(c, "consume");
    let keys = keys();
    for (size_name, size) in SIZES {
        let ids = ["consumer", "stream-thread"]
            .map(|path| format!("consume/{path}/{}/{size_name}", env.name));
        if !wanted(&ids) {
            continue;
        }
        let (partitions, filled) = match (env.is_mock(), size) {
            (true, 100) => (PARTITIONS, 100_000),
            (true, _) => (8, 3_200),
            (false, 100) => (PARTITIONS, 200_000),
            (false, _) => (PARTITIONS, 20_000),
        };
        let topic = bytes_topic(&format!("consume-{size_name}"));
        rt.block_on(async {
            env.create(topic.name(), partitions).await;
            let producer = Producer::new(&env.config("filler")).expect("producer");
            send_all(&producer, &topic, &keys, 0, filled, &vec![b'v'; size]).await;
            producer.flush().await.expect("flush");
        });

        group.bench_function(format!("consumer/{}/{size_name}", env.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(passes(iters * BATCH, filled, |want| {
                    let topic = &topic;
                    async move {
                        let group = env.app("reader");
                        let consumer = Consumer::subscribe(&env.config(&group), &group, topic)
                            .expect("consumer");
                        let next = async || match consumer.next().await {
                            Some(Ok(record)) => record,
                            Some(Err(e)) => panic!("cannot read: {e}"),
                            None => panic!("the consumer stopped"),
                        };
                        // One deadline for the whole pass, not a timer per record.
                        let timed = tokio::time::timeout(PATIENCE, async {
                            next().await;
                            let start = Instant::now();
                            for _ in 0..want {
                                std::hint::black_box(next().await);
                            }
                            start.elapsed()
                        });
                        let elapsed = timed.await.expect("the records before the timeout");
                        (want, elapsed)
                    }
                }))
            })
        });

        group.bench_function(format!("stream-thread/{}/{size_name}", env.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(passes(iters * BATCH, filled, |want| {
                    let topic = &topic;
                    async move {
                        let builder = StreamsBuilder::new();
                        builder.stream(topic).filter(|_, _| false);
                        let topology = builder.build().expect("the reading topology builds");
                        let streams = env.start("reader", topology, &[]).await;
                        let consumed = || streams.metrics().records_consumed;
                        wait_until("the first record", Some(&streams), || consumed() >= 1).await;
                        let (first, start) = (consumed(), Instant::now());
                        let target = (first + want).min(filled);
                        wait_until("the records", Some(&streams), || consumed() >= target).await;
                        let elapsed = start.elapsed();
                        let read = consumed() - first;
                        streams
                            .close()
                            .await
                            .unwrap_or_else(|e| panic!("reading application failed: {e}"));
                        (read, elapsed)
                    }
                }))
            })
        });
    }
    group.finish();
}

fn backends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for make in Env::all() {
        let env = make();
        e2e(c, &rt, &env);
        produce(c, &rt, &env);
        consume(c, &rt, &env);
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
