//! The pipeline page over fake implementations of the traits the embedded stack implements.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use common::*;
use ow_stream_core::metrics::MetricsSnapshot;
use ow_web::{
    AppState, BrowsedRecord, Error, GroupLag, GroupView, MemoryRepository, PartitionView,
    PipelineSource, PipelineView, StageControl, StageView, TopicBrowser, TopicView, materialize,
};
use parking_lot::Mutex;
use serde_json::json;

/// A pipeline whose topics grow by 10 records and one second per snapshot.
struct FakePipeline {
    tick: AtomicI64,
    web: ow_stream_core::TopologyDescription,
}

impl FakePipeline {
    fn new() -> FakePipeline {
        let topics = ow_web::Topics::new(
            &ow_stream_core::registry::SchemaRegistry::mock("pipeline-tests"),
            "",
        )
        .unwrap();
        FakePipeline {
            tick: AtomicI64::new(0),
            web: materialize::topology(&topics)
                .unwrap()
                .describe_for_application("ow-web"),
        }
    }
}

#[async_trait]
impl PipelineSource for FakePipeline {
    async fn snapshot(&self) -> Result<PipelineView, Error> {
        let tick = self.tick.fetch_add(1, Ordering::SeqCst);
        let topic = |name: &str, end: i64| {
            TopicView::new(
                name,
                vec![
                    PartitionView {
                        partition: 0,
                        start_offset: 0,
                        end_offset: end,
                    },
                    PartitionView {
                        partition: 1,
                        start_offset: 0,
                        end_offset: end,
                    },
                ],
            )
        };
        let mut counts = std::collections::BTreeMap::new();
        counts.insert("count-category-changes".to_string(), 40 + tick as u64);
        let mut metrics = MetricsSnapshot::default();
        metrics.records_consumed = 1234;
        metrics.dead_letters = 2;
        Ok(PipelineView::new(1_000_000 + tick * 1_000)
            .with_stage(
                StageView::new("producer", "ow-producer")
                    .with_reads(["ow.player-requests"])
                    .with_writes(["ow.raw.player-profiles"]),
            )
            .with_stage(
                StageView::new("processor", "ow-processor")
                    .with_reads(["ow.raw.player-profiles"])
                    .with_writes([
                        "ow.players.profile",
                        "ow.stats.by-category",
                        "ow.stats.deltas",
                        "ow.stats.daily",
                    ])
                    .with_paused(true),
            )
            .with_stage(
                StageView::new("web", "ow-web")
                    .with_topology(self.web.clone())
                    .with_writes(["ow.player-requests"])
                    .with_node_counts(counts)
                    .with_metrics(metrics),
            )
            .with_topic(topic("ow.player-requests", 5 + tick * 5))
            .with_topic(topic("ow.stats.deltas", 100 + tick * 5))
            .with_topic(topic("<script>alert(1)</script>", 1))
            .with_group(
                GroupView::new(
                    "ow-web",
                    vec![GroupLag {
                        topic: "ow.stats.deltas".into(),
                        partition: 0,
                        committed: Some(90),
                        lag: Some(10),
                    }],
                )
                .with_stage("web"),
            ))
    }
}

