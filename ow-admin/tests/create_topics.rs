//! `ow_admin::ensure` on librdkafka's mock cluster: topics that exist are reported as such,
//! a wrong partition count and a topic the broker cannot create are errors, never a silent
//! success. (Creation itself runs on tansu in the end-to-end tests: the mock cluster cannot
//! create topics on request.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ow_admin::{AdminError, Manifest};
use ow_stream_core::admin::Admin;
use ow_stream_core::config::{Backend, StreamsConfig};
use rdkafka::mocking::MockCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_reports_existing_missing_and_mismatched_topics() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("a", 3, 1).unwrap();
    mock.create_topic("b", 2, 1).unwrap();
    let config = StreamsConfig::new("ow-admin", Backend::kafka(mock.bootstrap_servers()));
    let admin = Admin::new(&config).unwrap();
    ow_admin::wait_until_answering(&admin, Duration::from_secs(30))
        .await
        .unwrap();

    let manifest = Manifest::parse("a 3 cleanup.policy=compact\n").unwrap();
    let states = ow_admin::ensure(&admin, &manifest, None).await.unwrap();
    assert_eq!(states.len(), 1);
    assert!(states[0].existed);
    assert_eq!(states[0].partitions, 3);

    let manifest = Manifest::parse("b 4\n").unwrap();
    match ow_admin::ensure(&admin, &manifest, None).await {
        Err(AdminError::Partitions {
            topic,
            wanted,
            actual,
        }) => assert_eq!((topic.as_str(), wanted, actual), ("b", 4, 2)),
        other => panic!("{other:?}"),
    }
    // --partitions 2 overrides the manifest's count.
    assert!(ow_admin::ensure(&admin, &manifest, Some(2)).await.is_ok());

    let manifest = Manifest::parse("a 3\nnever-created 1\n").unwrap();
    let prefixed = manifest.clone().with_prefix("x.");
    assert_eq!(prefixed.topics[0].name, "x.a");
    match ow_admin::ensure(&admin, &manifest, None).await {
        Err(AdminError::Missing { topic }) => assert_eq!(topic, "never-created"),
        other => panic!("{other:?}"),
    }
}
