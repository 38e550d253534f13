//! The ow-processor binary: reads `ow.raw.player-profiles` and writes the pipeline's four
//! outputs until it receives Ctrl-C or SIGTERM. Every setting is a flag with an environment
//! variable (`ow-processor --help`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ow_cli::StreamsArgs;
use ow_processor::ProcessorConfig;

/// Turns raw OverFast answers (ow.raw.player-profiles) into per-category stats, the player
/// table, deltas between snapshots and daily sums.
#[derive(Parser, Debug)]
#[command(name = "ow-processor", version)]
struct Args {
    /// Shared settings, `--threads` and `--topic-prefix` included.
    #[command(flatten)]
    streams: StreamsArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ow_cli::init_logging(&args.streams.log);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("ow-processor stopped: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = ProcessorConfig::from_args(&args.streams)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(ow_processor::run(config, ow_cli::shutdown_signal()))?;
    Ok(())
}
