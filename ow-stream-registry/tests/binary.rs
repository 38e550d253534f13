//! The `ow-registry` binary as a deployment runs it: it prints its URL, serves Confluent's
//! endpoints to plain HTTP and to `ow-stream-core`'s Avro serdes, refuses a second process on
//! its state directory, stops cleanly on SIGTERM and SIGINT, and serves the same schemas under
//! the same ids after a restart.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ow_stream_core::serde::{AvroSerde, Serde, SerdeContext, SerdeError, deserialize_loading};
use ow_stream_registry::SchemaRegistry;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

/// Every setting the binary reads from the environment, so the test's own environment cannot
/// change what it runs.
const SETTINGS: &[&str] = &["OW_LISTEN", "OW_STATE_DIR", "RUST_LOG"];

const PLAYER: &str = r#"{"type":"record","name":"Player","namespace":"ow.test","fields":[
    {"name":"player_id","type":"string"},
    {"name":"level","type":"int"}]}"#;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Player {
    player_id: String,
    level: i32,
}

fn command(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ow-registry"));
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", "127.0.0.1:0", "--log", "warn"]);
    command
}

/// The running binary and the URL it printed; killed if the test ends without stopping it.
struct Registry {
    child: Option<Child>,
    url: String,
}

impl Registry {
    fn start(state: &Path) -> Registry {
        let mut child = command(state).stdout(Stdio::piped()).spawn().unwrap();
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
        let mut line = |what: &str| match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("ow-registry printed no {what}: {e}")
            }
        };
        let url = line("URL");
        let url = url
            .strip_prefix("ow-stream schema registry: ")
            .unwrap_or_else(|| panic!("first line: {url}"))
            .to_owned();
        let dir = line("state directory");
        let dir = dir
            .strip_prefix("state directory:")
            .unwrap_or_else(|| panic!("second line: {dir}"))
            .trim()
            .to_owned();
        let expected = state.join("schema-registry").canonicalize().unwrap();
        assert_eq!(Path::new(&dir), expected);
        Registry {
            child: Some(child),
            url,
        }
    }

    async fn get(&self, path: &str) -> Json {
        let response = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Json) -> Json {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("content-type", CONTENT_TYPE)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Sends `signal` (`INT` or `TERM`) and waits for the process to end.
    fn stop(mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ow-registry still running 30 s after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn schemas_keep_their_ids_across_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let registry = Registry::start(state.path());

    let registered = registry
        .post(
            "/subjects/ow.players-value/versions",
            &json!({ "schema": PLAYER }),
        )
        .await;
    let id = registered["id"].as_u64().unwrap();
    // The same schema again: the same id.
    let again = registry
        .post(
            "/subjects/ow.players-value/versions",
            &json!({ "schema": PLAYER }),
        )
        .await;
    assert_eq!(again["id"].as_u64(), Some(id));
    let fetched = registry.get(&format!("/schemas/ids/{id}")).await;
    let text = fetched["schema"].as_str().unwrap();
    let parsed = apache_avro::Schema::parse_str(text).unwrap();
    assert_eq!(parsed, apache_avro::Schema::parse_str(PLAYER).unwrap());
    assert_eq!(registry.get("/subjects").await, json!(["ow.players-value"]));

    // One registry process per state directory.
    let second = command(state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");

    let status = registry.stop("TERM");
    assert!(status.success(), "exit after SIGTERM: {status}");

    // A new process on the same directory (on another port) serves the same schema, id and
    // subject, and SIGINT stops it as cleanly.
    let registry = Registry::start(state.path());
    assert_eq!(registry.get(&format!("/schemas/ids/{id}")).await, fetched);
    assert_eq!(registry.get("/subjects").await, json!(["ow.players-value"]));
    let latest = registry
        .get("/subjects/ow.players-value/versions/latest")
        .await;
    assert_eq!(latest["id"].as_u64(), Some(id));
    assert_eq!(latest["version"], json!(1));
    let after_restart = registry
        .post(
            "/subjects/ow.players-value/versions",
            &json!({ "schema": PLAYER }),
        )
        .await;
    assert_eq!(after_restart["id"].as_u64(), Some(id));
    let status = registry.stop("INT");
    assert!(status.success(), "exit after SIGINT: {status}");
}

/// The client side against the binary: `ow-stream-core`'s Avro serde over `http://`.
#[tokio::test]
async fn avro_serde_round_trips_through_the_binary() {
    let state = tempfile::tempdir().unwrap();
    let registry = Registry::start(state.path());
    let ctx = SerdeContext::value("ow.players");
    let ada = Player {
        player_id: "ada-1".into(),
        level: 7,
    };

    let writer =
        AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&registry.url).unwrap(), PLAYER)
            .unwrap();
    writer.prepare(ctx).await.unwrap();
    let bytes = writer.serialize(ctx, &ada).unwrap();

    // A reader on a client of its own knows no schema until it loads the writer's.
    let reader =
        AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&registry.url).unwrap(), PLAYER)
            .unwrap();
    assert!(matches!(
        reader.deserialize(ctx, &bytes),
        Err(SerdeError::SchemaNotLoaded { .. })
    ));
    assert_eq!(
        deserialize_loading(&reader, ctx, &bytes).await.unwrap(),
        ada
    );

    // The id in the record's header is the one the registry gave the subject.
    let latest = registry
        .get("/subjects/ow.players-value/versions/latest")
        .await;
    let id = u32::try_from(latest["id"].as_u64().unwrap()).unwrap();
    assert_eq!(bytes[1..5], id.to_be_bytes());
    let status = registry.stop("TERM");
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_ow-registry"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "--listen",
        "OW_LISTEN",
        "127.0.0.1:8081",
        "--state-dir",
        "OW_STATE_DIR",
        "--log",
        "RUST_LOG",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}
