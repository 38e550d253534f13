//! The `ow-web` binary: flags and environment → [`ow_web::WebConfig`] → [`ow_web::run`].
//!
//! With `--brokers`/`OW_BROKERS` the web runs as a stage of its own; without, it runs the
//! embedded one-process stack (see [`ow_web::run`]).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ow_web::WebConfig;

fn main() -> ExitCode {
    let config = WebConfig::parse();
    ow_cli::init_logging(&config.streams.log);
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
        ow_web::run(config, ow_cli::shutdown_signal())
            .await
            .context("ow-web stopped with an error")
    })
}
