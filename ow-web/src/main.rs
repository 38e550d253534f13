//! The `ow-web` binary: flags and environment → [`ow_web::WebConfig`] → [`ow_web::run`].
//!
//! With `--brokers`/`OW_BROKERS` the web runs as a stage of its own; without, it runs the
//! embedded one-process stack (see [`ow_web::run`]).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ow_web::WebConfig;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = WebConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&config.streams.log).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ow-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: WebConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        ow_web::run(config, shutdown_signal())
            .await
            .context("ow-web stopped with an error")
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
