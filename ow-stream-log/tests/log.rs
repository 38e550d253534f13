//! The public API: topics, append/read, offsets, partitioning, waiting,
//! consumer groups, introspection, the directory lock.

// Helpers outside `#[test]` functions unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{block_on, key_str, open, opts, read_all, rec, val, value_str};
use ow_stream_log::{
    Bytes, CleanupPolicy, FsyncPolicy, Header, Log, LogError, NewRecord, TopicConfig,
    partition_for_key,
};

#[test]
fn create_topic_is_idempotent_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert!(log.create_topic("events", TopicConfig::new(3)).unwrap());
    assert!(!log.create_topic("events", TopicConfig::new(3)).unwrap());
    match log.create_topic("events", TopicConfig::new(4)) {
        Err(LogError::TopicExists {
            topic,
            existing: 3,
            requested: 4,
        }) => assert_eq!(topic, "events"),
        other => panic!("expected TopicExists, got {other:?}"),
    }
    assert!(matches!(
        log.create_topic("bad name", TopicConfig::new(1)),
        Err(LogError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        log.create_topic("..", TopicConfig::new(1)),
        Err(LogError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        log.create_topic("zero", TopicConfig::new(0)),
        Err(LogError::InvalidConfig { .. })
    ));
    assert!(matches!(
        log.create_topic("tiny", TopicConfig::new(1).with_segment_bytes(10)),
        Err(LogError::InvalidConfig { .. })
    ));
    log.create_topic("a.b_c-d", TopicConfig::new(1)).unwrap();
    assert_eq!(
        log.topics(),
        vec!["a.b_c-d".to_owned(), "events".to_owned()]
    );
    let info = log.topic("events").unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert_eq!(info.config, TopicConfig::new(3));
    assert!(log.topic("nope").is_none());
}

#[test]
fn topics_and_config_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::new(2)
        .with_cleanup(CleanupPolicy::DeleteAndCompact)
        .with_retention(Some(Duration::from_secs(60)))
        .with_retention_bytes(Some(1 << 20))
        .with_segment_bytes(1 << 16);
    {
        let log = open(dir.path());
        log.create_topic("t", config.clone()).unwrap();
        log.append("t", 1, &[rec("k", "v", 5)]).unwrap();
    }
    let log = open(dir.path());
    assert_eq!(log.topic("t").unwrap().config, config);
    assert_eq!(log.offsets("t", 1).unwrap(), (0, 1));
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 0));
}

#[test]
fn append_assigns_contiguous_offsets_and_read_returns_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(1)).unwrap();
    let a = log.append("t", 0, &[rec("k1", "v1", 10)]).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 0));
    let batch = vec![
        NewRecord::new(Some("k2"), None::<&str>, 11).with_header("h1", "x"),
        NewRecord {
            key: None,
            value: Some(Bytes::from_static(b"")),
            timestamp: -1,
            headers: vec![
                Header {
                    key: "null".into(),
                    value: None,
                },
                Header::new("dup", "1"),
                Header::new("dup", "2"),
            ],
        },
        rec("k3", "v3", 12),
    ];
    let b = log.append("t", 0, &batch).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (1, 3));
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 4));

    let all = log.read("t", 0, 0, 100, 1 << 20).unwrap();
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(key_str(&all[0]).as_deref(), Some("k1"));
    assert_eq!(value_str(&all[0]).as_deref(), Some("v1"));
    assert_eq!(all[0].timestamp, 10);
    assert!(all[1].is_tombstone());
    assert_eq!(all[1].headers, vec![Header::new("h1", "x")]);
    assert_eq!(all[2].key, None);
    assert_eq!(all[2].value, Some(Bytes::new()));
    assert_eq!(all[2].timestamp, -1);
    assert_eq!(all[2].headers, batch[1].headers);

    // Partial reads.
    let mid = log.read("t", 0, 2, 1, 1 << 20).unwrap();
    assert_eq!(mid.len(), 1);
    assert_eq!(mid[0].offset, 2);
    // max_bytes = 0 still returns one record (progress), never more.
    assert_eq!(log.read("t", 0, 1, 100, 0).unwrap().len(), 1);
    // At the end: empty.
    assert!(log.read("t", 0, 4, 100, 1 << 20).unwrap().is_empty());
}

