//! A schema registry that is away when a stream thread needs a schema it has not loaded yet,
//! on both backends: the record is not bad, so it is neither dead-lettered nor skipped. The
//! thread waits for the registry (`StreamsConfig::schema_registry_wait`) and goes on when it
//! is back; when it stays away longer, the application fails and says why.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use apache_avro::AvroSchema;
use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::{Streams, StreamsState};
use ow_stream_core::serde::{AvroSerde, JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic};
use ow_stream_registry::server::RegistryServer;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "ow.test")]
struct Score {
    player: String,
    points: i64,
}

const RECORDS: i64 = 10;

/// A registry server over the in-process registry `scope`, on `addr` (port 0: any).
async fn serve(scope: &str, addr: SocketAddr) -> RegistryServer {
    let listener = TcpListener::bind(addr).await.unwrap();
    RegistryServer::spawn(listener, SchemaRegistry::mock(scope)).unwrap()
}

fn scores(registry: &SchemaRegistry) -> Topic<String, Score> {
    Topic::new(
        "scores",
        StringSerde,
        AvroSerde::<Score>::derived(registry).unwrap(),
    )
}

/// `scores` written while the registry is up, then the registry stopped: a streams app with
/// a fresh registry client (no schema cached) starts reading them. Returns the app and where
/// the registry listened.
async fn start_with_registry_gone(
    env: &TestEnv,
    scope: &str,
    app: &str,
    wait: Duration,
    dir: &std::path::Path,
) -> (Streams, SocketAddr) {
    SchemaRegistry::drop_mock_scope(scope);
    env.create("scores", 2).await;
    env.create("points", 2).await;
    env.create_internal(&format!("{app}-dlq"), 1);
    let server = serve(scope, "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr();
    let writer = SchemaRegistry::from_url(&server.url()).unwrap();
    let records: Vec<(String, Score, i64)> = (0..RECORDS)
        .map(|i| {
            let player = format!("p{i}");
            let score = Score {
                player: player.clone(),
                points: i * 10,
            };
            (player, score, 1_000 + i)
        })
        .collect();
    produce_at(env, &scores(&writer), &records).await;
    server.shutdown().await.unwrap();

    let reader = SchemaRegistry::from_url(&format!("http://{addr}")).unwrap();
    let b = StreamsBuilder::new();
    b.stream(&scores(&reader))
        .map_values(|s: Score| s.points)
        .to(&Topic::<String, i64>::new(
            "points",
            StringSerde,
            JsonSerde::new(),
        ));
    let config = env
        .config(app, dir)
        .with_schema_registry(format!("http://{addr}"))
        .with_schema_registry_wait(wait);
    let mut streams = Streams::new(b.build().unwrap(), config).unwrap();
    streams.start().await.unwrap();
    (streams, addr)
}

on_both_backends!(a_record_waits_for_the_registry_instead_of_going_to_the_dead_letter_topic);

async fn a_record_waits_for_the_registry_instead_of_going_to_the_dead_letter_topic(env: TestEnv) {
    let scope = if env.is_local() {
        "registry-wait-local"
    } else {
        "registry-wait-kafka"
    };
    let app = "registry-wait";
    let dir = tempfile::tempdir().unwrap();
    let (streams, addr) =
        start_with_registry_gone(&env, scope, app, Duration::from_secs(60), dir.path()).await;

    // The registry is away for two seconds: the thread waits on the first record.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(streams.state(), StreamsState::Running);
    assert!(env.read_all("points").await.is_empty());
    let server = serve(scope, addr).await;

    let mut points = Vec::new();
    for _ in 0..300 {
        points = env.read_all("points").await;
        if points.len() as i64 >= RECORDS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(points.len() as i64, RECORDS, "every record, once");
    let mut values: Vec<i64> = points
        .iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..RECORDS).map(|i| i * 10).collect::<Vec<_>>());
    assert!(env.read_all(&format!("{app}-dlq")).await.is_empty());
    let m = streams.metrics();
    assert_eq!(m.deserialization_errors, 0);
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().await.unwrap();
    server.shutdown().await.unwrap();
    SchemaRegistry::drop_mock_scope(scope);
}

on_both_backends!(a_registry_away_longer_than_the_wait_fails_the_application_clearly);

async fn a_registry_away_longer_than_the_wait_fails_the_application_clearly(env: TestEnv) {
    let scope = if env.is_local() {
        "registry-gone-local"
    } else {
        "registry-gone-kafka"
    };
    let app = "registry-gone";
    let dir = tempfile::tempdir().unwrap();
    let (streams, _) =
        start_with_registry_gone(&env, scope, app, Duration::from_secs(1), dir.path()).await;
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
    let failure = streams.failure().unwrap();
    assert!(
        failure.contains("cannot reach schema registry"),
        "{failure}"
    );
    // Nothing was taken for bad data.
    assert!(env.read_all(&format!("{app}-dlq")).await.is_empty());
    assert!(env.read_all("points").await.is_empty());
    assert_eq!(streams.metrics().deserialization_errors, 0);
    assert!(streams.close().await.is_err());
    SchemaRegistry::drop_mock_scope(scope);
}
