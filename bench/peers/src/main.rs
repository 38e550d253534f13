//! `ow-bench`: the commands `bench/peers.sh` runs (see the crate documentation).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ow_bench::contender::{self, Workload};
use ow_bench::harness::{self, RunResult, RunSpec};
use ow_stream_core::config::{Backend, StreamsConfig};

#[derive(Parser)]
#[command(about = "The peer benchmarks of bench/peers.sh")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Where topics live.
#[derive(clap::Args, Clone)]
struct Where {
    /// Kafka bootstrap servers, or `local:///path` for the local log.
    #[arg(long, env = "OW_BROKERS")]
    brokers: String,
}

impl Where {
    fn config(&self, app: &str) -> anyhow::Result<StreamsConfig> {
        Ok(StreamsConfig::new(app, Backend::parse(&self.brokers)?))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Fills the input, runs one contender (the command after `--`), checks it; appends the
    /// result to `--results` as one JSON line.
    Run {
        #[command(flatten)]
        at: Where,
        /// Row name.
        #[arg(long)]
        name: String,
        /// Workload: a (map + filter), b (count), c (ow-processor on OverFast events).
        #[arg(long, value_enum)]
        workload: Workload,
        /// Input and output partitions.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Bulk records (workloads a, b) or OverFast events (c).
        #[arg(long)]
        records: u64,
        /// Distinct keys (a, b).
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Value bytes (a, b).
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        /// Records trickled after the bulk for the latency figures (Kafka only).
        #[arg(long, default_value_t = 200)]
        latency_records: u64,
        /// The contender's consumer group.
        #[arg(long)]
        group: String,
        /// The contender writes no output (raw consumers).
        #[arg(long)]
        no_output: bool,
        /// The recorded OverFast body of workload c.
        #[arg(long, default_value = "samples/overfast/JohnV1-1190.json")]
        sample: PathBuf,
        /// The schema registry directory of workload c.
        #[arg(long, default_value = "bench/results/registry")]
        registry_dir: PathBuf,
        /// JSON lines file the result is appended to.
        #[arg(long)]
        results: PathBuf,
        /// The contender's command line.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The ow-stream contender.
    OwStream {
        #[command(flatten)]
        at: Where,
        /// The workload.
        #[arg(long, value_enum)]
        workload: Workload,
        /// Application id (and consumer group).
        #[arg(long, default_value = "bench-ow-stream")]
        application_id: String,
        /// State directory.
        #[arg(long)]
        state_dir: PathBuf,
        /// Commit interval in milliseconds.
        #[arg(long, default_value_t = 5000)]
        commit_interval_ms: u64,
        /// Record cache bytes (`0`: off).
        #[arg(long, default_value_t = ow_stream_core::config::DEFAULT_CACHE_MAX_BYTES)]
        cache_max_bytes: usize,
        /// Records of the bulk (timed).
        #[arg(long)]
        bulk: u64,
        /// Records to consume before stopping.
        #[arg(long)]
        expect: u64,
        /// Schema registry directory (workload c).
        #[arg(long)]
        registry_dir: Option<PathBuf>,
        /// librdkafka settings passed through to every client, `KEY=VALUE` (repeatable).
        #[arg(long = "kafka", value_name = "KEY=VALUE")]
        kafka: Vec<String>,
    },
    /// A raw rdkafka consumer of the input.
    Raw {
        /// Kafka bootstrap servers.
        #[arg(long)]
        brokers: String,
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// Also decode every value.
        #[arg(long)]
        decode: bool,
        /// Commit interval in milliseconds.
        #[arg(long, default_value_t = 5000)]
        commit_interval_ms: u64,
        /// Records of the bulk (timed).
        #[arg(long)]
        bulk: u64,
        /// Records to consume before stopping.
        #[arg(long)]
        expect: u64,
    },
    /// Prints the Markdown table of a results file.
    Table {
        /// JSON lines written by `run`.
        #[arg(long)]
        results: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match Args::parse().command {
        Command::Run {
            at,
            name,
            workload,
            partitions,
            records,
            keys,
            value_bytes,
            latency_records,
            group,
            no_output,
            sample,
            registry_dir,
            results,
            command,
        } => {
            let spec = RunSpec {
                name,
                workload,
                config: at.config("bench-harness")?,
                partitions,
                records,
                keys,
                value_bytes,
                latency_records,
                group,
                has_output: !no_output,
                sample,
                registry_dir,
                command,
            };
            let result = harness::run(&spec).await?;
            let line = serde_json::to_string(&result)?;
            println!("{line}");
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&results)
                .with_context(|| results.display().to_string())?;
            writeln!(file, "{line}")?;
        }
        Command::OwStream {
            at,
            workload,
            application_id,
            state_dir,
            commit_interval_ms,
            cache_max_bytes,
            bulk,
            expect,
            registry_dir,
            kafka,
        } => {
            let mut config = at
                .config(&application_id)?
                .with_state_dir(state_dir)
                .with_commit_interval(Duration::from_millis(commit_interval_ms.max(1)))
                .with_cache_max_bytes(cache_max_bytes);
            for setting in kafka {
                let (key, value) = setting
                    .split_once('=')
                    .with_context(|| format!("--kafka {setting:?}: expected KEY=VALUE"))?;
                config.kafka.insert(key.to_string(), value.to_string());
            }
            let report = contender::ow_stream(workload, config, bulk, expect, registry_dir).await?;
            harness::print_report(&report)?;
        }
        Command::Raw {
            brokers,
            group,
            decode,
            commit_interval_ms,
            bulk,
            expect,
        } => {
            let report = tokio::task::spawn_blocking(move || {
                harness::raw_contender(
                    &brokers,
                    &group,
                    bulk,
                    expect,
                    decode,
                    Duration::from_millis(commit_interval_ms.max(1)),
                )
            })
            .await??;
            harness::print_report(&report)?;
        }
        Command::Table { results } => {
            let text =
                std::fs::read_to_string(&results).with_context(|| results.display().to_string())?;
            let rows: Vec<RunResult> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()?;
            print!("{}", ow_bench::report::markdown(&rows));
        }
    }
    Ok(())
}