#[test]
fn read_limits_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(1)).unwrap();
    let big = "x".repeat(1000);
    let recs: Vec<NewRecord> = (0..10).map(|i| rec(&format!("k{i}"), &big, i)).collect();
    log.append("t", 0, &recs).unwrap();
    // Each record is ~1026 bytes encoded (24 + 2 + 1000).
    let got = log.read("t", 0, 0, 100, 3 * 1026).unwrap();
    assert_eq!(got.len(), 3);
    let got = log.read("t", 0, 0, 100, 3 * 1026 - 1).unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn errors_name_topic_partition_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(2)).unwrap();
    log.append("t", 0, &[rec("a", "1", 0), rec("b", "2", 0)])
        .unwrap();
    match log.read("t", 0, 5, 10, 1000) {
        Err(LogError::OffsetOutOfRange {
            topic,
            partition: 0,
            requested: 5,
            start: 0,
            end: 2,
        }) => assert_eq!(topic, "t"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        log.read("t", 0, -1, 10, 1000),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.append("nope", 0, &[rec("a", "1", 0)]),
        Err(LogError::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.append("t", 2, &[rec("a", "1", 0)]),
        Err(LogError::UnknownPartition { partition: 2, .. })
    ));
    assert!(matches!(
        log.append("t", -1, &[rec("a", "1", 0)]),
        Err(LogError::UnknownPartition { partition: -1, .. })
    ));
    assert!(matches!(
        log.append("t", 0, &[]),
        Err(LogError::EmptyBatch { .. })
    ));
    let msg = log.read("t", 1, 3, 1, 1).unwrap_err().to_string();
    assert_eq!(msg, "offset 3 is out of range for t-1 (log start 0, end 0)");
}

#[test]
fn keyless_records_are_rejected_on_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        "c",
        TopicConfig::new(1).with_cleanup(CleanupPolicy::Compact),
    )
    .unwrap();
    assert!(matches!(
        log.append("c", 0, &[rec("k", "v", 0), val("v", 0)]),
        Err(LogError::MissingKey { .. })
    ));
    // Nothing of the rejected batch was written.
    assert_eq!(log.offsets("c", 0).unwrap(), (0, 0));
}

#[test]
fn partition_for_uses_kafka_murmur2_and_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(12)).unwrap();
    for key in ["21", "foobar", "abc", "player-1234", ""] {
        let expected = (ow_stream_log::murmur2(key.as_bytes()) & 0x7fff_ffff) % 12;
        assert_eq!(
            log.partition_for("t", Some(key.as_bytes())).unwrap(),
            expected
        );
        assert_eq!(partition_for_key(key.as_bytes(), 12), expected);
    }
    // "foobar" hashes to -790332482: toPositive → 1357151166 % 12 = 6.
    assert_eq!(log.partition_for("t", Some(b"foobar")).unwrap(), 6);
    let keyless: Vec<i32> = (0..24)
        .map(|_| log.partition_for("t", None).unwrap())
        .collect();
    assert_eq!(keyless, (0..24).map(|i| i % 12).collect::<Vec<_>>());
    assert!(matches!(
        log.partition_for("nope", None),
        Err(LogError::UnknownTopic { .. })
    ));
}

#[test]
fn data_survives_reopen_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
        log.create_topic("t", TopicConfig::new(1).with_segment_bytes(4096))
            .unwrap();
        for i in 0..300 {
            let v = format!("value-{i}-{}", "y".repeat(i % 50));
            log.append("t", 0, &[rec(&format!("k{i}"), &v, i as i64)])
                .unwrap();
            expected.push(v);
        }
        assert!(log.topic("t").unwrap().partitions[0].segments > 5);
    }
    // Reopen (clean shutdown path) and again after removing the marker
    // (unclean path): same contents both times, indexes usable, appends
    // continue at the end.
    for unclean in [false, true] {
        if unclean {
            std::fs::remove_file(dir.path().join("CLEAN_SHUTDOWN")).unwrap();
        } else {
            assert!(dir.path().join("CLEAN_SHUTDOWN").exists());
        }
        let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
        assert!(!dir.path().join("CLEAN_SHUTDOWN").exists());
        let all = read_all(&log, "t", 0);
        assert_eq!(all.len(), expected.len());
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(value_str(r).as_deref(), Some(expected[i].as_str()));
        }
        // Random access lands exactly.
        for o in [0i64, 1, 77, 150, 298, 299] {
            let r = log.read("t", 0, o, 1, 1 << 20).unwrap();
            assert_eq!(r[0].offset, o);
        }
        let next = expected.len() as i64;
        let a = log.append("t", 0, &[rec("x", "appended", 0)]).unwrap();
        assert_eq!(a.base_offset, next);
        expected.push("appended".to_owned());
    }
}

