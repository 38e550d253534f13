//! What every binary does around its stage: logs to stderr with the `--log` filter, and stops
//! on Ctrl-C or SIGTERM.

/// Sends `tracing` logs to stderr, filtered by `filter` (the `--log` flag / `RUST_LOG`, in
/// `tracing`'s env-filter syntax; a filter that does not parse falls back to `info`). Stdout
/// stays free for what a binary prints for scripts (the dashboard's URL, say). Call it once,
/// first thing in `main`.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: the shutdown signal a stage's `run` drains and
/// commits on. A signal that cannot be listened for is logged and never fires (the other still
/// does).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
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
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
