//! Punctuation schedules of the processor API (`ProcessorContext::schedule`): stream-time
//! schedules fire once per crossing of their next time, wall-clock ones on the test driver's
//! `advance_wall_clock` and from the stream thread's loop; a schedule can be cancelled; a
//! punctuator forwards records and uses the processor's stores; its errors go through the
//! processing-error policy. The same topology runs on both backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::config::OnError;
use ow_stream_core::dsl::Materialized;
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{
    Cancellable, Processor, ProcessorContext, PunctuationType, ScheduleError,
};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TestOutputTopic, TopologyTestDriver};
use ow_stream_core::{Error, Record, StreamsBuilder, Topic, Topology};
use parking_lot::Mutex;

const START: i64 = 1_000_000;

fn plays() -> Topic<String, i64> {
    Topic::new("plays", StringSerde, JsonSerde::new())
}

/// One record per punctuation: key `stream` or `wall`, value the sum of the totals of the
/// keys updated since the previous punctuation, timestamp the punctuation's.
fn ticks() -> Topic<String, i64> {
    Topic::new("ticks", StringSerde, JsonSerde::new())
}

#[derive(Clone, Default)]
struct Cfg {
    stream: Option<Duration>,
    wall: Option<Duration>,
    /// Cancel every schedule after this many punctuations.
    cancel_after: Option<usize>,
}

/// Sums values per key into `totals`; its punctuators copy the totals of the keys updated
/// since the last punctuation into `emitted` and forward their sum. A value of -1 cancels the
/// schedules; a value of 0 makes the next punctuation fail.
struct Totals {
    cfg: Cfg,
    dirty: BTreeSet<String>,
    handles: Vec<Cancellable>,
    fired: usize,
    fail_next: bool,
}

impl Totals {
    fn new(cfg: Cfg) -> Self {
        Totals {
            cfg,
            dirty: BTreeSet::new(),
            handles: Vec::new(),
            fired: 0,
            fail_next: false,
        }
    }

    fn tick(
        &mut self,
        kind: &str,
        ts: i64,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        self.fired += 1;
        if Some(self.fired) == self.cfg.cancel_after {
            for h in &self.handles {
                h.cancel();
            }
        }
        if std::mem::take(&mut self.fail_next) {
            return Err(format!("{kind} punctuator failed at {ts}").into());
        }
        let mut updated = Vec::new();
        {
            let mut totals = ctx.key_value_store::<String, i64>("totals")?;
            for key in std::mem::take(&mut self.dirty) {
                let total = totals.get(&key)?.unwrap_or(0);
                updated.push((key, total));
            }
        }
        let mut emitted = ctx.key_value_store::<String, i64>("emitted")?;
        for (key, total) in &updated {
            emitted.put(key, total)?;
        }
        let sum = updated.iter().map(|(_, t)| t).sum();
        ctx.forward(Record::new(kind.to_string(), sum, ts))?;
        Ok(())
    }
}

impl Processor<String, i64, String, i64> for Totals {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>) -> Result<(), BoxError> {
        if let Some(every) = self.cfg.stream {
            let h = ctx.schedule(
                every,
                PunctuationType::StreamTime,
                |me: &mut Self, ts, ctx| me.tick("stream", ts, ctx),
            )?;
            self.handles.push(h);
        }
        if let Some(every) = self.cfg.wall {
            let h = ctx.schedule(
                every,
                PunctuationType::WallClockTime,
                |me: &mut Self, ts, ctx| me.tick("wall", ts, ctx),
            )?;
            self.handles.push(h);
        }
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, i64>,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        match record.value {
            -1 => {
                for h in &self.handles {
                    h.cancel();
                }
                return Ok(());
            }
            0 => {
                self.fail_next = true;
                return Ok(());
            }
            _ => {}
        }
        let mut totals = ctx.key_value_store::<String, i64>("totals")?;
        let total = totals.get(&record.key)?.unwrap_or(0) + record.value;
        totals.put(&record.key, &total)?;
        self.dirty.insert(record.key);
        Ok(())
    }
}