#[test]
fn concurrent_appends_to_one_partition_get_unique_contiguous_offsets() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), opts(policy)).unwrap();
        log.create_topic("t", TopicConfig::new(1).with_segment_bytes(8192))
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut acks = Vec::new();
                    for i in 0..50 {
                        let n = 1 + (i % 3);
                        let recs: Vec<NewRecord> = (0..n)
                            .map(|j| rec(&format!("w{w}"), &format!("w{w}-{i}-{j}"), 0))
                            .collect();
                        let a = log.append("t", 0, &recs).unwrap();
                        assert_eq!(a.last_offset - a.base_offset + 1, n as i64);
                        acks.push((a, recs));
                    }
                    acks
                })
            })
            .collect();
        let acks: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let all = read_all(&log, "t", 0);
        let total: usize = acks.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(all.len(), total, "{policy:?}");
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
        }
        // Each batch sits exactly at its acknowledged offsets, in order.
        for (a, recs) in &acks {
            for (j, r) in recs.iter().enumerate() {
                let stored = &all[(a.base_offset + j as i64) as usize];
                assert_eq!(stored.value, r.value);
            }
        }
        let values: HashSet<_> = all.iter().map(value_str).collect();
        assert_eq!(values.len(), total);
    }
}

#[test]
fn blocked_reader_is_woken_by_append_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    log.create_topic("t", TopicConfig::new(2)).unwrap();
    let waiting = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = log.clone();
        let waiting = Arc::clone(&waiting);
        std::thread::spawn(move || {
            waiting.store(true, Ordering::SeqCst);
            // Generous safety net only; the assertion is on the result.
            let woke = log.wait_for("t", 1, 0, Duration::from_secs(60)).unwrap();
            (woke, log.read("t", 1, 0, 10, 1 << 20).unwrap())
        })
    };
    while !waiting.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // An append to another partition does not satisfy the wait...
    log.append("t", 0, &[rec("other", "x", 0)]).unwrap();
    // ...this one does.
    log.append("t", 1, &[rec("k", "hello", 7)]).unwrap();
    let (woke, records) = reader.join().unwrap();
    assert!(woke);
    assert_eq!(records.len(), 1);
    assert_eq!(value_str(&records[0]).as_deref(), Some("hello"));

    // Already satisfied: returns at once; not satisfied: times out, false.
    assert!(log.wait_for("t", 1, 0, Duration::ZERO).unwrap());
    assert!(!log.wait_for("t", 1, 1, Duration::from_millis(1)).unwrap());
    assert!(matches!(
        log.wait_for("t", 9, 0, Duration::ZERO),
        Err(LogError::UnknownPartition { .. })
    ));
}

#[test]
fn wait_for_any_wakes_on_any_listed_partition() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("a", TopicConfig::new(1)).unwrap();
    log.create_topic("b", TopicConfig::new(1)).unwrap();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            log.wait_for_any(&[("a", 0, 0), ("b", 0, 0)], Duration::from_secs(60))
                .unwrap()
        })
    };
    log.append("b", 0, &[rec("k", "v", 0)]).unwrap();
    assert!(reader.join().unwrap());
    assert!(
        !log.wait_for_any(&[("a", 0, 0), ("b", 0, 1)], Duration::from_millis(1))
            .unwrap()
    );
}

#[test]
fn async_wait_is_woken_by_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(1)).unwrap();
    let fut = log.wait_for_async("t", 0, 0).unwrap();
    let any = log.wait_for_any_async(&[("t", 0, 0)]).unwrap();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            log.append("t", 0, &[rec("k", "v", 0)]).unwrap();
        })
    };
    block_on(fut);
    block_on(any);
    writer.join().unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 1));
    assert!(matches!(
        log.wait_for_async("nope", 0, 0),
        Err(LogError::UnknownTopic { .. })
    ));
}

