//! The README's first command as a user runs it: the `ow-web` binary with no broker configured
//! runs the whole pipeline in one process, prints the dashboard URL and the state directory,
//! looks a player up end to end, stops cleanly on Ctrl-C (SIGINT) and SIGTERM, and finds its
//! data again after a restart.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/openmetrics.rs"]
mod openmetrics;

const PLAYER: &str = "TeKrop-2217";

/// Every setting the binary reads from the environment, so the test's own environment cannot
/// change what it runs.
const SETTINGS: &[&str] = &[
    "OW_BROKERS",
    "OW_SCHEMA_REGISTRY_URL",
    "OW_STATE_DIR",
    "OW_COMMIT_INTERVAL_MS",
    "OW_KAFKA_CONFIG",
    "OW_TOPIC_PREFIX",
    "OW_STREAM_THREADS",
    "OW_LISTEN",
    "OW_OVERFAST_URL",
    "OW_REPLAY",
    "OW_RECORD",
    "OW_TRACK",
    "OW_TRACK_FILE",
    "RUST_LOG",
];

/// The running binary and the address it printed.
struct Web {
    child: Child,
    url: String,
    state_dir: String,
}

impl Web {
    fn start(state: &Path, replay: &Path) -> Web {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ow-web"));
        for name in SETTINGS {
            command.env_remove(name);
        }
        let mut child = command
            .arg("--state-dir")
            .arg(state)
            .arg("--replay")
            .arg(replay)
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .args(["--commit-interval-ms", "200"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Lines of stdout, read on a thread so a binary that says nothing cannot hang the test.
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let line = |what: &str| {
            lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("ow-web printed no {what}: {e}"))
        };
        let url = line("URL");
        let url = url
            .strip_prefix("ow-stream dashboard: ")
            .unwrap_or_else(|| panic!("first line: {url}"))
            .trim_end_matches('/')
            .to_owned();
        let state_dir = line("state directory");
        let state_dir = state_dir
            .strip_prefix("state directory:")
            .unwrap_or_else(|| panic!("second line: {state_dir}"))
            .trim()
            .to_owned();
        Web {
            child,
            url,
            state_dir,
        }
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Sends `signal` (`INT` or `TERM`) and waits for the process to end.
    fn stop(mut self, signal: &str) -> ExitStatus {
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ow-web still running 60 s after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` over HTTP: one OpenMetrics document with the dashboard's metrics and its
/// streams app's, which has processed the look-up by now.
async fn scrape_metrics(web: &Web) {
    let response = reqwest::get(format!("{}/metrics", web.url)).await.unwrap();
    assert!(response.status().is_success());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "one document: {text}");
    let samples = openmetrics::parse(&text);
    let total = |name: &str, labels: &[(&str, &str)]| openmetrics::total(&samples, name, labels);
    assert!(
        total("ow_web_http_requests_total", &[("route", "/players/{id}")]) >= 1.0,
        "the player page was counted: {text}"
    );
    assert!(total("ow_web_player_requests_total", &[]) >= 1.0, "{text}");
    assert!(
        total("ow_stream_process_total", &[]) >= 1.0,
        "the streams app processed the look-up: {text}"
    );
    assert!(total("ow_stream_commit_total", &[]) >= 1.0, "{text}");
    assert!(
        total("ow_stream_stream_threads_alive", &[]) >= 1.0,
        "{text}"
    );
}

async fn wait_for_stats(web: &Web) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = web.get_json(&format!("/api/players/{PLAYER}/status")).await;
        if status["has_stats"] == Value::Bool(true) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no stats for {PLAYER} after 120 s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The player's stats once they stop changing: a snapshot's categories are separate records, and
/// with the embedded stack's 20 ms commits the web can show some of them before the rest.
/// Settled means two reads a second apart agree.
async fn settled_stats(web: &Web) -> Value {
    wait_for_stats(web).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = web.get_json(&format!("/api/players/{PLAYER}")).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = web.get_json(&format!("/api/players/{PLAYER}")).await;
        if now == last {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the stats of {PLAYER} still change after 120 s"
        );
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_looks_a_player_up_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A copy of the shipped samples: the player's file goes away before the restart, so what
    // the restarted stack shows can only come from its own state directory.
    let replay = dir.path().join("replay");
    std::fs::create_dir(&replay).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/overfast");
    for entry in std::fs::read_dir(&samples).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), replay.join(entry.file_name())).unwrap();
    }

    let web = Web::start(&state, &replay);
    assert_eq!(
        Path::new(&web.state_dir),
        state.canonicalize().unwrap(),
        "the printed state directory"
    );
    let health = reqwest::get(format!("{}/healthz", web.url)).await.unwrap();
    assert!(health.status().is_success());
    // A player the stack has never seen: the page asks the pipeline for it.
    let page = reqwest::get(format!("{}/players/{PLAYER}", web.url))
        .await
        .unwrap();
    assert!(page.status().is_success());
    let before = settled_stats(&web).await;
    assert_eq!(before["profile"]["username"], "TeKrop");
    let games = |data: &Value| {
        data["categories"]["platforms"]["pc"]["competitive"]["heroes"]["all-heroes"]["game"]
            ["stats"]["games_played"]["value"]
            .as_f64()
    };
    assert_eq!(games(&before), Some(5.0));
    scrape_metrics(&web).await;
    let status = web.stop("INT");
    assert!(status.success(), "Ctrl-C: {status}");

    std::fs::remove_file(replay.join(format!("{PLAYER}.json"))).unwrap();
    let web = Web::start(&state, &replay);
    let after = settled_stats(&web).await;
    assert_eq!(after["profile"]["username"], "TeKrop");
    assert_eq!(games(&after), Some(5.0));
    assert_eq!(after["categories"], before["categories"]);
    let status = web.stop("TERM");
    assert!(status.success(), "SIGTERM: {status}");
}
