//! The web stage on Kafka (librdkafka's in-process mock cluster): the materialization running as
//! a real streams app over partitioned topics, pages answered from its stores, requests written
//! with the typed producer, the stage paused from the pipeline page.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ow_domain::RequestOrigin;
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_web::materialize::{
    APPLICATION_ID, CATEGORIES_STORE, CATEGORY_CHANGES_STORE, DELTAS_STORE, HISTORY_STORE,
    PROFILES_STORE,
};
use ow_web::{AppState, ProducerRequests, WebSettings, WebStage};
use rdkafka::mocking::MockCluster;

/// Partitions of the processor's output topics (so one player's keyed records spread out).
const PARTITIONS: i32 = 4;

/// Polls `check` every 100 ms, at most `tries` times: for data that arrives asynchronously.
async fn eventually<T>(tries: usize, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..tries {
        if let Some(t) = check().await {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_stage_on_kafka() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let mock = MockCluster::new(1).unwrap();
    let registry = SchemaRegistry::mock("web-kafka-stage");
    let topics = ow_web::Topics::new(&registry, "").unwrap();
    for topic in [
        topics.profiles.name(),
        topics.stats_by_category.name(),
        topics.deltas.name(),
        topics.daily.name(),
    ] {
        mock.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    mock.create_topic(topics.requests.name(), 2, 1).unwrap();
    // The mock cluster cannot create topics on request: the stage's internal topics too.
    for store in [
        PROFILES_STORE,
        CATEGORIES_STORE,
        CATEGORY_CHANGES_STORE,
        DELTAS_STORE,
        HISTORY_STORE,
    ] {
        mock.create_topic(
            &format!("{APPLICATION_ID}-{store}-changelog"),
            PARTITIONS,
            1,
        )
        .unwrap();
    }
    mock.create_topic(
        &format!("{APPLICATION_ID}-daily-by-player-repartition"),
        PARTITIONS,
        1,
    )
    .unwrap();
    mock.create_topic(&format!("{APPLICATION_ID}-dlq"), 1, 1)
        .unwrap();

    let state_dir = tempfile::tempdir().unwrap();
    let config = StreamsConfig::new(APPLICATION_ID, Backend::kafka(mock.bootstrap_servers()))
        .with_state_dir(state_dir.path())
        .with_commit_interval(Duration::from_millis(100))
        .with_kafka_setting("session.timeout.ms", "6000")
        .with_kafka_setting("heartbeat.interval.ms", "500");
    let stage = WebStage::start(config.clone(), &registry, "")
        .await
        .unwrap();

    // The processor's outputs for TeKrop, written as the processor writes them.
    let producer = Producer::new(&config).unwrap();
    let outputs = tekrop_outputs();
    for p in &outputs.profiles {
        producer
            .send(&topics.profiles, &p.player_id, p)
            .await
            .unwrap();
    }
    for c in &outputs.categories {
        producer
            .send(&topics.stats_by_category, &c.key(), c)
            .await
            .unwrap();
    }
    for d in &outputs.deltas {
        producer
            .send(&topics.deltas, &d.player_id, d)
            .await
            .unwrap();
    }
    for d in &outputs.daily {
        producer.send(&topics.daily, &d.key(), d).await.unwrap();
    }

    // The pipeline page over the cluster: offsets and lag come from the admin API.
    let processor_topics = ow_processor::Topics::new(&registry, "").unwrap();
    let local = Arc::new(ow_web::cluster::ClusterPipeline::new(
        ow_stream_core::admin::Admin::new(&config).unwrap(),
        registry.clone(),
        stage.streams().clone(),
        topics.requests.name(),
        processor_topics.raw.name(),
        vec![topics.profiles.name().to_string()],
    ));
    let state = AppState::new(
        Arc::new(stage.repository().unwrap()),
        Arc::new(ProducerRequests::new(
            producer.clone(),
            topics.requests.clone(),
        )),
    )
    .with_settings(WebSettings::default())
    .with_pipeline(local.clone())
    .with_stage_control(local.clone())
    .with_topic_browser(local)
    .with_streams(stage.streams().clone());
    let app = ow_web::app(state);

    // The stores fill up: the status endpoint says ready once stats and profile are in.
    eventually(600, async || {
        let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
        (status["state"] == "ready" && status["has_stats"] == true).then_some(())
    })
    .await;
    // Every record of the player, from every partition, is found (the categories were sent
    // keyed by the whole key, so they spread over the partitions; the prefix scan reads every
    // shard).
    let api = eventually(600, async || {
        let api = get(&app, "/api/players/TeKrop-2217").await.json();
        let heroes = api["categories"]["platforms"]["pc"]["quickplay"]["heroes"]
            .as_object()
            .map_or(0, |h| h.len());
        let days = api["history"]["platforms"]["pc"]["competitive"]
            .as_object()
            .map_or(0, |d| d.len());
        // The second snapshot's count, not only the first's records: with the record cache a
        // commit writes its updates in key order, not in the order they were produced, so
        // one hero being there says nothing of another.
        let games = api["categories"]["platforms"]["pc"]["competitive"]["heroes"]["all-heroes"]
            ["game"]["stats"]["games_played"]["value"]
            .as_f64();
        (heroes == 37 && api["deltas"].is_object() && days == 1 && games == Some(8.0))
            .then_some(api)
    })
    .await;
    assert_eq!(
        api["categories"]["platforms"]["pc"]["competitive"]["heroes"]["all-heroes"]["game"]["stats"]
            ["games_played"]["value"],
        8.0
    );
    let page = get(&app, "/players/TeKrop-2217?platform=pc&mode=competitive").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(">▲ 3</div>"));
    assert!(page.body.contains("id=\"chart-games\""));

    // A player never seen: a request on ow.player-requests, origin search.
    let waiting = get(&app, "/players/Ghost-1234").await;
    assert!(waiting.body.contains("Looking up Ghost#1234"));
    let consumer = Consumer::subscribe(&config, "web-test-reader", &topics.requests).unwrap();
    let request = eventually(600, async || {
        match tokio::time::timeout(Duration::from_millis(100), consumer.next()).await {
            Ok(Some(Ok(r))) if r.record.key == "Ghost-1234" => Some(r.record.value),
            _ => None,
        }
    })
    .await;
    assert_eq!(request.origin, RequestOrigin::Search);
    assert_eq!(request.player_id, "Ghost-1234");

    // Operations: health, metrics of the streams app, the stage on the pipeline page.
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["streams"]["state"], "running");
    let metrics = get(&app, "/metrics").await;
    let samples = common::openmetrics::parse(&metrics.body);
    common::openmetrics::total(
        &samples,
        "ow_stream_records_consumed_total",
        &[("application_id", "ow-web")],
    );
    let pipeline = get(&app, "/pipeline").await;
    assert!(pipeline.body.contains("data-stage=\"web\""));
    assert!(pipeline.body.contains("ow-web-daily-by-player-repartition"));
    let view = get(&app, "/api/pipeline").await.json();
    let profiles = view["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ow.players.profile")
        .unwrap();
    let written: i64 = profiles["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(
        written,
        outputs.profiles.len() as i64,
        "end offsets from the cluster"
    );
    assert!(
        view["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "ow-web"),
        "the web's consumer group and its lag"
    );
    let records = get(&app, "/api/topics/ow.players.profile/records?limit=5")
        .await
        .json();
    assert!(
        records.to_string().contains("TeKrop"),
        "records decoded through the registry: {records}"
    );
    assert_eq!(post(&app, "/pipeline/stages/web/pause").await.status, 303);
    assert!(stage.streams().is_paused());
    assert_eq!(post(&app, "/pipeline/stages/web/resume").await.status, 303);
    assert!(!stage.streams().is_paused());

    drop(app);
    drop(consumer);
    stage.close().await.unwrap();
}
