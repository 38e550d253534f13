//! Windowed stream–stream joins (`join_stream`, `left_join_stream`, `outer_join_stream`): the
//! pairs within the window, `None`-padded results only once a window closes, out-of-order
//! records within the grace, late records dropped and counted, asymmetric windows; the same
//! topology on both backends over 4 partitions, with a re-keyed side repartitioned; and the
//! results after a crash that loses the local state equal those of an uninterrupted run.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::admin::Admin;
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::{JoinWindows, StreamJoined};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestOutputTopic, TopologyTestDriver};
use ow_stream_core::{Error, StreamsBuilder, Topic, Topology};

const SECOND: i64 = 1_000;

/// (key, value, timestamp) records.
type Rows = Vec<(String, String, i64)>;

fn views() -> Topic<String, String> {
    Topic::new("views", StringSerde, JsonSerde::new())
}

fn clicks() -> Topic<String, String> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

fn joined() -> Topic<String, String> {
    Topic::new("joined", StringSerde, JsonSerde::new())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Inner,
    Left,
    Outer,
}

fn show(l: Option<String>, r: Option<String>) -> String {
    format!(
        "{}+{}",
        l.as_deref().unwrap_or("_"),
        r.as_deref().unwrap_or("_")
    )
}

/// `views` joined with `clicks` into `joined`, values `view+click` (`_` for `None`).
fn topology(kind: Kind, windows: JoinWindows) -> Topology {
    let b = StreamsBuilder::new();
    let v = b.stream(&views());
    let c = b.stream(&clicks());
    let options = || StreamJoined::as_("vc");
    let out = match kind {
        Kind::Inner => v.join_stream(&c, |_, l, r| show(Some(l), Some(r)), windows, options()),
        Kind::Left => v.left_join_stream(&c, |_, l, r| show(Some(l), r), windows, options()),
        Kind::Outer => v.outer_join_stream(&c, |_, l, r| show(l, r), windows, options()),
    };
    out.to(&joined());
    b.build().unwrap()
}

fn ten_seconds(grace: i64) -> JoinWindows {
    JoinWindows::of_time_difference_and_grace(
        Duration::from_secs(10),
        Duration::from_millis(grace as u64),
    )
}