#[test]
fn consumer_groups_commit_read_back_and_report_lag() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", TopicConfig::new(2)).unwrap();
        log.append(
            "t",
            0,
            &[rec("a", "1", 0), rec("b", "2", 0), rec("c", "3", 0)],
        )
        .unwrap();
        log.commit("g1", &[("t", 0, 1), ("t", 1, 0)]).unwrap();
        log.commit("g2", &[("t", 0, 3)]).unwrap();
        log.commit("g1", &[("t", 0, 2)]).unwrap();
        assert!(matches!(
            log.commit("g1", &[("t", 5, 0)]),
            Err(LogError::UnknownPartition { .. })
        ));
        assert!(matches!(
            log.commit("g1", &[("t", 0, -2)]),
            Err(LogError::InvalidCommit { .. })
        ));
        assert!(matches!(
            log.commit("", &[("t", 0, 0)]),
            Err(LogError::InvalidCommit { .. })
        ));
    }
    let log = open(dir.path());
    assert_eq!(log.groups(), vec!["g1".to_owned(), "g2".to_owned()]);
    assert_eq!(log.committed("g1", "t", 0), Some(2));
    assert_eq!(log.committed("g1", "t", 1), Some(0));
    assert_eq!(log.committed("g2", "t", 0), Some(3));
    assert_eq!(log.committed("g2", "t", 1), None);
    assert_eq!(log.committed("nobody", "t", 0), None);
    let g1 = log.group("g1").unwrap();
    assert_eq!(g1.partitions.len(), 2);
    assert_eq!(
        (
            g1.partitions[0].committed,
            g1.partitions[0].end_offset,
            g1.partitions[0].lag
        ),
        (2, 3, 1)
    );
    assert_eq!(g1.total_lag(), 1);
    assert_eq!(log.group("g2").unwrap().total_lag(), 0);
    assert!(log.delete_group("g2").unwrap());
    assert_eq!(log.groups(), vec!["g1".to_owned()]);
}

#[test]
fn stats_report_offsets_sizes_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::new(2)).unwrap();
    log.append("t", 0, &[rec("a", "1", 0), rec("b", "2", 0)])
        .unwrap();
    log.append("t", 1, &[rec("c", "3", 0)]).unwrap();
    log.commit("g", &[("t", 0, 1)]).unwrap();
    let s = log.stats();
    assert_eq!(s.records_appended, 3);
    assert!(s.bytes_appended > 0);
    assert_eq!(s.topics.len(), 1);
    let t = &s.topics[0];
    assert_eq!(t.records_appended(), 3);
    assert_eq!(
        (t.partitions[0].start_offset, t.partitions[0].end_offset),
        (0, 2)
    );
    assert_eq!(t.partitions[1].end_offset, 1);
    assert_eq!(t.size_bytes(), s.bytes_appended);
    assert_eq!(s.groups[0].partitions[0].lag, 1);
}

#[test]
fn second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let clone = log.clone();
    match Log::open(dir.path(), opts(FsyncPolicy::Never)) {
        Err(LogError::Locked { path, pid }) => {
            assert_eq!(path, dir.path().join("LOCK"));
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(log);
    // A clone keeps it locked.
    assert!(matches!(
        Log::open(dir.path(), opts(FsyncPolicy::Never)),
        Err(LogError::Locked { .. })
    ));
    drop(clone);
    // Released with the last handle.
    Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
}

#[test]
fn log_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Log>();
}

#[test]
fn background_maintenance_and_flusher_threads_stop_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let options = ow_stream_log::LogOptions::default()
        .with_fsync(FsyncPolicy::Interval(Duration::from_millis(1)))
        .with_maintenance_interval(Some(Duration::from_millis(1)));
    let log = Log::open(dir.path(), options.clone()).unwrap();
    log.create_topic("t", TopicConfig::new(1)).unwrap();
    // Current timestamps: records from 1970 would (rightly) be deleted by
    // the 7-day default retention of the background pass.
    let now = ow_stream_log::Clock::now_ms(&ow_stream_log::SystemClock);
    for i in 0..20 {
        log.append("t", 0, &[rec("k", &i.to_string(), now)])
            .unwrap();
    }
    drop(log);
    // Dropping joined the threads and released the lock.
    let log = Log::open(dir.path(), options).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 20));
}