fn topology(cfg: Cfg) -> Topology {
    let b = StreamsBuilder::new();
    for store in ["totals", "emitted"] {
        b.add_state_store(
            Materialized::<String, i64>::as_(store)
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        );
    }
    b.stream(&plays())
        .process("totals", &["totals", "emitted"], move || {
            Totals::new(cfg.clone())
        })
        .to(&ticks());
    b.build().unwrap()
}

fn driver(cfg: Cfg, policy: OnError) -> TopologyTestDriver {
    let mut config = TestDriverConfig::default().with_error_policy(policy);
    config.start_time = START;
    TopologyTestDriver::with_config(topology(cfg), config).unwrap()
}

/// `(key, timestamp)` of the tick records written since the last call.
fn tick_times(out: &mut TestOutputTopic<String, i64>) -> Vec<(String, i64)> {
    out.read_records()
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.timestamp))
        .collect()
}

fn stream(ts: &[i64]) -> Vec<(String, i64)> {
    ts.iter().map(|t| ("stream".to_string(), *t)).collect()
}

fn wall(ts: &[i64]) -> Vec<(String, i64)> {
    ts.iter()
        .map(|t| ("wall".to_string(), START + *t))
        .collect()
}

#[test]
fn stream_time_fires_once_per_crossing_even_across_jumps() {
    let d = driver(
        Cfg {
            stream: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    // Aligned to multiples of the interval from 0: the first record fires (stream time 100
    // is past 0), then 1000; the jump to 4500 fires once, and the next time is 5000; a late
    // record (3000) does not move stream time.
    for ts in [100, 500, 999, 1000, 4500, 4800, 3000, 5000, 5001] {
        input.pipe_input_at("a".into(), 1, ts).unwrap();
    }
    assert_eq!(tick_times(&mut out), stream(&[100, 1000, 4500, 5000]));
    // Wall-clock time does not drive a stream-time schedule.
    d.advance_wall_clock(Duration::from_secs(10)).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);
}

#[test]
fn wall_clock_fires_on_advance_wall_clock_only() {
    let d = driver(
        Cfg {
            wall: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    // Records move stream time, not the wall clock.
    input.pipe_input_at("a".into(), 1, START + 5_000).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);
    d.advance_wall_clock(Duration::from_millis(500)).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);
    d.advance_wall_clock(Duration::from_millis(500)).unwrap();
    assert_eq!(tick_times(&mut out), wall(&[1_000]));
    // Three intervals at once fire once (as Kafka Streams' test driver), and the schedule
    // is next due one interval later.
    d.advance_wall_clock(Duration::from_secs(3)).unwrap();
    assert_eq!(tick_times(&mut out), wall(&[4_000]));
    d.advance_wall_clock(Duration::from_millis(999)).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);
    d.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(tick_times(&mut out), wall(&[5_000]));
}

