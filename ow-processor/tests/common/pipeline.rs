//! The processor's topology through the test driver, and its outputs gathered the way a
//! consumer of the output topics sees them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use ow_domain::{
    DailyStats, DailyStatsKey, PlayerProfile, RawPlayerProfile, StatsByCategory, StatsCategoryKey,
    StatsDelta,
};
use ow_processor::{APPLICATION_ID, Topics, TopologyOptions, build};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{RawRecord, Record, Topic};

use super::stream::StreamEvent;

/// A registry of its own for one test (`mock://<name>-<n>`).
pub(crate) fn registry(name: &str) -> SchemaRegistry {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SchemaRegistry::mock(&format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// The topology in a test driver, with its typed topics.
pub(crate) struct Driven {
    pub(crate) driver: TopologyTestDriver,
    pub(crate) topics: Topics,
}

/// The processor's topology (default options) in a test driver named like the application.
pub(crate) fn drive(name: &str) -> Driven {
    let registry = registry(name);
    let topology = build(&registry, &TopologyOptions::default()).unwrap();
    let driver = TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default().with_application_id(APPLICATION_ID),
    )
    .unwrap();
    Driven {
        driver,
        topics: Topics::new(&registry, "").unwrap(),
    }
}

impl Driven {
    /// Pipes a raw event keyed by its player id, stamped with its `fetched_at`.
    pub(crate) fn pipe(&self, raw: &RawPlayerProfile) {
        self.driver
            .input_topic(&self.topics.raw)
            .pipe_record(Record::new(
                raw.player_id.clone(),
                raw.clone(),
                raw.fetched_at,
            ))
            .unwrap();
    }

    /// Pipes every event of a stream, in order.
    pub(crate) fn pipe_all(&self, events: &[StreamEvent]) {
        for event in events {
            self.pipe(&event.raw);
        }
    }

    /// Everything written so far.
    pub(crate) fn outputs(&self) -> Outputs {
        Outputs::decode(&self.topics, |topic| self.driver.raw_records(topic))
    }
}

/// What the processor wrote to its four output topics.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    /// Every `ow.stats.deltas` record as (record key, delta), sorted by
    /// [`delta_identity`].
    pub(crate) deltas: Vec<(String, StatsDelta)>,
    /// The latest `ow.stats.daily` record per key.
    pub(crate) daily: BTreeMap<DailyStatsKey, DailyStats>,
    /// The latest `ow.players.profile` record per key.
    pub(crate) profiles: BTreeMap<String, PlayerProfile>,
    /// The latest `ow.stats.by-category` record per key.
    pub(crate) categories: BTreeMap<StatsCategoryKey, StatsByCategory>,
    /// How many `ow.stats.by-category` records were written.
    pub(crate) category_records: usize,
}

/// What identifies a delta: its player, platform, mode, hero and the two snapshots.
pub(crate) fn delta_identity(delta: &StatsDelta) -> (String, String, String, String, i64, i64) {
    (
        delta.player_id.clone(),
        delta.platform.clone(),
        delta.gamemode.clone(),
        delta.hero.clone(),
        delta.snapshot_at,
        delta.previous_snapshot_at,
    )
}

fn decode<K: 'static, V: 'static>(topic: &Topic<K, V>, record: &RawRecord) -> (K, V) {
    let empty = Bytes::new();
    let key = topic
        .deserialize_key(record.key.as_ref().unwrap_or(&empty))
        .unwrap();
    let value = topic
        .deserialize_value(record.value.as_ref().unwrap_or(&empty))
        .unwrap();
    (key, value)
}

impl Outputs {
    /// Decodes the records of the output topics (`read` returns a topic's records, each key's
    /// in the order written).
    pub(crate) fn decode(topics: &Topics, read: impl Fn(&str) -> Vec<RawRecord>) -> Self {
        let mut deltas: Vec<(String, StatsDelta)> = read(topics.deltas.name())
            .iter()
            .map(|r| decode(&topics.deltas, r))
            .collect();
        deltas.sort_by_key(|(_, d)| delta_identity(d));
        let categories_raw = read(topics.stats_by_category.name());
        Outputs {
            deltas,
            daily: read(topics.daily.name())
                .iter()
                .map(|r| decode(&topics.daily, r))
                .collect(),
            profiles: read(topics.profiles.name())
                .iter()
                .map(|r| decode(&topics.profiles, r))
                .collect(),
            category_records: categories_raw.len(),
            categories: categories_raw
                .iter()
                .map(|r| decode(&topics.stats_by_category, r))
                .collect(),
        }
    }

    /// The deltas with copies of one delta (the same identity) written more than once
    /// removed, after checking that every copy is exactly the first.
    pub(crate) fn distinct_deltas(&self) -> Vec<(String, StatsDelta)> {
        let mut out: Vec<(String, StatsDelta)> = Vec::with_capacity(self.deltas.len());
        for (key, delta) in &self.deltas {
            match out.last() {
                Some((k, d)) if delta_identity(d) == delta_identity(delta) => {
                    assert_eq!((k, d), (key, delta), "two different deltas, one identity");
                }
                _ => out.push((key.clone(), delta.clone())),
            }
        }
        out
    }
}
