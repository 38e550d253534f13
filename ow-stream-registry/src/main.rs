//! The ow-registry binary: a Confluent-compatible schema registry whose schemas are persisted in
//! a state directory, for deployments of several processes without Confluent's registry. It
//! serves until it receives Ctrl-C or SIGTERM. Every setting is a flag with an environment
//! variable (`ow-registry --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use ow_stream_registry::SchemaRegistry;
use ow_stream_registry::server::RegistryServer;

/// Serves a Confluent-compatible schema registry (POST /subjects/SUBJECT/versions,
/// GET /schemas/ids/ID, GET /subjects, compatibility checks and levels) whose schemas are
/// persisted in DIR/schema-registry, so ids stay valid across restarts. Point the
/// stages at it with --schema-registry-url http://ADDR.
#[derive(Parser, Debug)]
#[command(name = "ow-registry", version)]
struct Args {
    /// Address to listen on (port 0: any free port; the URL is printed).
    #[arg(
        long,
        env = "OW_LISTEN",
        default_value = "127.0.0.1:8081",
        value_name = "ADDR"
    )]
    listen: SocketAddr,

    /// State directory: the schemas live in its `schema-registry` directory, which one registry
    /// process at a time may open.
    #[arg(
        long,
        env = "OW_STATE_DIR",
        default_value = "./.ow-state",
        value_name = "DIR"
    )]
    state_dir: PathBuf,

    /// Log filter (`tracing` env-filter syntax, e.g. `info,ow_stream_registry=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("ow-registry stopped: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let dir = args.state_dir.join("schema-registry");
    let registry = SchemaRegistry::open_dir(&dir)
        .with_context(|| format!("cannot open the schema registry in {}", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let server = RegistryServer::spawn(listener, registry.clone())
            .context("cannot start the registry server")?;
        // The two lines scripts and tests read, as `ow-web` prints its dashboard's.
        println!("ow-stream schema registry: {}", server.url());
        println!("state directory:           {}", registry.location());
        tracing::info!(addr = %server.local_addr(), "schema registry listening");
        shutdown_signal().await;
        server
            .shutdown()
            .await
            .context("the registry server failed")?;
        tracing::info!("schema registry stopped");
        Ok(())
    })
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
