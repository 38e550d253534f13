//! The Kafka backend's entry point: clients for one configuration, and the preparation of a
//! streams application (plan, create and check its topics).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::admin::{KafkaAdmin, blocking};
use super::client::{KafkaConsumer, KafkaProducer};
use super::{MetadataClient, create_topics, drop_in_background, thread, transaction};
use crate::backend::{
    AdminOps, Connection, GlobalConsumer, RawConsumer, RawProducer, StreamThreads,
};
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::runtime::{Shared, internal_spec};

/// Clients of the cluster a configuration names. Creating one connects to nothing: each
/// client connects when it is made.
pub(crate) struct KafkaConnection {
    config: StreamsConfig,
}

impl KafkaConnection {
    pub(crate) fn new(config: &StreamsConfig) -> KafkaConnection {
        KafkaConnection {
            config: config.clone(),
        }
    }
}

#[async_trait]
impl Connection for KafkaConnection {
    fn producer(&self) -> Result<Arc<dyn RawProducer>, Error> {
        Ok(Arc::new(KafkaProducer::new(&self.config)?))
    }

    fn consumer(&self, group: &str, topic: Arc<str>) -> Result<Box<dyn RawConsumer>, Error> {
        Ok(Box::new(KafkaConsumer::subscribe(
            &self.config,
            group,
            topic,
        )?))
    }

    fn admin(&self) -> Result<Box<dyn AdminOps>, Error> {
        Ok(Box::new(KafkaAdmin::new(&self.config)))
    }

    fn global_consumer(&self, topic: Arc<str>) -> Result<Box<dyn GlobalConsumer>, Error> {
        Ok(Box::new(super::global::KafkaGlobalConsumer::new(
            &self.config,
            topic,
        )?))
    }

    async fn prepare_streams(
        &self,
        shared: &Arc<Shared>,
        sinks: &[Arc<str>],
    ) -> Result<Arc<dyn StreamThreads>, Error> {
        let started = Instant::now();
        // One metadata client for every look-up of the start-up.
        let config = self.config.clone();
        let metadata = Arc::new(blocking(move || MetadataClient::new(&config)).await?);
        let (planning, client) = (shared.clone(), metadata.clone());
        let plan = blocking(move || thread::plan_topics(&planning, &client)).await?;
        let names: Vec<Arc<str>> = plan.iter().map(|(n, _, _)| n.clone()).collect();
        let client = metadata.clone();
        let existing = blocking(move || client.partition_counts(&names)).await?;
        let missing: Vec<_> = plan
            .iter()
            .filter(|(n, _, _)| !existing.contains_key(n))
            .map(|(n, p, c)| internal_spec(n, *p, *c))
            .collect();
        let planned_ms = started.elapsed().as_millis() as u64;
        create_topics(&self.config, &missing).await?;
        let created_ms = started.elapsed().as_millis() as u64;
        let sinks = sinks.to_vec();
        let checked = blocking(move || {
            let checked = thread::check_topics(&metadata, &plan, &sinks);
            drop_in_background(metadata);
            checked
        })
        .await;
        let checked_ms = started.elapsed().as_millis() as u64;
        checked?;
        tracing::debug!(
            planned_ms,
            created_ms,
            checked_ms,
            created = missing.len(),
            "topics planned, created and checked"
        );
        let instance = if self.config.processing_guarantee.is_exactly_once() {
            Some(transaction::instance_id(&self.config)?)
        } else {
            None
        };
        Ok(Arc::new(KafkaThreads { instance }))
    }
}

/// Stream threads that are consumer-group members of their own.
struct KafkaThreads {
    /// Under exactly-once, the instance's part of its threads' `transactional.id`s.
    instance: Option<String>,
}

impl StreamThreads for KafkaThreads {
    fn run(&self, shared: Arc<Shared>, index: usize) -> Result<(), Error> {
        thread::run(shared, index, self.instance.as_deref())
    }

    fn request_shutdown(&self, shared: &Shared, error: &Error) -> Result<(), Error> {
        thread::request_shutdown(shared, error)
    }
}
