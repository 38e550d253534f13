//! Punctuators: a custom processor that acts on time, not only on records.
//!
//! What it shows:
//! - [`Processor::init`] scheduling two punctuators with [`ProcessorContext::schedule`]:
//!   - on **stream time** every minute: how many heroes were picked since the previous
//!     summary, fired by the record that moves stream time into the next minute — once, even
//!     when stream time jumps several minutes;
//!   - on **wall-clock time** every 10 seconds: the totals of the heroes played since the
//!     previous report, read from the processor's store, forwarded downstream;
//! - the [`TopologyTestDriver`]: records piped with chosen timestamps drive the stream-time
//!   punctuator, [`TopologyTestDriver::advance_wall_clock`] the wall-clock one, so the output
//!   is deterministic.
//!
//! Run: `cargo run -p ow-stream-core --example punctuation` (instant; no broker).

use std::collections::BTreeSet;
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use ow_stream_core::dsl::Materialized;
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{Processor, ProcessorContext, PunctuationType};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{Record, StreamsBuilder, Topic, Topology};

/// When the example's wall clock starts (2026-01-01T12:00:00Z, in milliseconds).
pub(crate) const START: i64 = 1_767_268_800_000;

/// A hero picked in a match: key the hero, value the match.
fn picks() -> Topic<String, String> {
    Topic::new("hero-picks", StringSerde, StringSerde)
}

/// What the punctuators report: key `minute` (value: the picks since the previous summary,
/// the record that moved stream time included) or a hero (value: its total picks so far).
fn reports() -> Topic<String, i64> {
    Topic::new("pick-reports", StringSerde, JsonSerde::new())
}

/// Counts picks per hero in the store `picks-per-hero`; reports on time.
#[derive(Default)]
struct PickReporter {
    /// Picks since the last stream-time summary.
    in_minute: i64,
    /// Heroes picked since the last wall-clock report.
    changed: BTreeSet<String>,
}

impl PickReporter {
    /// Stream time crossed a minute: the summary of the picks since the previous one.
    fn minute(
        &mut self,
        stream_time: i64,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        let picks = std::mem::take(&mut self.in_minute);
        ctx.forward(Record::new("minute".to_string(), picks, stream_time))
    }

    /// Every 10 s of wall-clock time: the totals of the heroes picked since the last report.
    fn report(
        &mut self,
        now: i64,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        let mut totals = Vec::new();
        {
            let mut store = ctx.key_value_store::<String, i64>("picks-per-hero")?;
            for hero in std::mem::take(&mut self.changed) {
                let total = store.get(&hero)?.unwrap_or(0);
                totals.push((hero, total));
            }
        }
        for (hero, total) in totals {
            ctx.forward(Record::new(hero, total, now))?;
        }
        Ok(())
    }
}

impl Processor<String, String, String, i64> for PickReporter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>) -> Result<(), BoxError> {
        ctx.schedule(
            Duration::from_secs(60),
            PunctuationType::StreamTime,
            |me: &mut Self, ts, ctx| me.minute(ts, ctx),
        )?;
        ctx.schedule(
            Duration::from_secs(10),
            PunctuationType::WallClockTime,
            |me: &mut Self, ts, ctx| me.report(ts, ctx),
        )?;
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> Result<(), BoxError> {
        let mut store = ctx.key_value_store::<String, i64>("picks-per-hero")?;
        let total = store.get(&record.key)?.unwrap_or(0) + 1;
        store.put(&record.key, &total)?;
        self.in_minute += 1;
        self.changed.insert(record.key);
        Ok(())
    }
}

fn topology() -> Result<Topology, Box<dyn Error>> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(
        Materialized::<String, i64>::as_("picks-per-hero")
            .with_key_serde(StringSerde)
            .with_value_serde(JsonSerde::new()),
    );
    builder
        .stream(&picks())
        .process("pick-reporter", &["picks-per-hero"], PickReporter::default)
        .to(&reports());
    Ok(builder.build()?)
}

/// Runs the example; returns every report as `(key, value, seconds since START)`.
pub(crate) async fn run() -> Result<Vec<(String, i64, i64)>, Box<dyn Error>> {
    let mut config = TestDriverConfig::default().with_application_id("punctuation");
    config.start_time = START;
    let driver = TopologyTestDriver::with_config(topology()?, config)?;
    let input = driver.input_topic(&picks());
    let mut output = driver.output_topic(&reports());
    let at = |seconds: i64| START + seconds * 1_000;

    // Minute 0. The first record fires the stream-time punctuator at once (its schedule is
    // aligned to whole minutes since the epoch, and stream time is past the first one).
    input.pipe_input_at("ana".into(), "m1".into(), at(5))?;
    input.pipe_input_at("mercy".into(), "m1".into(), at(20))?;
    input.pipe_input_at("ana".into(), "m2".into(), at(40))?;
    // 10 s of wall-clock time: the heroes picked so far.
    driver.advance_wall_clock(Duration::from_secs(10))?;
    // Stream time jumps three minutes: one summary, not three.
    input.pipe_input_at("genji".into(), "m3".into(), at(200))?;
    input.pipe_input_at("ana".into(), "m3".into(), at(230))?;
    driver.advance_wall_clock(Duration::from_secs(10))?;

    let mut reports = Vec::new();
    for r in output.read_records()? {
        reports.push((r.key, r.value, (r.timestamp - START) / 1_000));
    }
    Ok(reports)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(reports) => {
            for (key, value, seconds) in reports {
                println!("+{seconds:>3}s  {key:<8} {value}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("punctuation failed: {e}");
            ExitCode::FAILURE
        }
    }
}