#[derive(Default)]
struct FakeControl {
    calls: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl StageControl for FakeControl {
    async fn pause(&self, stage: &str) -> Result<(), Error> {
        self.act("pause", stage)
    }
    async fn resume(&self, stage: &str) -> Result<(), Error> {
        self.act("resume", stage)
    }
}

impl FakeControl {
    fn act(&self, action: &str, stage: &str) -> Result<(), Error> {
        if !["producer", "processor", "web"].contains(&stage) {
            return Err(Error::UnknownStage {
                stage: stage.into(),
            });
        }
        self.calls.lock().push((action.into(), stage.into()));
        Ok(())
    }
}

struct FakeBrowser;

#[async_trait]
impl TopicBrowser for FakeBrowser {
    async fn last_records(&self, topic: &str, limit: usize) -> Result<Vec<BrowsedRecord>, Error> {
        if topic != "ow.stats.deltas" {
            return Err(Error::UnknownTopic {
                topic: topic.into(),
            });
        }
        Ok((0..5)
            .rev()
            .take(limit)
            .map(|offset| {
                BrowsedRecord::new(
                    0,
                    offset,
                    T1,
                    json!("TeKrop-2217"),
                    Some(json!({ "hero": "<script>alert(1)</script>", "games_played": 3.0 })),
                )
                .with_headers(vec![("ow.request.id".into(), "web-1".into())])
            })
            .collect())
    }
}

fn app() -> (axum::Router, Arc<FakeControl>) {
    let control = Arc::new(FakeControl::default());
    let state = AppState::new(
        Arc::new(MemoryRepository::new()),
        Arc::new(Captured::default()),
    )
    .with_pipeline(Arc::new(FakePipeline::new()))
    .with_stage_control(control.clone())
    .with_topic_browser(Arc::new(FakeBrowser));
    (ow_web::app(state), control)
}

#[tokio::test]
async fn the_page_draws_stages_topics_stores_and_lag() {
    let (app, _) = app();
    let page = get(&app, "/pipeline").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("<svg class=\"pipeline-diagram\""));
    assert!(body.contains("data-stages=\"3\""));
    assert_eq!(body.matches("<g class=\"node stage\"").count(), 3);
    assert_eq!(
        body.matches("<g class=\"node store\"").count(),
        5,
        "the web's stores"
    );
    assert!(body.contains("href=\"/pipeline/topics/ow.stats.deltas\""));
    assert!(body.contains("lag 10"));
    assert!(body.contains("200 records"), "two partitions of 100");
    assert!(body.contains("running · paused"), "the processor is paused");
    assert!(body.contains("action=\"/pipeline/stages/processor/resume\""));
    assert!(body.contains("action=\"/pipeline/stages/web/pause\""));
    assert!(body.contains("data-pipeline-url=\"/api/pipeline\""));
    assert!(body.contains("data-browser=\"true\""));
    assert!(body.contains("Sub-topology: 0"), "the topology's text form");
    assert!(body.contains("data-node=\"count-category-changes\">40<"));
    assert!(body.contains("1,234"), "records consumed");
    assert!(!body.contains("<script>alert"), "topic names are escaped");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn the_json_endpoint_fills_in_rates() {
    let (app, _) = app();
    let first = get(&app, "/api/pipeline").await;
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["stages"][2]["name"], "web");
    assert_eq!(first["stages"][1]["paused"], true);
    assert_eq!(first["stages"][2]["dead_letters"], 2);
    assert!(first["stages"][2]["topology"]["subtopologies"].is_array());
    assert!(
        first["topics"][0]["messages_per_sec"].is_null(),
        "one sample: no rate yet"
    );
    let second = get(&app, "/api/pipeline").await.json();
    // Two partitions grew by 5 each in one second.
    assert_eq!(second["topics"][0]["messages_per_sec"], 10.0);
    assert_eq!(second["groups"][0]["partitions"][0]["lag"], 10);
}

#[tokio::test]
async fn pause_and_resume_call_the_stage_control() {
    let (app, control) = app();
    let paused = post(&app, "/pipeline/stages/web/pause").await;
    assert_eq!(paused.status, 303);
    assert_eq!(location(&paused), "/pipeline");
    let resumed = post(&app, "/pipeline/stages/processor/resume").await;
    assert_eq!(resumed.status, 303);
    assert_eq!(
        *control.calls.lock(),
        [
            ("pause".to_string(), "web".to_string()),
            ("resume".to_string(), "processor".to_string())
        ]
    );
    assert_eq!(post(&app, "/pipeline/stages/nope/pause").await.status, 404);
    assert_eq!(
        post(&app, "/pipeline/stages/..%2Fx/pause").await.status,
        400
    );
    assert_eq!(get(&app, "/pipeline/stages/web/pause").await.status, 405);
    let mut cross = request("POST", "/pipeline/stages/web/pause", [127, 0, 0, 1]);
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(call(&app, cross).await.status, 403);
    assert_eq!(control.calls.lock().len(), 2);
}

#[tokio::test]
async fn topics_show_their_last_records() {
    let (app, _) = app();
    let json = get(&app, "/api/topics/ow.stats.deltas/records?limit=2").await;
    assert_eq!(json.status, 200);
    let json = json.json();
    assert_eq!(json["topic"], "ow.stats.deltas");
    assert_eq!(json["records"].as_array().unwrap().len(), 2);
    assert_eq!(json["records"][0]["offset"], 4);
    assert_eq!(json["records"][0]["value"]["games_played"], 3.0);

    let page = get(&app, "/pipeline/topics/ow.stats.deltas").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("The last 5 records, newest first."));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains("<script>alert"));
    assert!(page.body.contains("ow.request.id"));

    assert_eq!(
        get(&app, "/api/topics/ow.unknown/records").await.status,
        404
    );
    let bad = get(&app, "/api/topics/bad%20name/records").await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("topic name"));
    assert_eq!(get(&app, "/pipeline/topics/..").await.status, 400);
}

#[tokio::test]
async fn lag_is_in_the_metrics() {
    let (app, _) = app();
    let metrics = get(&app, "/metrics").await;
    assert!(
        metrics
            .body
            .contains("ow_web_consumer_lag{group=\"ow-web\",topic=\"ow.stats.deltas\"} 10")
    );
}

#[tokio::test]
async fn without_hooks_the_page_says_so() {
    let state = AppState::new(
        Arc::new(MemoryRepository::new()),
        Arc::new(Captured::default()),
    );
    let app = ow_web::app(state);
    let page = get(&app, "/pipeline").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Pipeline introspection is not available")
    );
    let json = get(&app, "/api/pipeline").await;
    assert_eq!(json.status, 503);
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("not available")
    );
    assert_eq!(post(&app, "/pipeline/stages/web/pause").await.status, 503);
    assert_eq!(
        get(&app, "/api/topics/ow.stats.deltas/records")
            .await
            .status,
        503
    );
}
