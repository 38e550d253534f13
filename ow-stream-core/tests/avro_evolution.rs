//! Schema evolution through the Avro serde: a v1 writer read by a v2 reader (a field added with
//! a default) and the other way round, over an in-process (`mock://`) registry and over HTTP;
//! an incompatible v3 is refused.

use apache_avro::AvroSchema;
use ow_stream_core::serde::{AvroSerde, Serde, SerdeContext, SerdeError, deserialize_loading};
use ow_stream_registry::server::RegistryServer;
use ow_stream_registry::{RegistryError, SchemaRegistry};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Version 1, with its schema derived from the type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, AvroSchema)]
#[serde(rename = "Profile")]
#[avro(namespace = "ow.test")]
struct ProfileV1 {
    player_id: String,
    level: i32,
}

/// Version 2: two fields added, both with defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, AvroSchema)]
#[serde(rename = "Profile")]
#[avro(namespace = "ow.test")]
struct ProfileV2 {
    player_id: String,
    level: i32,
    #[avro(default = "3")]
    endorsement: i32,
    #[avro(default = "null")]
    title: Option<String>,
}

/// Version 3 adds a field without a default: under BACKWARD it cannot read v2 data.
const PROFILE_V3: &str = r#"{"type":"record","name":"Profile","namespace":"ow.test","fields":[
    {"name":"player_id","type":"string"},
    {"name":"level","type":"int"},
    {"name":"endorsement","type":"int","default":3},
    {"name":"title","type":["null","string"],"default":null},
    {"name":"rank","type":"string"}]}"#;

const TOPIC: &str = "ow.profiles";

fn v1() -> ProfileV1 {
    ProfileV1 {
        player_id: "TeKrop-2217".into(),
        level: 30,
    }
}

fn v2() -> ProfileV2 {
    ProfileV2 {
        player_id: "Kiriko-1234".into(),
        level: 12,
        endorsement: 5,
        title: Some("Shrine Keeper".into()),
    }
}

/// Runs the whole evolution story against `registry` (and `reader_registry` for the readers,
/// which for HTTP is a second client with its own caches).
async fn evolve(writer_registry: &SchemaRegistry, reader_registry: &SchemaRegistry) {
    let ctx = SerdeContext::value(TOPIC);
    let w1 = AvroSerde::<ProfileV1>::derived(writer_registry).expect("v1 writer");
    let w2 = AvroSerde::<ProfileV2>::derived(writer_registry).expect("v2 writer");
    let r1 = AvroSerde::<ProfileV1>::derived(reader_registry).expect("v1 reader");
    let r2 = AvroSerde::<ProfileV2>::derived(reader_registry).expect("v2 reader");

    // v1 is registered first, then v2 (compatible: its new fields have defaults).
    w1.prepare(ctx).await.expect("v1 registers");
    w2.prepare(ctx).await.expect("v2 registers after v1");
    let old = w1.serialize(ctx, &v1()).expect("v1 encodes");
    let new = w2.serialize(ctx, &v2()).expect("v2 encodes");
    assert_eq!(&old[..5], &[0, 0, 0, 0, 1]);
    assert_eq!(&new[..5], &[0, 0, 0, 0, 2]);
    assert_eq!(
        writer_registry
            .versions(&ctx.subject())
            .await
            .expect("subject versions"),
        [1, 2]
    );

    // v1 data, v2 reader: the added fields take their defaults.
    assert_eq!(
        deserialize_loading(&r2, ctx, &old)
            .await
            .expect("v2 reads v1"),
        ProfileV2 {
            player_id: "TeKrop-2217".into(),
            level: 30,
            endorsement: 3,
            title: None,
        }
    );
    // v2 data, v1 reader: the added fields are skipped.
    assert_eq!(
        deserialize_loading(&r1, ctx, &new)
            .await
            .expect("v1 reads v2"),
        ProfileV1 {
            player_id: "Kiriko-1234".into(),
            level: 12,
        }
    );
    // Same schema on both sides.
    assert_eq!(
        deserialize_loading(&r1, ctx, &old)
            .await
            .expect("v1 reads v1"),
        v1()
    );
    assert_eq!(
        deserialize_loading(&r2, ctx, &new)
            .await
            .expect("v2 reads v2"),
        v2()
    );

    // v3 cannot be registered under BACKWARD.
    let w3 = AvroSerde::<ProfileV2>::from_avsc(writer_registry, PROFILE_V3).expect("v3 parses");
    match w3.prepare(ctx).await {
        Err(SerdeError::Registry(RegistryError::Incompatible { subject, reason })) => {
            assert_eq!(subject, "ow.profiles-value");
            assert!(
                reason.contains("field rank is new in the reader schema and has no default"),
                "{reason}"
            );
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
    assert_eq!(
        writer_registry
            .versions(&ctx.subject())
            .await
            .expect("subject versions"),
        [1, 2]
    );
}

#[tokio::test]
async fn evolution_over_mock_registry() {
    let scope = "evolution-mock";
    SchemaRegistry::drop_mock_scope(scope);
    let writer = SchemaRegistry::from_url(&format!("mock://{scope}")).unwrap();
    let reader = SchemaRegistry::mock(scope);
    evolve(&writer, &reader).await;

    // In-process registries need no prepare: a fresh serde writes and reads at once.
    let ctx = SerdeContext::value("ow.other-profiles");
    let serde = AvroSerde::<ProfileV2>::derived(&reader).unwrap();
    let bytes = serde.serialize(ctx, &v2()).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 2]);
    assert_eq!(
        AvroSerde::<ProfileV1>::derived(&reader)
            .unwrap()
            .deserialize(ctx, &bytes)
            .unwrap()
            .level,
        12
    );
    // And an incompatible write is refused there and then.
    let w3 = AvroSerde::<ProfileV2>::from_avsc(&reader, PROFILE_V3).unwrap();
    assert!(matches!(
        w3.serialize(SerdeContext::value(TOPIC), &v2()),
        Err(SerdeError::Registry(RegistryError::Incompatible { .. }))
    ));
    SchemaRegistry::drop_mock_scope(scope);
}

#[tokio::test]
async fn evolution_over_http_registry() {
    let scope = "evolution-http";
    SchemaRegistry::drop_mock_scope(scope);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = RegistryServer::spawn(listener, SchemaRegistry::mock(scope)).unwrap();
    let writer = SchemaRegistry::from_url(&server.url()).unwrap();
    let reader = SchemaRegistry::from_url(&server.url()).unwrap();
    evolve(&writer, &reader).await;
    server.shutdown().await.unwrap();
    SchemaRegistry::drop_mock_scope(scope);
}