#[test]
fn cancel_stops_a_schedule() {
    // Cancelled from `process`.
    let d = driver(
        Cfg {
            stream: Some(Duration::from_secs(1)),
            wall: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    input.pipe_input_at("a".into(), 1, 100).unwrap();
    input.pipe_input_at("a".into(), 1, 1_000).unwrap();
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    assert_eq!(
        tick_times(&mut out),
        [stream(&[100, 1_000]), wall(&[1_000])].concat()
    );
    input.pipe_input_at("a".into(), -1, 1_500).unwrap();
    input.pipe_input_at("a".into(), 1, 2_000).unwrap();
    input.pipe_input_at("a".into(), 1, 9_000).unwrap();
    d.advance_wall_clock(Duration::from_secs(5)).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);

    // Cancelled by the punctuator itself, on its second run.
    let d = driver(
        Cfg {
            wall: Some(Duration::from_secs(1)),
            cancel_after: Some(2),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let mut out = d.output_topic(&ticks());
    for _ in 0..5 {
        d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    }
    assert_eq!(tick_times(&mut out), wall(&[1_000, 2_000]));
}

#[test]
fn a_punctuator_forwards_records_and_uses_the_stores() {
    let d = driver(
        Cfg {
            wall: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    input.pipe_input_at("a".into(), 1, 10).unwrap();
    input.pipe_input_at("a".into(), 2, 20).unwrap();
    input.pipe_input_at("b".into(), 5, 30).unwrap();
    assert!(out.is_empty());
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    let tick = out.read_record().unwrap().unwrap();
    assert_eq!(
        (tick.key.as_str(), tick.value, tick.timestamp),
        ("wall", 8, START + 1_000)
    );
    let emitted = d.key_value_store::<String, i64>("emitted").unwrap();
    assert_eq!(emitted.get(&"a".to_string()).unwrap(), Some(3));
    assert_eq!(emitted.get(&"b".to_string()).unwrap(), Some(5));
    // Only the keys updated since: b.
    input.pipe_input_at("b".into(), 1, 40).unwrap();
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![("wall".to_string(), 6)]
    );
    assert_eq!(emitted.get(&"b".to_string()).unwrap(), Some(6));
    assert_eq!(emitted.get(&"a".to_string()).unwrap(), Some(3));
}

#[test]
fn a_failing_punctuator_is_dead_lettered_and_the_schedule_goes_on() {
    let d = driver(
        Cfg {
            wall: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::DeadLetter,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    input.pipe_input_at("a".into(), 0, 10).unwrap();
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    assert_eq!(tick_times(&mut out), vec![]);
    let dlq = d.dead_letters();
    assert_eq!(dlq.len(), 1);
    let h = &dlq[0].headers;
    assert_eq!(h.last_str("ow.dlq.stage"), Some("punctuate"));
    assert_eq!(h.last_str("ow.dlq.node"), Some("totals"));
    assert_eq!(
        h.last_str("ow.dlq.error"),
        Some(format!("wall punctuator failed at {}", START + 1_000).as_str())
    );
    assert_eq!(dlq[0].key, None);
    assert_eq!(dlq[0].value, None);
    assert_eq!(d.metrics().processing_errors, 1);
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    assert_eq!(tick_times(&mut out), wall(&[2_000]));
}

#[test]
fn a_failing_punctuator_is_skipped_under_log_and_skip() {
    let d = driver(
        Cfg {
            stream: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::LogAndSkip,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    input.pipe_input_at("a".into(), 0, 100).unwrap();
    input.pipe_input_at("a".into(), 1, 1_000).unwrap();
    assert_eq!(tick_times(&mut out), stream(&[1_000]));
    assert_eq!(d.metrics().processing_errors, 1);
    assert!(d.dead_letters().is_empty());
}

#[test]
fn a_failing_punctuator_fails_the_task_under_fail() {
    // Stream time: the record that moves stream time past the schedule fails.
    let d = driver(
        Cfg {
            stream: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    let input = d.input_topic(&plays());
    let mut out = d.output_topic(&ticks());
    input.pipe_input_at("a".into(), 1, 100).unwrap();
    input.pipe_input_at("a".into(), 0, 200).unwrap();
    match input.pipe_input_at("a".into(), 1, 1_000) {
        Err(Error::Processing { node, source, .. }) => {
            assert_eq!(&*node, "totals");
            assert_eq!(source.to_string(), "stream punctuator failed at 1000");
        }
        other => panic!("expected a processing error, got {other:?}"),
    }
    assert_eq!(tick_times(&mut out), stream(&[100]));
    // Wall clock: `advance_wall_clock` fails.
    let d = driver(
        Cfg {
            wall: Some(Duration::from_secs(1)),
            ..Cfg::default()
        },
        OnError::Fail,
    );
    d.input_topic(&plays())
        .pipe_input_at("a".into(), 0, 100)
        .unwrap();
    match d.advance_wall_clock(Duration::from_secs(1)) {
        Err(Error::Processing { node, .. }) => assert_eq!(&*node, "totals"),
        other => panic!("expected a processing error, got {other:?}"),
    }
}

/// Tries bad schedules in `init` and records what `schedule` said.
struct BadSchedules(Arc<Mutex<Vec<String>>>);

impl Processor<String, i64, String, i64> for BadSchedules {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>) -> Result<(), BoxError> {
        let mut said = self.0.lock();
        match ctx.schedule(
            Duration::from_micros(999),
            PunctuationType::WallClockTime,
            |_: &mut Self, _, _| Ok(()),
        ) {
            Err(ScheduleError::IntervalTooShort { .. }) => said.push("too short".into()),
            other => said.push(format!("{other:?}")),
        }
        // A punctuator written for another processor type.
        match ctx.schedule(
            Duration::from_secs(1),
            PunctuationType::WallClockTime,
            |_: &mut Totals, _, _| Ok(()),
        ) {
            Err(ScheduleError::WrongProcessorType { .. }) => said.push("wrong type".into()),
            other => said.push(format!("{other:?}")),
        }
        Ok(())
    }

    fn process(
        &mut self,
        _record: Record<String, i64>,
        _ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Counts the calls of the plain `punctuate` hook.
struct Legacy(Arc<Mutex<Vec<String>>>);

impl Processor<String, i64, String, i64> for Legacy {
    fn process(
        &mut self,
        _record: Record<String, i64>,
        _ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        self.0
            .lock()
            .push(format!("legacy {}", ctx.wall_clock_time()));
        Ok(())
    }
}

#[test]
fn bad_schedules_are_refused_and_the_plain_hook_still_runs() {
    let said = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (said.clone(), said.clone());
    let builder = StreamsBuilder::new();
    let s = builder.stream(&plays());
    s.process("bad", &[], move || BadSchedules(a.clone()))
        .to(&ticks());
    s.process("legacy", &[], move || Legacy(b.clone()))
        .to(&ticks());
    let d = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    assert_eq!(*said.lock(), vec!["too short", "wrong type"]);
    d.advance_wall_clock(Duration::from_secs(2)).unwrap();
    assert_eq!(*said.lock(), vec!["too short", "wrong type", "legacy 2000"]);
}

on_both_backends!(punctuator_outputs_arrive);

/// The same topology on a real stream thread: the stream-time schedule fires exactly at the
/// crossings the records make, the wall-clock one from the thread's loop.
async fn punctuator_outputs_arrive(env: TestEnv) {
    let app = "punctuators";
    env.create("plays", 1).await;
    env.create("ticks", 1).await;
    for internal in ["totals-changelog", "emitted-changelog", "dlq", "shutdown"] {
        env.create_internal(&format!("{app}-{internal}"), 1);
    }
    produce_at(
        &env,
        &plays(),
        &[
            ("a".to_string(), 1, 1_000),
            ("a".to_string(), 2, 2_500),
            ("b".to_string(), 5, 2_600),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(
        topology(Cfg {
            stream: Some(Duration::from_secs(1)),
            wall: Some(Duration::from_millis(100)),
            ..Cfg::default()
        }),
        env.config(app, dir.path()),
    )
    .unwrap();
    streams.start().await.unwrap();
    let emitted = |key: &str| {
        streams
            .key_value_store::<String, i64>("emitted")
            .ok()
            .and_then(|s| s.get(&key.to_string()).ok().flatten())
    };
    wait_for(
        "the punctuators to copy both totals",
        Duration::from_secs(60),
        || emitted("a") == Some(3) && emitted("b") == Some(5),
    )
    .await;
    // Wall-clock ticks keep coming while no records arrive.
    let mut by_kind: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        by_kind.clear();
        for r in env.read_all("ticks").await {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            by_kind.entry(key).or_default().push(r.timestamp);
        }
        if by_kind.get("wall").map_or(0, Vec::len) >= 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for wall-clock ticks: {by_kind:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(by_kind.get("stream"), Some(&vec![1_000, 2_500]));
    let wall = &by_kind["wall"];
    assert!(
        wall.windows(2).all(|w| w[0] < w[1]) && wall[0] > 1_600_000_000_000,
        "wall ticks carry increasing wall-clock times: {wall:?}"
    );
    streams.close().await.unwrap();
}
