//! The local backend's entry point: clients of one log directory, and the preparation of a
//! streams application (its lease, and its topics).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ow_stream_log::{Isolation, Log};

use super::admin::LocalAdmin;
use super::{AppLease, LocalConsumer, LocalWriter, ensure_topic, open, partition_counts, thread};
use crate::backend::{
    AdminOps, Connection, GlobalConsumer, RawConsumer, RawProducer, StreamThreads,
};
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::runtime::{Shared, internal_partitions, internal_spec};

/// The open log of a directory, shared by every client of it in the process.
pub(crate) struct LocalConnection {
    dir: PathBuf,
    log: Arc<Log>,
    segment_bytes: Option<u64>,
    /// How the typed consumer reads: read committed under exactly-once.
    isolation: Isolation,
}

impl LocalConnection {
    /// Opens (or joins the process's open) log in `dir`.
    pub(crate) fn open(dir: &Path, config: &StreamsConfig) -> Result<LocalConnection, Error> {
        Ok(LocalConnection {
            dir: dir.to_path_buf(),
            log: open(dir, config)?,
            segment_bytes: config.local.segment_bytes,
            isolation: isolation(config),
        })
    }
}

#[async_trait]
impl Connection for LocalConnection {
    fn producer(&self) -> Result<Arc<dyn RawProducer>, Error> {
        Ok(Arc::new(LocalWriter::start(self.log.clone())?))
    }

    fn consumer(&self, group: &str, topic: Arc<str>) -> Result<Box<dyn RawConsumer>, Error> {
        Ok(Box::new(LocalConsumer::new(
            self.log.clone(),
            group,
            topic,
            self.isolation,
        )?))
    }

    fn admin(&self) -> Result<Box<dyn AdminOps>, Error> {
        Ok(Box::new(LocalAdmin {
            log: self.log.clone(),
            segment_bytes: self.segment_bytes,
        }))
    }

    fn global_consumer(&self, topic: Arc<str>) -> Result<Box<dyn GlobalConsumer>, Error> {
        Ok(Box::new(super::global::LocalGlobalConsumer {
            log: self.log.clone(),
            topic,
            isolation: self.isolation,
            positions: Default::default(),
        }))
    }

    async fn prepare_streams(
        &self,
        shared: &Arc<Shared>,
        sinks: &[Arc<str>],
    ) -> Result<Arc<dyn StreamThreads>, Error> {
        let lease = AppLease::acquire(&self.dir, &shared.config.application_id)?;
        let external = shared.external_sources();
        let counts = partition_counts(&self.log, &external);
        let plan = internal_partitions(&shared.topology, &shared.config, &counts)?;
        // An existing internal topic keeps its count: one other than planned would send a
        // key's records to another task than its readers expect. Checked as on Kafka, before
        // anything is created; the dead-letter topic may have any count.
        let names: Vec<Arc<str>> = plan.iter().map(|(n, _, _)| n.clone()).collect();
        let found = partition_counts(&self.log, &names);
        for (name, partitions, _) in plan.iter().filter(|(n, _, _)| !n.ends_with("-dlq")) {
            match found.get(name) {
                Some(c) if c != partitions => {
                    return Err(Error::Config {
                        field: "topics",
                        reason: format!(
                            "internal topic {name} has {c} partitions; it needs {partitions}"
                        ),
                    });
                }
                _ => {}
            }
        }
        for (name, partitions, compact) in &plan {
            // Repartition records are purged once committed; the default time retention is
            // a backstop.
            ensure_topic(
                &self.log,
                &internal_spec(name, *partitions, *compact),
                self.segment_bytes,
            )?;
        }
        let existing = partition_counts(&self.log, sinks);
        if let Some(missing) = sinks.iter().find(|t| !existing.contains_key(*t)) {
            return Err(Error::Config {
                field: "topics",
                reason: format!("output topic {missing} does not exist: create it first"),
            });
        }
        Ok(Arc::new(LocalThreads {
            log: self.log.clone(),
            _lease: lease,
        }))
    }
}

/// How stream threads and the typed consumer read: committed data only under exactly-once.
pub(crate) fn isolation(config: &StreamsConfig) -> Isolation {
    if config.processing_guarantee.is_exactly_once() {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    }
}

/// Stream threads that split the log's partitions between them; the application's lease on
/// the directory lasts as long as they do.
struct LocalThreads {
    log: Arc<Log>,
    _lease: AppLease,
}

impl StreamThreads for LocalThreads {
    fn run(&self, shared: Arc<Shared>, index: usize) -> Result<(), Error> {
        thread::run(shared, index, self.log.clone())
    }
}
