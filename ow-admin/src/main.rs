//! The ow-admin binary: `ow-admin create-topics --manifest infra/topics.txt` creates the
//! pipeline's topics on the broker `--brokers` names (`ow-admin --help`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ow_admin::Manifest;
use ow_cli::StreamsArgs;
use ow_stream_core::admin::Admin;

/// Administration of an ow-stream deployment.
#[derive(Parser, Debug)]
#[command(name = "ow-admin", version)]
struct Args {
    /// Shared settings: `--brokers`, and `--kafka-config` for TLS/SASL.
    #[command(flatten)]
    streams: StreamsArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Waits until the broker answers, creates every topic of the manifest that does not exist
    /// (with its configs, and `--topic-prefix` before its name), checks each one's partition
    /// count, and prints one line per topic.
    CreateTopics {
        /// The topic manifest (`NAME PARTITIONS [KEY=VALUE ...]` per line).
        #[arg(long, env = "OW_TOPIC_MANIFEST", default_value = "infra/topics.txt")]
        manifest: PathBuf,
        /// One partition count for every topic instead of the manifest's.
        #[arg(long, env = "OW_PARTITIONS")]
        partitions: Option<i32>,
        /// How long to wait for the broker to answer.
        #[arg(long, env = "OW_BROKER_WAIT", default_value = "60s", value_parser = ow_cli::parse_duration)]
        wait: Duration,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    ow_cli::init_logging(&args.streams.log);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ow-admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = args.streams.to_config("ow-admin")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    match args.command {
        Command::CreateTopics {
            manifest,
            partitions,
            wait,
        } => runtime.block_on(async {
            let manifest = Manifest::read(&manifest)?.with_prefix(&args.streams.topic_prefix);
            let admin = Admin::new(&config)?;
            ow_admin::wait_until_answering(&admin, wait).await?;
            for topic in ow_admin::ensure(&admin, &manifest, partitions).await? {
                let configs: Vec<String> = topic
                    .configs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{} {} partitions {}{}",
                    topic.name,
                    topic.partitions,
                    if topic.existed { "existed" } else { "created" },
                    if configs.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", configs.join(" "))
                    }
                );
            }
            Ok(())
        }),
    }
}
