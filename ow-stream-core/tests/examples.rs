//! Runs the examples of `ow-stream-core/examples/` and checks what they return: each example
//! file is compiled into this test as a module and its `run` function called, so an example
//! that stops working fails the tests (on the mock cluster and the local backend, like the
//! examples themselves).

use std::collections::BTreeMap;

#[allow(dead_code)]
#[path = "../examples/word_count.rs"]
mod word_count;

#[allow(dead_code)]
#[path = "../examples/page_views.rs"]
mod page_views;

#[allow(dead_code)]
#[path = "../examples/local_backend.rs"]
mod local_backend;

#[allow(dead_code)]
#[path = "../examples/orders.rs"]
mod orders;

#[allow(dead_code)]
#[path = "../examples/punctuation.rs"]
mod punctuation;

/// Word counts of `lines` as the examples compute them (whitespace-split, lowercased).
fn expected_counts(lines: &[&str]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_counts_every_word() {
    let counts = word_count::run().await.expect("the example runs");
    assert_eq!(counts, expected_counts(word_count::LINES));
    assert_eq!(counts["the"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_emits_each_closed_window_once() {
    let windows = page_views::run().await.expect("the example runs");
    let got: Vec<(String, i64, i64)> = windows
        .iter()
        .map(|w| {
            assert_eq!(w.window_end - w.window_start, 60_000);
            (w.user.clone(), (w.window_start / 60_000) % 60, w.views)
        })
        .collect();
    // 12:00 (the late view within the grace period counted, the one after it not), 12:01,
    // 12:02; 12:03 is still open.
    let want: Vec<(String, i64, i64)> = [
        ("alice", 0, 4),
        ("bob", 0, 1),
        ("carol", 0, 1),
        ("alice", 1, 1),
        ("bob", 1, 3),
        ("carol", 2, 1),
    ]
    .into_iter()
    .map(|(u, m, n)| (u.to_string(), m, n))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_keeps_counts_across_a_restart() {
    let (first, second) = local_backend::run().await.expect("the example runs");
    assert_eq!(first, expected_counts(local_backend::FIRST_LINES));
    let all: Vec<&str> = local_backend::FIRST_LINES
        .iter()
        .chain(local_backend::SECOND_LINES)
        .copied()
        .collect();
    assert_eq!(second, expected_counts(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_gives_the_same_results_on_the_test_driver_and_the_local_backend() {
    const T0: i64 = 1_704_067_200_000;
    const M: i64 = 60_000;
    let driver = orders::run_on_test_driver().expect("the example runs on the test driver");
    // Final revenue: FR 12 + 5 + 30 and SE 8 in the first hour, FR 7 and SE 4 in the second;
    // the hour of o7 (03:00) is still open, so not emitted.
    let revenue: Vec<((&str, i64), i64)> = driver
        .revenue
        .iter()
        .map(|((c, start), cents)| ((c.as_str(), (start - T0) / M), *cents))
        .collect();
    assert_eq!(
        revenue,
        [
            (("FR", 0), 4_700),
            (("FR", 60), 700),
            (("SE", 0), 800),
            (("SE", 60), 400)
        ]
    );
    // Visits: c1's first two orders are one (15 minutes apart), the third another (70 later).
    let visits: Vec<(&str, i64, i64, i64)> = driver
        .visits
        .iter()
        .map(|((c, start), v)| (c.as_str(), (start - T0) / M, (v.end - T0) / M, v.orders))
        .collect();
    assert_eq!(
        visits,
        [
            ("c1", 5, 20, 2),
            ("c1", 90, 90, 1),
            ("c2", 10, 10, 1),
            ("c2", 100, 100, 1),
            ("c3", 50, 50, 1),
            ("c3", 180, 180, 1)
        ]
    );
    // o2 was paid 20 minutes late, o3 and o6 never; o7's window is still open.
    let settled: Vec<(&str, bool)> = driver
        .settlements
        .iter()
        .map(|(o, paid)| (o.as_str(), *paid))
        .collect();
    assert_eq!(
        settled,
        [
            ("o1", true),
            ("o2", false),
            ("o3", false),
            ("o4", true),
            ("o5", true),
            ("o6", false)
        ]
    );
    // The store holds the open hour too.
    assert_eq!(
        driver.france_by_hour,
        [(T0, 4_700), (T0 + 60 * M, 700), (T0 + 180 * M, 100)]
    );
    assert_eq!(driver.c1_name.as_deref(), Some("Ada"));

    let local = orders::run_on_local_backend()
        .await
        .expect("the example runs on the local backend");
    assert_eq!(local, driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punctuation_reports_on_stream_time_and_wall_clock() {
    let reports = punctuation::run().await.expect("the example runs");
    let want: Vec<(String, i64, i64)> = [
        // The first record fires the stream-time schedule (aligned to whole minutes).
        ("minute", 1, 5),
        // The first 10 s of wall-clock time.
        ("ana", 2, 10),
        ("mercy", 1, 10),
        // Stream time jumps from +40 s to +200 s: one summary.
        ("minute", 3, 200),
        ("ana", 3, 20),
        ("genji", 1, 20),
    ]
    .into_iter()
    .map(|(k, v, s)| (k.to_string(), v, s))
    .collect();
    assert_eq!(reports, want);
}
