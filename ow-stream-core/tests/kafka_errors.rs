//! Kafka failures keep librdkafka's error code and error, so callers can match on them.

mod common;

use common::Cluster;
use ow_stream_core::client::Producer;
use ow_stream_core::error::KafkaErrorCode;
use ow_stream_core::{Error, Topic};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_produce_carries_the_brokers_error_code_and_source() {
    let cluster = Cluster::new();
    cluster.create("secrets", 1);
    let dir = tempfile::tempdir().unwrap();
    let producer = Producer::new(&cluster.config("error-codes", dir.path())).unwrap();
    let topic: Topic<String, String> = Topic::json("secrets");

    // The broker refuses the next produce request with a non-retriable error.
    cluster.mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let err = producer
        .send(&topic, &"k".to_string(), &"v".to_string())
        .await
        .unwrap_err();

    assert_eq!(
        err.kafka_code(),
        Some(KafkaErrorCode::TopicAuthorizationFailed),
        "{err:?}"
    );
    let Error::Kafka {
        operation,
        code,
        retriable,
        ..
    } = &err
    else {
        panic!("not a Kafka error: {err:?}");
    };
    assert_eq!(*operation, "produce");
    assert_eq!(*code, Some(KafkaErrorCode::TopicAuthorizationFailed));
    assert!(!retriable);
    let source = std::error::Error::source(&err).expect("a source");
    let kafka = source
        .downcast_ref::<KafkaError>()
        .expect("the source is librdkafka's error");
    assert_eq!(
        kafka.rdkafka_error_code(),
        Some(KafkaErrorCode::TopicAuthorizationFailed)
    );
    assert!(err.to_string().contains("produce"), "{err}");
}
