//! The HTTP registry client against the Confluent-compatible server, both in this process: the
//! client goes through `schema_registry_converter` exactly as against a real Schema Registry.

use apache_avro::Schema;
use ow_stream_core::serde::{AvroSerde, Serde, SerdeContext, SerdeError, deserialize_loading};
use ow_stream_registry::server::RegistryServer;
use ow_stream_registry::{RegistryError, SchemaRegistry};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;

const PLAYER_V1: &str = r#"{"type":"record","name":"Player","namespace":"ow.test","fields":[
    {"name":"player_id","type":"string"},
    {"name":"level","type":"int"}]}"#;
/// V1 with docs and other whitespace: the same schema for the registry.
const PLAYER_V1_DOCS: &str = r#"{
    "type": "record", "name": "Player", "namespace": "ow.test", "doc": "a player",
    "fields": [
        {"name": "player_id", "type": "string", "doc": "battletag"},
        {"name": "level", "type": "int"}
    ]
}"#;
/// A field added without a default: not BACKWARD compatible with V1.
const PLAYER_BAD: &str = r#"{"type":"record","name":"Player","namespace":"ow.test","fields":[
    {"name":"player_id","type":"string"},
    {"name":"level","type":"int"},
    {"name":"rank","type":"string"}]}"#;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Player {
    player_id: String,
    level: i32,
}

fn schema(s: &str) -> Schema {
    Schema::parse_str(s).expect("test schemas parse")
}

/// A server over a fresh `mock://` scope, and an HTTP client on it.
async fn start(scope: &str) -> (RegistryServer, SchemaRegistry) {
    SchemaRegistry::drop_mock_scope(scope);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let server = RegistryServer::spawn(listener, SchemaRegistry::mock(scope)).expect("server");
    let client = SchemaRegistry::from_url(&server.url()).expect("server url is valid");
    assert!(!client.is_in_process());
    (server, client)
}

#[tokio::test]
async fn register_fetch_latest_subjects_and_refusal() {
    let (server, client) = start("http-client").await;

    let id = client
        .register("ow.players-value", &schema(PLAYER_V1))
        .await
        .unwrap();
    assert_eq!(id, 1);
    // Same schema, whatever its spelling: same id, no new version.
    assert_eq!(
        client
            .register("ow.players-value", &schema(PLAYER_V1_DOCS))
            .await
            .unwrap(),
        1
    );
    // Another subject, another schema.
    assert_eq!(
        client
            .register("ow.players-key", &Schema::String)
            .await
            .unwrap(),
        2
    );

    // A fresh client has an empty cache: this goes over HTTP.
    let fresh = SchemaRegistry::from_url(&server.url()).unwrap();
    assert!(fresh.cached(1).is_none());
    assert!(fresh.schema_now(1).is_none());
    let fetched = fresh.schema(1).await.unwrap();
    assert_eq!(fetched.id(), 1);
    assert_eq!(fetched.name(), "ow.test.Player");
    assert_eq!(
        fetched.schema().canonical_form(),
        schema(PLAYER_V1).canonical_form()
    );
    // Now it is cached.
    assert_eq!(fresh.cached(1).unwrap().id(), 1);

    let latest = fresh.latest("ow.players-value").await.unwrap();
    assert_eq!(
        (latest.subject.as_str(), latest.version, latest.id()),
        ("ow.players-value", 1, 1)
    );
    let v1 = fresh.version("ow.players-value", 1).await.unwrap();
    assert_eq!(v1.id(), 1);
    assert_eq!(fresh.versions("ow.players-value").await.unwrap(), [1]);
    let mut subjects = fresh.subjects().await.unwrap();
    subjects.sort();
    assert_eq!(subjects, ["ow.players-key", "ow.players-value"]);

    // Lookups.
    let found = fresh
        .lookup("ow.players-value", &schema(PLAYER_V1_DOCS))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.version, found.id()), (1, 1));
    assert!(
        fresh
            .lookup("ow.players-value", &Schema::Long)
            .await
            .unwrap()
            .is_none()
    );

    // Not found errors are typed.
    assert!(matches!(
        fresh.schema(999).await,
        Err(RegistryError::SchemaNotFound { id: 999 })
    ));
    assert!(matches!(
        fresh.latest("nope-value").await,
        Err(RegistryError::SubjectNotFound { subject }) if subject == "nope-value"
    ));
    assert!(matches!(
        fresh.version("ow.players-value", 5).await,
        Err(RegistryError::VersionNotFound { subject, version: 5 }) if subject == "ow.players-value"
    ));

    // An incompatible schema is refused, naming the subject.
    assert!(matches!(
        fresh
            .check_compatibility("ow.players-value", &schema(PLAYER_BAD))
            .await,
        Err(RegistryError::Incompatible { .. })
    ));
    let err = fresh
        .register("ow.players-value", &schema(PLAYER_BAD))
        .await
        .unwrap_err();
    match &err {
        RegistryError::Incompatible { subject, reason } => {
            assert_eq!(subject, "ow.players-value");
            assert!(
                reason.contains("field rank is new in the reader schema and has no default"),
                "{reason}"
            );
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "schema is incompatible with subject ow.players-value: the new schema cannot read data \
         written with version 1: field rank is new in the reader schema and has no default"
    );
    assert_eq!(fresh.versions("ow.players-value").await.unwrap(), [1]);

    // Compatibility levels are only set on in-process registries.
    assert!(matches!(
        fresh.compatibility(None).await,
        Err(RegistryError::Unsupported { .. })
    ));

    server.shutdown().await.unwrap();
    SchemaRegistry::drop_mock_scope("http-client");
}

