//! The ow-producer binary: answers player requests (`ow.player-requests`) with OverFast
//! fetches written to `ow.raw.player-profiles`, and refreshes tracked players, until it receives
//! Ctrl-C or SIGTERM. Every setting is a flag with an environment variable
//! (`ow-producer --help`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ow_cli::StreamsArgs;
use ow_producer::ProducerConfig;
use ow_producer::cli::ProducerArgs;

/// Fetches Overwatch 2 player profiles from the OverFast API for every request on
/// ow.player-requests and writes one raw event per fetch to ow.raw.player-profiles; refreshes
/// the players people look at on a schedule that respects OverFast's cache.
#[derive(Parser, Debug)]
#[command(name = "ow-producer", version)]
struct Args {
    #[command(flatten)]
    streams: StreamsArgs,

    #[command(flatten)]
    producer: ProducerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ow_cli::init_logging(&args.streams.log);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("ow-producer stopped: {}", report(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once (the producer's messages already quote theirs).
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = ProducerConfig::from_args(&args.streams, &args.producer)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(ow_producer::run(config, ow_cli::shutdown_signal()))?;
    Ok(())
}
