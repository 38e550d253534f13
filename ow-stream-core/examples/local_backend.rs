//! Word count on the durable local backend: no broker at all, and a restart keeps the counts.
//!
//! What it shows:
//! - [`Backend::local`]: topics are partitioned logs in a directory (fsynced before each
//!   append is acknowledged, [`LocalFsync::Always`]); the same producer, admin client and
//!   streams runtime as on Kafka;
//! - [`Admin::create_topics`] for the input and output topics (the application creates its
//!   own internal topics: the repartition topic and the changelog);
//! - persistent state: the application runs, stops cleanly, and every handle on the log is
//!   dropped; a second run on the same directories continues from the stored counts (it
//!   restores nothing from the changelog) and adds the words of new lines to them.
//!
//! Everything lives in a temporary directory that is deleted at the end.
//!
//! Run: `cargo run -p ow-stream-core --example local_backend` (about a second).

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::Producer;
use ow_stream_core::config::{Backend, LocalFsync, LocalOptions, StreamsConfig};
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};

/// Lines produced before the first run.
pub(crate) const FIRST_LINES: &[&str] = &["the quick brown fox", "jumps over the lazy dog"];
/// Lines produced before the second run, after the restart.
pub(crate) const SECOND_LINES: &[&str] = &["the dog barks at the fox"];

fn lines_topic() -> Topic<String, String> {
    Topic::new("lines", StringSerde, StringSerde)
}

fn counts_topic() -> Topic<String, i64> {
    Topic::new("word-counts", StringSerde, JsonSerde::new())
}

/// The same word count as the `word_count` example.
fn topology() -> Result<Topology, Box<dyn Error>> {
    let builder = StreamsBuilder::new();
    builder
        .stream(&lines_topic())
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_line_number, word| word.clone(),
            Grouped::as_("words")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        )
        // Persistent (the default): redb files under the state directory.
        .count(Materialized::as_("counts").persistent())
        .to_stream()
        .to(&counts_topic());
    Ok(builder.build()?)
}

/// Produces `lines` (numbered from `first_line`), runs the application until it has counted
/// `total_words` words in all, stops it cleanly, and returns the counts.
async fn session(
    config: &StreamsConfig,
    first_line: usize,
    lines: &[&str],
    total_words: i64,
) -> Result<BTreeMap<String, i64>, Box<dyn Error>> {
    let producer = Producer::new(config)?;
    for (n, line) in lines.iter().enumerate() {
        producer
            .send(
                &lines_topic(),
                &format!("line-{}", first_line + n),
                &line.to_string(),
            )
            .await?;
    }
    let mut streams = Streams::new(topology()?, config.clone())?;
    streams.start().await?;
    let store = streams.key_value_store::<String, i64>("counts")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let counts = loop {
        if let Some(failure) = streams.failure() {
            return Err(format!("the application failed: {failure}").into());
        }
        // The store is empty until the stream thread has opened it.
        let counts: BTreeMap<String, i64> = store.all()?.into_iter().collect();
        if counts.values().sum::<i64>() == total_words {
            break counts;
        }
        if Instant::now() > deadline {
            return Err(format!("not all {total_words} words counted within 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let restored = streams.metrics().records_restored;
    streams.close().await?;
    println!(
        "  counted {} new line(s); changelog records restored at start: {restored}",
        lines.len()
    );
    Ok(counts)
}

fn words(lines: &[&str]) -> i64 {
    lines
        .iter()
        .map(|l| l.split_whitespace().count() as i64)
        .sum()
}

fn print_counts(counts: &BTreeMap<String, i64>) {
    let text: Vec<String> = counts.iter().map(|(w, n)| format!("{w}={n}")).collect();
    println!("  counts: {}", text.join(" "));
}

/// Runs the example; returns the counts after the first and after the second run.
pub(crate) async fn run() -> Result<(BTreeMap<String, i64>, BTreeMap<String, i64>), Box<dyn Error>>
{
    let root = tempfile::tempdir()?;
    let config = StreamsConfig::new("word-count", Backend::local(root.path().join("log")))
        .with_state_dir(root.path().join("state"))
        .with_commit_interval(Duration::from_millis(100))
        // The default, spelled out: every append is on disk before it is acknowledged.
        .with_local_options(LocalOptions::default().with_fsync(LocalFsync::Always));
    println!("log and state under {}", root.path().display());
    Admin::new(&config)?
        .create_topics(&[TopicSpec::new("lines", 2), TopicSpec::new("word-counts", 2)])
        .await?;

    println!("first run:");
    let first = session(&config, 0, FIRST_LINES, words(FIRST_LINES)).await?;
    print_counts(&first);

    // Nothing holds the log or the stores open any more: the next run reopens them from disk,
    // as a new process would.
    println!("restart; second run:");
    let total = words(FIRST_LINES) + words(SECOND_LINES);
    let second = session(&config, FIRST_LINES.len(), SECOND_LINES, total).await?;
    print_counts(&second);

    let admin = Admin::new(&config)?;
    let topics = [
        "lines",
        "word-counts",
        "word-count-words-repartition",
        "word-count-counts-changelog",
    ];
    println!("topics in the log:");
    for t in admin.topic_offsets(&topics).await? {
        let bytes: u64 = t.partitions.iter().filter_map(|p| p.size_bytes).sum();
        println!(
            "  {:<30} {} partitions, {} records written, {bytes} bytes on disk",
            t.name,
            t.partitions.len(),
            t.end_total()
        );
    }
    Ok((first, second))
}

#[allow(dead_code)] // The integration test includes this file and calls `run` only.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local_backend failed: {e}");
            ExitCode::FAILURE
        }
    }
}