#[tokio::test]
async fn subjects_with_slashes_are_percent_encoded() {
    let (_server, client) = start("http-slashes").await;
    let id = client
        .register("team/a-value", &Schema::Long)
        .await
        .unwrap();
    assert_eq!(client.latest("team/a-value").await.unwrap().id(), id);
    assert_eq!(client.subjects().await.unwrap(), ["team/a-value"]);
    assert_eq!(client.versions("team/a-value").await.unwrap(), [1]);
    client
        .check_compatibility("team/a-value", &Schema::Long)
        .await
        .unwrap();
    assert!(matches!(
        client.check_compatibility("team/a-value", &Schema::String).await,
        Err(RegistryError::Incompatible { subject, .. }) if subject == "team/a-value"
    ));
    assert_eq!(
        client
            .lookup("team/a-value", &Schema::Long)
            .await
            .unwrap()
            .unwrap()
            .id(),
        id
    );
    SchemaRegistry::drop_mock_scope("http-slashes");
}

#[tokio::test]
async fn unreachable_registry_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = SchemaRegistry::from_url(&url).unwrap();
    match client.schema(1).await {
        Err(RegistryError::Unreachable { url: u, .. }) => assert_eq!(u, url),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

/// The raw HTTP answers: status, Confluent error code and message.
#[tokio::test]
async fn error_codes_and_bodies() {
    let (server, client) = start("http-raw").await;
    client
        .register("players-value", &schema(PLAYER_V1))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = server.url();

    async fn answer(response: reqwest::Response) -> (u16, String, Json) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, response.json().await.unwrap())
    }
    const CT: &str = "application/vnd.schemaregistry.v1+json";

    // 40401: unknown subject.
    let got = answer(
        http.get(format!("{base}/subjects/nope/versions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got,
        (
            404,
            CT.into(),
            json!({"error_code": 40401, "message": "subject nope not found"})
        )
    );
    // 40402: unknown version.
    let got = answer(
        http.get(format!("{base}/subjects/players-value/versions/7"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got,
        (
            404,
            CT.into(),
            json!({"error_code": 40402, "message": "subject players-value has no version 7"})
        )
    );
    // 40403: unknown id (and `?deleted=true` is accepted).
    let got = answer(
        http.get(format!("{base}/schemas/ids/42?deleted=true"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got,
        (
            404,
            CT.into(),
            json!({"error_code": 40403, "message": "schema id 42 not found"})
        )
    );
    // 409: incompatible.
    let got = answer(
        http.post(format!("{base}/subjects/players-value/versions"))
            .header(reqwest::header::CONTENT_TYPE, CT)
            .body(json!({ "schema": PLAYER_BAD }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((got.0, got.2["error_code"].clone()), (409, json!(409)));
    assert_eq!(
        got.2["message"],
        "schema is incompatible with subject players-value: the new schema cannot read data \
         written with version 1: field rank is new in the reader schema and has no default"
    );
    // 42201: not an Avro schema.
    let got = answer(
        http.post(format!("{base}/subjects/players-value/versions"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "schema": "{\"type\": \"recrod\"}" }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((got.0, got.2["error_code"].clone()), (422, json!(42201)));
    assert!(
        got.2["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid schema: "),
        "{got:?}"
    );

    // Successful answers have the same content type and Confluent's shapes.
    let got = answer(
        http.get(format!("{base}/subjects/players-value/versions/latest"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((got.0, got.1.as_str()), (200, CT));
    assert_eq!(
        (&got.2["subject"], &got.2["id"], &got.2["version"]),
        (&json!("players-value"), &json!(1), &json!(1))
    );
    let registered: Json = serde_json::from_str(got.2["schema"].as_str().unwrap()).unwrap();
    assert_eq!(registered["name"], "Player");
    let got = answer(
        http.post(format!("{base}/subjects/players-value"))
            .body(json!({ "schema": PLAYER_V1_DOCS }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (got.0, &got.2["id"], &got.2["version"]),
        (200, &json!(1), &json!(1))
    );
    let got = answer(
        http.post(format!("{base}/subjects/players-value"))
            .body(json!({ "schema": "\"long\"" }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((got.0, got.2["error_code"].clone()), (404, json!(40403)));
    SchemaRegistry::drop_mock_scope("http-raw");
}

#[tokio::test]
async fn avro_serde_over_http_prepares_and_loads() {
    let (server, client) = start("http-serde").await;
    let ctx = SerdeContext::value("ow.players");
    let player = Player {
        player_id: "TeKrop-2217".into(),
        level: 42,
    };

    let writer = AvroSerde::<Player>::from_avsc(&client, PLAYER_V1).unwrap();
    // Over HTTP, nothing is registered behind the caller's back.
    match writer.serialize(ctx, &player) {
        Err(SerdeError::NotPrepared { subject }) => assert_eq!(subject, "ow.players-value"),
        other => panic!("expected not prepared, got {other:?}"),
    }
    writer.prepare(ctx).await.unwrap();
    let bytes = writer.serialize(ctx, &player).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
    // The writer knows its own schema: it decodes without loading anything.
    assert_eq!(writer.deserialize(ctx, &bytes).unwrap(), player);

    // A serde on a fresh client has never seen id 1.
    let fresh = SchemaRegistry::from_url(&server.url()).unwrap();
    let reader = AvroSerde::<Player>::from_avsc(&fresh, PLAYER_V1_DOCS).unwrap();
    match reader.deserialize(ctx, &bytes) {
        Err(SerdeError::SchemaNotLoaded { id }) => assert_eq!(id, 1),
        other => panic!("expected schema not loaded, got {other:?}"),
    }
    reader.load_schema(1).await.unwrap();
    assert_eq!(reader.deserialize(ctx, &bytes).unwrap(), player);

    // deserialize_loading does the same dance in one call.
    let other = AvroSerde::<Player>::from_avsc(
        &SchemaRegistry::from_url(&server.url()).unwrap(),
        PLAYER_V1,
    )
    .unwrap();
    assert_eq!(
        deserialize_loading(&other, ctx, &bytes).await.unwrap(),
        player
    );

    // Bytes naming an id the registry does not have: a registry error once loading is tried.
    let mut unknown = bytes.clone();
    unknown[4] = 77;
    assert!(matches!(
        deserialize_loading(&other, ctx, &unknown).await,
        Err(SerdeError::Registry(RegistryError::SchemaNotFound {
            id: 77
        }))
    ));

    // The topic browser's view of the record, over HTTP.
    assert_eq!(
        fresh.decode_json(&bytes).await.unwrap(),
        json!({"player_id": "TeKrop-2217", "level": 42})
    );

    // Preparing an incompatible serde fails with the registry's reason.
    let bad = AvroSerde::<Player>::from_avsc(&client, PLAYER_BAD).unwrap();
    assert!(matches!(
        bad.prepare(ctx).await,
        Err(SerdeError::Registry(RegistryError::Incompatible { subject, .. })) if subject == "ow.players-value"
    ));
    SchemaRegistry::drop_mock_scope("http-serde");
}

#[tokio::test]
async fn a_directory_registry_served_over_http_keeps_ids_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server =
            RegistryServer::spawn(listener, SchemaRegistry::open_dir(dir.path()).unwrap()).unwrap();
        let client = SchemaRegistry::from_url(&server.url()).unwrap();
        client.register("a-value", &Schema::Long).await.unwrap();
        let id = client
            .register("b-value", &schema(PLAYER_V1))
            .await
            .unwrap();
        server.shutdown().await.unwrap();
        id
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server =
        RegistryServer::spawn(listener, SchemaRegistry::open_dir(dir.path()).unwrap()).unwrap();
    let client = SchemaRegistry::from_url(&server.url()).unwrap();
    assert_eq!(client.schema(id).await.unwrap().name(), "ow.test.Player");
    assert_eq!(
        client
            .register("b-value", &schema(PLAYER_V1_DOCS))
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        client.register("c-value", &Schema::String).await.unwrap(),
        id + 1
    );
}

/// Synchronous code that must load or register a schema — the test driver's tasks and
/// interactive queries — works on a current-thread runtime, where waiting on the runtime from
/// inside it is impossible (`block_in_place` panics there): the schema is fetched on a helper
/// thread.
#[tokio::test(flavor = "current_thread")]
async fn sync_reads_load_schemas_on_a_current_thread_runtime() {
    use ow_stream_core::dsl::Materialized;
    use ow_stream_core::serde::StringSerde;
    use ow_stream_core::testing::TopologyTestDriver;
    use ow_stream_core::{StreamsBuilder, Topic};

    // The server runs on a runtime of its own: this one is blocked while a schema loads.
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async {
            SchemaRegistry::drop_mock_scope("current-thread");
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free loopback port");
            let server = RegistryServer::spawn(listener, SchemaRegistry::mock("current-thread"))
                .expect("server");
            url_tx.send(server.url()).expect("the test waits");
            let _ = stopped.await;
            server.shutdown().await.expect("clean shutdown");
        });
    });
    let url = url_rx.recv().expect("the server's url");

    // A writer registers its schema and writes a record.
    let ada = Player {
        player_id: "ada-1".into(),
        level: 7,
    };
    let writer =
        AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&url).unwrap(), PLAYER_V1)
            .unwrap();
    let ctx = SerdeContext::value("players");
    writer.prepare(ctx).await.unwrap();
    let bytes = writer.serialize(ctx, &ada).unwrap();

    // A reader over a fresh client knows no schema yet.
    let reader =
        AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&url).unwrap(), PLAYER_V1)
            .unwrap();
    assert!(matches!(
        reader.deserialize(ctx, &bytes),
        Err(SerdeError::SchemaNotLoaded { .. })
    ));
    let topic: Topic<String, Player> = Topic::new("players", StringSerde, reader);
    let builder = StreamsBuilder::new();
    builder
        .table(&topic, Materialized::as_("players"))
        .to_stream()
        .to(&Topic::new(
            "players-copy",
            StringSerde,
            AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&url).unwrap(), PLAYER_V1)
                .unwrap(),
        ));
    let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    // Decoding the record loads the writer schema; writing the copy registers a subject.
    driver
        .input_topic(&topic)
        .pipe_raw(Some(b"ada-1"), Some(&bytes), 0)
        .unwrap();
    assert!(driver.dead_letters().is_empty());
    let copy = Topic::new(
        "players-copy",
        StringSerde,
        AvroSerde::<Player>::from_avsc(&SchemaRegistry::from_url(&url).unwrap(), PLAYER_V1)
            .unwrap(),
    );
    // Reading the copy (a fresh serde again) and querying the store decode synchronously.
    assert_eq!(
        driver.output_topic(&copy).read_values().unwrap(),
        vec![ada.clone()]
    );
    let store = driver.key_value_store::<String, Player>("players").unwrap();
    assert_eq!(store.get(&"ada-1".into()).unwrap(), Some(ada));
    stop.send(()).unwrap();
    server.join().unwrap();
}
