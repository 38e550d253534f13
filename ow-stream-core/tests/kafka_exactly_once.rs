//! Exactly-once on the Kafka backend, on librdkafka's mock cluster: the transactional API flow
//! (`init_transactions`, records and offsets inside transactions, `commit_transaction`), no
//! consumer offset commits, restarts that resume where the last transaction left off, and
//! failures injected into the transactional requests: an abortable one aborts the transaction
//! and the thread starts again from the last commit, a fatal one (the producer fenced) ends the
//! thread visibly.
//!
//! What the mock cannot show: it writes no transaction markers (so read_committed readers see
//! aborted records too) and it does not store the offsets a transaction commits (its
//! `TxnOffsetCommit` answers without committing), so these tests check the flow and the
//! stores, not what a real broker would hide or keep.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, read_all_with, wait_for};
use ow_stream_core::admin::Admin;
use ow_stream_core::client::Producer;
use ow_stream_core::config::{ProcessingGuarantee, StreamsConfig, ThreadFailurePolicy};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::{Streams, StreamsState};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const PARTITIONS: i32 = 4;
const KEYS: usize = 40;

fn events() -> Topic<String, i64> {
    Topic::new("events", StringSerde, JsonSerde::new())
}

fn topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&events())
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&Topic::new(
            "counts-out",
            StringSerde,
            JsonSerde::<i64>::new(),
        ));
    b.build().unwrap()
}

fn setup(cluster: &Cluster, app: &str) {
    cluster.create("events", PARTITIONS);
    cluster.create("counts-out", PARTITIONS);
    cluster.create(&format!("{app}-counts-changelog"), PARTITIONS);
    cluster.create(&format!("{app}-dlq"), 1);
}

fn eos(cluster: &Cluster, app: &str, dir: &std::path::Path) -> StreamsConfig {
    cluster
        .config(app, dir)
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce)
}

async fn produce(cluster: &Cluster, from: usize, to: usize) {
    let producer = Producer::new(&cluster.config("producer", std::path::Path::new("."))).unwrap();
    let topic = events();
    for chunk in (from..to).collect::<Vec<_>>().chunks(500) {
        let sends = chunk.iter().map(|i| {
            let key = format!("k{}", i % KEYS);
            let topic = &topic;
            let producer = &producer;
            async move { producer.send(topic, &key, &(*i as i64)).await }
        });
        for r in futures::future::join_all(sends).await {
            r.unwrap();
        }
    }
}

/// What `n` events make each key's count.
fn expected(n: usize) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for i in 0..n {
        *out.entry(format!("k{}", i % KEYS)).or_default() += 1;
    }
    out
}

/// The counts in the stores; empty while no task hosts them (between an abort and the
/// re-created tasks, say).
fn store_counts(streams: &Streams) -> BTreeMap<String, i64> {
    streams
        .key_value_store::<String, i64>("counts")
        .and_then(|store| store.all())
        .map(|all| all.into_iter().collect())
        .unwrap_or_default()
}

async fn start(config: StreamsConfig) -> Streams {
    let mut s = Streams::new(topology(), config).unwrap();
    s.start().await.unwrap();
    s
}

/// The latest count per key in `counts-out`, read with a read_committed consumer.
async fn output_counts(config: &StreamsConfig) -> BTreeMap<String, i64> {
    read_all_with(config, "counts-out")
        .await
        .into_iter()
        .filter_map(|r| {
            let k = String::from_utf8(r.key?.to_vec()).ok()?;
            let v = serde_json::from_slice(&r.value?).ok()?;
            Some((k, v))
        })
        .collect()
}

