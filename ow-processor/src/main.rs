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
    let filter = tracing_subscriber::EnvFilter::try_new(&args.streams.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    runtime.block_on(ow_processor::run(config, shutdown_signal()))?;
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