/// (key, value, timestamp) of the records `output` has not read yet.
fn read(output: &mut TestOutputTopic<String, String>) -> Vec<(String, String, i64)> {
    output
        .read_records()
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

fn out(key: &str, value: &str, ts: i64) -> (String, String, i64) {
    (key.to_string(), value.to_string(), ts)
}

enum In {
    View(&'static str, &'static str, i64),
    Click(&'static str, &'static str, i64),
}

fn pipe(driver: &TopologyTestDriver, records: &[In]) {
    let (v, c) = (driver.input_topic(&views()), driver.input_topic(&clicks()));
    for r in records {
        match *r {
            In::View(k, x, t) => v.pipe_input_at(k.into(), x.into(), t).unwrap(),
            In::Click(k, x, t) => c.pipe_input_at(k.into(), x.into(), t).unwrap(),
        }
    }
}

#[test]
fn inner_join_emits_each_pair_within_the_window_once() {
    let driver = TopologyTestDriver::new(topology(Kind::Inner, ten_seconds(0))).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(
        &driver,
        &[
            In::View("a", "v1", 1_000),
            In::Click("a", "c1", 5_000),
            // 10 s after v1: the bound is inclusive.
            In::Click("a", "c2", 11_000),
            In::View("a", "v2", 11_000),
            In::View("b", "v3", 11_500),
            // 10.001 s after v2: no pair.
            In::Click("a", "c3", 21_001),
            // Two views of one key at one time are both kept.
            In::View("a", "v4", 21_001),
            In::View("a", "v5", 21_001),
            In::Click("a", "c4", 21_001),
        ],
    );
    assert_eq!(
        read(&mut output),
        [
            out("a", "v1+c1", 5_000),
            out("a", "v1+c2", 11_000),
            out("a", "v2+c1", 11_000),
            out("a", "v2+c2", 11_000),
            out("a", "v4+c3", 21_001),
            out("a", "v5+c3", 21_001),
            out("a", "v4+c4", 21_001),
            out("a", "v5+c4", 21_001),
        ]
    );
    assert_eq!(driver.metrics().late_records_dropped, 0);
}

/// Views and clicks where v1 and v2 find a click, v3 and the click c9 do not.
fn left_and_outer_records() -> Vec<In> {
    vec![
        In::View("a", "v1", 1_000),
        In::Click("a", "c1", 5_000),
        In::View("b", "v2", 6_000),
        In::Click("x", "c9", 15_000),
        // v2's window closes after 6 s + 10 s: c2 is just in time.
        In::Click("b", "c2", 16_000),
        In::View("c", "v3", 16_000),
    ]
}

#[test]
fn left_join_pads_an_unjoined_view_only_once_its_window_closed() {
    let driver = TopologyTestDriver::new(topology(Kind::Left, ten_seconds(0))).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(&driver, &left_and_outer_records());
    // v2 waited for its click rather than being padded at once; v3's window is open.
    assert_eq!(
        read(&mut output),
        [out("a", "v1+c1", 5_000), out("b", "v2+c2", 16_000)]
    );
    // Stream time reaches v3's window end: still open.
    pipe(&driver, &[In::View("d", "v4", 26_000)]);
    assert_eq!(read(&mut output), []);
    // Past it: v3 is emitted padded, stamped with its own time; the unjoined click is not.
    pipe(&driver, &[In::View("d", "v5", 26_001)]);
    assert_eq!(read(&mut output), [out("c", "v3+_", 16_000)]);
    // v3's window closed: a click for it arriving now joins nothing.
    pipe(&driver, &[In::Click("c", "c3", 20_000)]);
    assert_eq!(read(&mut output), []);
}

#[test]
fn outer_join_pads_both_sides_once_their_windows_closed() {
    let driver = TopologyTestDriver::new(topology(Kind::Outer, ten_seconds(0))).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(&driver, &left_and_outer_records());
    assert_eq!(
        read(&mut output),
        [out("a", "v1+c1", 5_000), out("b", "v2+c2", 16_000)]
    );
    // c9's window closes at 25 s, v3's at 26 s: both are padded, in time order, with v4
    // still waiting.
    pipe(&driver, &[In::View("d", "v4", 26_001)]);
    assert_eq!(
        read(&mut output),
        [out("x", "_+c9", 15_000), out("c", "v3+_", 16_000)]
    );
    pipe(&driver, &[In::Click("d", "c4", 30_000)]);
    assert_eq!(read(&mut output), [out("d", "v4+c4", 30_000)]);
}

#[test]
fn out_of_order_records_within_the_grace_join_and_wait() {
    let driver = TopologyTestDriver::new(topology(Kind::Left, ten_seconds(5 * SECOND))).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(
        &driver,
        &[
            In::View("a", "v1", 1_000),
            In::Click("z", "c0", 14_000),
            // 4.5 s out of order: v1's window closes at 1 s + 10 s + 5 s.
            In::Click("a", "c1", 9_500),
            // A view 2 s behind stream time waits like any other.
            In::View("b", "v2", 12_000),
            In::Click("z", "c5", 27_000),
        ],
    );
    assert_eq!(read(&mut output), [out("a", "v1+c1", 9_500)]);
    // v2 closes after 12 s + 10 s + 5 s.
    pipe(&driver, &[In::Click("z", "c6", 27_001)]);
    assert_eq!(read(&mut output), [out("b", "v2+_", 12_000)]);
    assert_eq!(driver.metrics().late_records_dropped, 0);
}

#[test]
fn late_records_beyond_the_grace_are_dropped_and_counted() {
    let driver = TopologyTestDriver::new(topology(Kind::Outer, ten_seconds(5 * SECOND))).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(&driver, &[In::View("z", "v0", 50_000)]);
    // Window 20 s + grace 5 s: records before 25 s can join nothing any more.
    pipe(
        &driver,
        &[
            In::View("a", "late-view", 24_999),
            In::Click("a", "late-click", 24_000),
        ],
    );
    assert_eq!(driver.metrics().late_records_dropped, 2);
    // Closed but not yet past the retention: padded at once (nothing can join it).
    pipe(&driver, &[In::View("b", "v1", 30_000)]);
    assert_eq!(read(&mut output), [out("b", "v1+_", 30_000)]);
    // The dropped view is in no store: this click, whose window would take it in, finds
    // nothing (and, closed itself, is padded at once).
    pipe(&driver, &[In::Click("a", "c2", 34_999)]);
    assert_eq!(read(&mut output), [out("a", "_+c2", 34_999)]);
    // An open view and a click within its window still join.
    pipe(
        &driver,
        &[In::View("a", "v2", 45_000), In::Click("a", "c1", 35_000)],
    );
    assert_eq!(read(&mut output), [out("a", "v2+c1", 45_000)]);
    assert_eq!(driver.metrics().late_records_dropped, 2);
}

#[test]
fn asymmetric_windows_bound_each_side() {
    // A click joins a view when it is at most 5 s after it and never before it.
    let windows = JoinWindows::of_time_difference_without_grace(Duration::from_secs(5))
        .before(Duration::ZERO)
        .after(Duration::from_secs(5));
    let driver = TopologyTestDriver::new(topology(Kind::Inner, windows)).unwrap();
    let mut output = driver.output_topic(&joined());
    pipe(
        &driver,
        &[
            In::Click("a", "early", 9_000),
            In::View("a", "v1", 10_000),
            In::Click("a", "c1", 15_000),
            In::Click("a", "c2", 15_001),
            In::View("b", "v2", 15_500),
            // From the click's side the window is mirrored: a view up to 5 s before.
            In::Click("b", "c3", 20_500),
        ],
    );
    assert_eq!(
        read(&mut output),
        [out("a", "v1+c1", 15_000), out("b", "v2+c3", 20_500)]
    );
}

#[test]
fn describe_shows_the_join_stores_nodes_and_changelogs() {
    let text = topology(Kind::Outer, ten_seconds(SECOND))
        .describe()
        .to_string();
    for part in [
        "vc-this-join",
        "vc-other-join",
        "vc-merge",
        "vc-this-join-store",
        "vc-other-join-store",
        "vc-outer-shared-join-store",
        "${application_id}-vc-this-join-store-changelog",
        "${application_id}-vc-other-join-store-changelog",
        "${application_id}-vc-outer-shared-join-store-changelog",
        "join-window(20000ms, retention 21000ms)",
    ] {
        assert!(text.contains(part), "{part} missing from\n{text}");
    }
    // One sub-topology: both sides meet in one task.
    let inner = topology(Kind::Inner, ten_seconds(0));
    assert_eq!(inner.describe().subtopologies.len(), 1);
    assert!(!inner.describe().to_string().contains("outer-shared"));
}

#[test]
fn logging_disabled_leaves_the_stores_without_changelogs() {
    let b = StreamsBuilder::new();
    b.stream(&views())
        .join_stream(
            &b.stream(&clicks()),
            |_, l, r| show(Some(l), Some(r)),
            ten_seconds(0),
            StreamJoined::as_("vc")
                .with_store_name("buffers")
                .with_logging_disabled(),
        )
        .to(&joined());
    let text = b.build().unwrap().describe().to_string();
    assert!(text.contains("buffers-this-join-store"), "{text}");
    assert!(!text.contains("-changelog"), "{text}");
}

/// Views keyed by view id, with the user in the value: re-keyed by user before the join.
fn rekeyed_topology() -> Topology {
    let b = StreamsBuilder::new();
    let by_user = b
        .stream(&views())
        .select_key(|_, v: &String| v.split(':').next().unwrap_or_default().to_string());
    by_user
        .outer_join_stream(
            &b.stream(&clicks()),
            |_, l, r| show(l, r),
            // The grace outlasts the whole data set: what joins does not depend on how the
            // tasks interleave the two topics; the closing records close every window.
            JoinWindows::of_time_difference_and_grace(
                Duration::from_secs(10),
                Duration::from_secs(3_600),
            ),
            StreamJoined::as_("vc"),
        )
        .to(&joined());
    b.build().unwrap()
}

const BASE: i64 = 1_700_000_000_000;
const USERS: i64 = 12;
const CLOSERS: usize = 24;

/// Views (`view-<n>` -> `u<user>:<n>`) and clicks (`u<user>` -> `c<n>`) of `half` 0 or 1:
/// some clicks 4 s after a view (a pair), some 18 s after (7 s before the next view: a pair
/// too, across the halves for the last view of the first), some 62 s after (12 s from the
/// nearest view: padded), some views with none.
fn data(half: i64) -> (Rows, Rows) {
    let (mut v, mut c) = (Vec::new(), Vec::new());
    for user in 0..USERS {
        for i in (half * 6)..(half * 6 + 6) {
            let t = BASE + i * 25 * SECOND + user * 100;
            let n = user * 100 + i;
            v.push((format!("view-{n}"), format!("u{user}:{n}"), t));
            let offset = match (user + i) % 4 {
                0 => Some(4 * SECOND),
                1 => Some(18 * SECOND),
                2 => Some(62 * SECOND),
                _ => None,
            };
            if let Some(o) = offset {
                c.push((format!("u{user}"), format!("c{n}"), t + o));
            }
        }
    }
    v.sort_by_key(|r| r.2);
    c.sort_by_key(|r| r.2);
    (v, c)
}

/// Records far ahead in time on both topics, for many keys (so every partition gets some):
/// they move every task's stream time past every window of the data.
fn closers() -> (Rows, Rows) {
    let t = BASE + 10 * 3_600 * SECOND;
    let v = (0..CLOSERS)
        .map(|i| (format!("close-view-{i}"), format!("end{i}:x"), t))
        .collect();
    let c = (0..CLOSERS)
        .map(|i| (format!("end{i}"), "y".to_string(), t))
        .collect();
    (v, c)
}

/// What the test driver makes of all the records: the oracle for the backends.
fn expected() -> Vec<(String, String, i64)> {
    let driver = TopologyTestDriver::new(rekeyed_topology()).unwrap();
    let (v, c) = (driver.input_topic(&views()), driver.input_topic(&clicks()));
    let (v0, c0) = data(0);
    let (v1, c1) = data(1);
    let (vx, cx) = closers();
    for batch in [(v0, c0), (v1, c1), (vx, cx)] {
        for (k, x, t) in batch.0 {
            v.pipe_input_at(k, x, t).unwrap();
        }
        for (k, x, t) in batch.1 {
            c.pipe_input_at(k, x, t).unwrap();
        }
    }
    let mut out = read(&mut driver.output_topic(&joined()));
    out.sort();
    out
}

#[test]
fn the_oracle_has_pairs_and_padding_on_both_sides() {
    let out = expected();
    let padded_view = out.iter().filter(|o| o.1.ends_with("+_")).count();
    let padded_click = out.iter().filter(|o| o.1.starts_with("_+")).count();
    let pairs = out.len() - padded_view - padded_click;
    assert!(
        pairs > 50 && padded_view > 20 && padded_click > 10,
        "{out:?}"
    );
    assert!(
        out.contains(&out_at("u1", "u1:103+c103", 100, 3)),
        "{out:?}"
    );
}

fn out_at(key: &str, value: &str, user_ms: i64, i: i64) -> (String, String, i64) {
    // The view at i * 25 s; its click 4 s later, which stamps the pair.
    out(key, value, BASE + i * 25 * SECOND + user_ms + 4 * SECOND)
}

#[test]
fn a_re_keyed_side_goes_through_a_repartition_topic() {
    let text = rekeyed_topology().describe().to_string();
    assert!(
        text.contains("${application_id}-vc-left-repartition"),
        "{text}"
    );
    assert!(!text.contains("vc-right-repartition"), "{text}");
}

/// Decodes what a backend wrote to `joined`.
async fn written(env: &TestEnv) -> Vec<(String, String, i64)> {
    env.read_all("joined")
        .await
        .into_iter()
        .map(|r| {
            let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let v: String = serde_json::from_slice(&r.value.unwrap()).unwrap();
            (k, v, r.timestamp)
        })
        .collect()
}

/// The topics of an app `app` running [`rekeyed_topology`] on 4 partitions.
async fn create_all(env: &TestEnv, app: &str) {
    for t in ["views", "clicks", "joined"] {
        env.create(t, 4).await;
    }
    create_topics(env, app);
}

/// Waits (up to 60 s) until the output topic holds exactly the records of `want`, as a set;
/// asserts it does.
async fn wait_for_output_set(env: &TestEnv, want: &BTreeSet<(String, String, i64)>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = BTreeSet::new();
    while std::time::Instant::now() < deadline {
        got = written(env).await.into_iter().collect();
        if &got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(&got, want);
}

fn create_topics(env: &TestEnv, app: &str) {
    for store in [
        "vc-this-join-store",
        "vc-other-join-store",
        "vc-outer-shared-join-store",
    ] {
        env.create_internal(&format!("{app}-{store}-changelog"), 4);
    }
    env.create_internal(&format!("{app}-vc-left-repartition"), 4);
    env.create_internal(&format!("{app}-dlq"), 1);
}

async fn produce_half(env: &TestEnv, (v, c): (Rows, Rows)) {
    produce_at(env, &views(), &v).await;
    produce_at(env, &clicks(), &c).await;
}

/// Waits until the join nodes of `streams` have seen `views` and `clicks` records.
async fn wait_joined(streams: &Streams, views: u64, clicks: u64) {
    wait_for("the join nodes", Duration::from_secs(60), || {
        let counts = streams.node_counts();
        counts.get("vc-this-join").copied().unwrap_or(0) >= views
            && counts.get("vc-other-join").copied().unwrap_or(0) >= clicks
    })
    .await;
}

on_both_backends!(an_outer_join_on_four_partitions_matches_the_driver);

async fn an_outer_join_on_four_partitions_matches_the_driver(env: TestEnv) {
    create_all(&env, "ssj4").await;
    let want = expected();
    produce_half(&env, data(0)).await;
    produce_half(&env, data(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(rekeyed_topology(), env.config("ssj4", dir.path())).unwrap();
    streams.start().await.unwrap();
    let (v0, c0) = data(0);
    let (v1, c1) = data(1);
    wait_joined(
        &streams,
        (v0.len() + v1.len()) as u64,
        (c0.len() + c1.len()) as u64,
    )
    .await;
    // Only now that every record is in: the closing records would make later ones late.
    produce_half(&env, closers()).await;
    wait_for("every result", Duration::from_secs(60), || {
        streams.node_counts().get("joined-sink").copied() >= Some(want.len() as u64)
    })
    .await;
    streams.close().await.unwrap();
    assert_eq!(streams.metrics().late_records_dropped, 0);
    let mut got = written(&env).await;
    got.sort();
    assert_eq!(got, want);
}

on_both_backends!(an_outer_join_is_exact_after_a_crash_that_loses_the_state);

/// The first run buffers the first half, commits and crashes; its state directory is lost.
/// The second run must rebuild all three join stores from their changelogs: the second half
/// joins views and clicks of the first, and the closing records emit the padded results of
/// records the first run left pending. At-least-once: compared as sets.
async fn an_outer_join_is_exact_after_a_crash_that_loses_the_state(env: TestEnv) {
    create_all(&env, "ssjr").await;
    let want: BTreeSet<_> = expected().into_iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("ssjr", dir.path());
    produce_half(&env, data(0)).await;
    let first = {
        let mut s = Streams::new(rekeyed_topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    let (v0, c0) = data(0);
    wait_joined(&first, v0.len() as u64, c0.len() as u64).await;
    let commits = first.metrics().commits;
    wait_for("two more commits", Duration::from_secs(60), || {
        first.metrics().commits >= commits + 2
    })
    .await;
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();

    produce_half(&env, data(1)).await;
    let mut second = Streams::new(rekeyed_topology(), config).unwrap();
    second.start().await.unwrap();
    let (v1, c1) = data(1);
    wait_joined(&second, v1.len() as u64, c1.len() as u64).await;
    assert!(second.metrics().records_restored > 0);
    produce_half(&env, closers()).await;
    wait_for_output_set(&env, &want).await;
    assert_eq!(second.metrics().late_records_dropped, 0);
    second.close().await.unwrap();
}

/// Waits until the group `app` has committed every record of the join's inputs: everything
/// is processed, so records written after this cannot overtake any.
async fn wait_caught_up(config: &StreamsConfig, app: &str) {
    let admin = Admin::new(config).unwrap();
    let repartition = format!("{app}-vc-left-repartition");
    let topics = ["views", "clicks", repartition.as_str()];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lag = admin.group_lag(app, &topics).await.unwrap();
        let topics_seen: BTreeSet<_> = lag.iter().map(|p| p.topic.clone()).collect();
        if topics_seen.len() == 3 && lag.iter().all(|p| p.lag == 0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for the group to catch up: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends!(an_outer_join_is_exact_after_a_crash_mid_stream);

/// A crash while the second half is being processed, with uncommitted work (so records are
/// processed again: at-least-once, compared as sets), and the state directory lost.
async fn an_outer_join_is_exact_after_a_crash_mid_stream(env: TestEnv) {
    create_all(&env, "ssjm").await;
    let want: BTreeSet<_> = expected().into_iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("ssjm", dir.path());
    produce_half(&env, data(0)).await;
    let first = {
        let mut s = Streams::new(rekeyed_topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    wait_for(
        "some records joined and committed",
        Duration::from_secs(60),
        || {
            first
                .node_counts()
                .get("vc-this-join")
                .copied()
                .unwrap_or(0)
                >= 20
                && first.metrics().commits >= 2
        },
    )
    .await;
    // The second half arrives while the first run works, which crashes right after.
    produce_half(&env, data(1)).await;
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();

    let mut second = Streams::new(rekeyed_topology(), config.clone()).unwrap();
    second.start().await.unwrap();
    wait_caught_up(&config, "ssjm").await;
    produce_half(&env, closers()).await;
    wait_for_output_set(&env, &want).await;
    assert_eq!(second.metrics().late_records_dropped, 0);
    second.close().await.unwrap();
}

on_both_backends!(inputs_of_different_partition_counts_are_not_co_partitioned);

async fn inputs_of_different_partition_counts_are_not_co_partitioned(env: TestEnv) {
    env.create("views", 4).await;
    env.create("clicks", 2).await;
    env.create("joined", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(
        topology(Kind::Inner, ten_seconds(0)),
        env.config("ssjx", dir.path()),
    )
    .unwrap();
    match streams.start().await.unwrap_err() {
        Error::NotCopartitioned {
            repartition_topic,
            expected,
            topic,
            actual,
            ..
        } => {
            assert_eq!(
                (repartition_topic.as_str(), expected, topic.as_str(), actual),
                ("views", 4, "clicks", 2)
            );
        }
        other => panic!("expected NotCopartitioned, got {other}"),
    }
}

#[test]
fn a_side_whose_serdes_a_map_dropped_is_a_clear_build_error() {
    let b = StreamsBuilder::new();
    b.stream(&views())
        .map(|k, v: String| (k, v.len() as i64))
        .join_stream(
            &b.stream(&clicks()),
            |_, n, c| format!("{n}+{c}"),
            ten_seconds(0),
            StreamJoined::as_("vc"),
        )
        .to(&joined());
    let e = b.build().unwrap_err().to_string();
    assert!(e.contains("vc") && e.contains("value serde"), "{e}");
}