/// Waits until every key's latest output in `counts-out` is its count after `n` events (the
/// stores count before their transaction commits, the outputs appear when it does).
async fn wait_outputs(config: &StreamsConfig, n: usize) {
    let want = expected(n);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let outputs = output_counts(config).await;
        if outputs == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outputs never matched the counts: {outputs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_counted(streams: &Streams, n: usize) {
    let want = expected(n);
    wait_for(
        &format!("{n} events counted"),
        Duration::from_secs(60),
        || {
            assert!(
                streams.failure().is_none(),
                "the application failed: {:?}",
                streams.failure()
            );
            store_counts(streams) == want
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_once_application_commits_through_transactions_and_resumes_after_a_restart() {
    let cluster = Cluster::new();
    let app = "eos-flow";
    setup(&cluster, app);
    const FIRST: usize = 2_000;
    const SECOND: usize = 1_000;
    produce(&cluster, 0, FIRST).await;
    let dir = tempfile::tempdir().unwrap();
    let config = eos(&cluster, app, dir.path()).with_stream_threads(2);

    let streams = start(config.clone()).await;
    wait_counted(&streams, FIRST).await;
    wait_outputs(&config, FIRST).await;
    let m = streams.metrics();
    assert_eq!(m.transactions_aborted, 0);
    assert_eq!(m.records_consumed, FIRST as u64);
    streams.close().await.unwrap();

    // The instance keeps its id, so a restart's threads have the same transactional ids.
    let id_file = dir.path().join(app).join("kafka-instance-id");
    let instance = std::fs::read_to_string(&id_file).unwrap();
    assert!(!instance.trim().is_empty());

    // A restart reads only what came after the last transaction.
    produce(&cluster, FIRST, FIRST + SECOND).await;
    let streams = start(config.clone()).await;
    wait_counted(&streams, FIRST + SECOND).await;
    assert_eq!(
        streams.metrics().records_consumed,
        SECOND as u64,
        "the restart resumed from the committed offsets"
    );
    assert_eq!(std::fs::read_to_string(&id_file).unwrap(), instance);
    wait_outputs(&config, FIRST + SECOND).await;
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().await.unwrap();

    // The group's committed offsets. The mock stores what a consumer commits (OffsetCommit,
    // see the at-least-once control below) but answers TxnOffsetCommit without storing
    // anything: so the offsets went into the transactions only, and the consumer committed
    // none itself. (The restart above resumed from the stores' committed offsets, which the
    // transactions' changelog markers carry.) A broker would show the end offsets here.
    let admin = Admin::new(&config).unwrap();
    let lag = admin.group_lag(app, &["events"]).await.unwrap();
    assert_eq!(lag.len(), PARTITIONS as usize);
    assert!(lag.iter().all(|p| p.committed.is_none()), "{lag:?}");
}

/// The control of the test above: an at-least-once application's consumer commits the
/// group's offsets, and the mock stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_commits_through_the_consumer() {
    let cluster = Cluster::new();
    let app = "alo-control";
    setup(&cluster, app);
    produce(&cluster, 0, 200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = cluster.config(app, dir.path());
    let streams = start(config.clone()).await;
    wait_counted(&streams, 200).await;
    streams.close().await.unwrap();
    let lag = Admin::new(&config)
        .unwrap()
        .group_lag(app, &["events"])
        .await
        .unwrap();
    assert!(
        lag.iter().all(|p| p.committed == Some(p.end) && p.lag == 0),
        "{lag:?}"
    );
}

/// Runs an exactly-once application while `inject` makes the cluster refuse transactional
/// requests; returns it once every event is counted.
async fn counted_despite(
    app: &str,
    inject: impl FnOnce(&Cluster),
    n: usize,
) -> (Cluster, Streams, tempfile::TempDir) {
    let cluster = Cluster::new();
    setup(&cluster, app);
    produce(&cluster, 0, n).await;
    let dir = tempfile::tempdir().unwrap();
    // Armed before the start: the first transactions with records meet the failures.
    inject(&cluster);
    let config = eos(&cluster, app, dir.path());
    let streams = start(config.clone()).await;
    wait_counted(&streams, n).await;
    wait_outputs(&config, n).await;
    wait_for("a transaction aborted", Duration::from_secs(30), || {
        streams.metrics().transactions_aborted >= 1
    })
    .await;
    // The stores count before their transaction commits: after the abort they were dropped,
    // and the re-created tasks answer again, with every event counted once.
    wait_counted(&streams, n).await;
    (cluster, streams, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_aborts_the_transaction_and_the_tasks_start_again() {
    const N: usize = 1_000;
    // UNKNOWN_PRODUCER_ID on EndTxn: librdkafka makes the transaction abortable.
    let (cluster, streams, _dir) = counted_despite(
        "eos-endtxn",
        |c| {
            c.mock.request_errors(
                RDKafkaApiKey::EndTxn,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID],
            )
        },
        N,
    )
    .await;
    let m = streams.metrics();
    assert!(m.transactions_aborted >= 1, "{m:?}");
    assert_eq!(streams.state(), StreamsState::Running);
    assert_eq!(m.stream_thread_failures, 0);
    // The tasks were re-created: they restored from their changelogs. (On the mock the
    // aborted transaction's changelog records and marker are visible, so restore takes them
    // and nothing is read again; a broker's read_committed restore skips them, and the
    // inputs are read again from the last commit.)
    assert!(m.records_restored > 0, "{m:?}");
    streams.close().await.unwrap();
    let _ = cluster;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transactional_offsets_abort_the_transaction() {
    const N: usize = 1_000;
    let (_cluster, streams, _dir) = counted_despite(
        "eos-addoffsets",
        |c| {
            c.mock.request_errors(
                RDKafkaApiKey::AddOffsetsToTxn,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
            )
        },
        N,
    )
    .await;
    let m = streams.metrics();
    assert!(m.transactions_aborted >= 1, "{m:?}");
    assert_eq!(m.stream_thread_failures, 0);
    streams.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_producer_fails_the_thread_visibly() {
    let cluster = Cluster::new();
    let app = "eos-fenced";
    setup(&cluster, app);
    produce(&cluster, 0, 500).await;
    let dir = tempfile::tempdir().unwrap();
    cluster.mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    let streams = start(eos(&cluster, app, dir.path())).await;
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
    let failure = streams.failure().unwrap();
    assert!(failure.contains("commit transaction"), "{failure}");
    assert!(failure.contains("fenced"), "{failure}");
    assert_eq!(streams.metrics().stream_thread_failures, 1);
}

/// Under [`ThreadFailurePolicy::ReplaceThread`] the fenced thread is replaced: the new one
/// initialises the same transactional id again and finishes the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_thread_is_replaced_under_replace_thread() {
    const N: usize = 500;
    let cluster = Cluster::new();
    let app = "eos-replaced";
    setup(&cluster, app);
    produce(&cluster, 0, N).await;
    cluster.mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = eos(&cluster, app, dir.path())
        .with_thread_failure_policy(ThreadFailurePolicy::ReplaceThread);
    let streams = start(config.clone()).await;
    wait_for("the thread replaced", Duration::from_secs(60), || {
        streams.metrics().stream_threads_replaced >= 1
    })
    .await;
    wait_counted(&streams, N).await;
    wait_outputs(&config, N).await;
    let m = streams.metrics();
    assert_eq!(m.stream_thread_failures, 1, "{m:?}");
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_refused_for_an_old_epoch_fails_the_thread_visibly() {
    let cluster = Cluster::new();
    let app = "eos-epoch";
    setup(&cluster, app);
    produce(&cluster, 0, 500).await;
    let dir = tempfile::tempdir().unwrap();
    cluster.mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH; 20],
    );
    let streams = start(eos(&cluster, app, dir.path())).await;
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
    // librdkafka fences the producer (fatal): the record's delivery error is the failure.
    let failure = streams.failure().unwrap();
    assert!(failure.contains("InvalidProducerEpoch"), "{failure}");
    assert_eq!(streams.metrics().stream_thread_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_abort_a_stateless_task_reads_its_input_again() {
    const N: usize = 300;
    let cluster = Cluster::new();
    let app = "eos-rewind";
    cluster.create("events", PARTITIONS);
    cluster.create("copies", PARTITIONS);
    cluster.create(&format!("{app}-dlq"), 1);
    produce(&cluster, 0, N).await;
    let b = StreamsBuilder::new();
    b.stream(&events())
        .to(&Topic::new("copies", StringSerde, JsonSerde::<i64>::new()));
    cluster.mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = eos(&cluster, app, dir.path());
    let mut streams = Streams::new(b.build().unwrap(), config.clone()).unwrap();
    streams.start().await.unwrap();
    // The first transaction with records fails to commit: it is aborted, and the thread
    // seeks back to where its tasks start. Nothing is stored for a stateless task and the
    // mock keeps no transactional offsets, so that is the beginning: every input of the
    // aborted transaction is read twice, and the copies are written again. (How many inputs
    // that transaction held depends on when the first commit came: all N, or fewer on a slow
    // machine. Without the seek back, each input would be consumed exactly once.)
    wait_for("the input read again", Duration::from_secs(60), || {
        assert!(streams.failure().is_none(), "{:?}", streams.failure());
        let m = streams.metrics();
        m.transactions_aborted >= 1 && m.records_consumed > N as u64
    })
    .await;
    let consumed = streams.metrics().records_consumed;
    assert!(
        consumed <= 2 * N as u64,
        "{consumed} records consumed: more than one re-read of {N} inputs"
    );
    // On the mock the aborted copies are visible as well; a read_committed reader of a broker
    // would see each copy once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read_all_with(&config, "copies").await.len() < N {
        assert!(std::time::Instant::now() < deadline, "copies never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    streams.close().await.unwrap();
}
