//! The processor's topology, written with the ow-stream-core DSL.
//!
//! ```text
//! ow.raw.player-profiles (key player id)
//!  └─ parse-fetch            parse the body once; a bad event goes to the dead-letter topic
//!      ├─ player-profile     group_by_key + aggregate (store player-profile)  ─▶ ow.players.profile
//!      └─ newer-snapshots    store player-last-snapshot: lets through only a snapshot newer
//!          │                 than the stored one, stores it, stamps the record with snapshot_at
//!          ├─ stats-deltas   compute_deltas(previous, current)                 ─▶ ow.stats.deltas
//!          │   └─ all-heroes-deltas ─ daily-key ─ player-daily-stats (1-day tumbling windows,
//!          │      grace 1 h, by snapshot_at) ─ daily-stats-record              ─▶ ow.stats.daily
//!          └─ stats-by-category                                                ─▶ ow.stats.by-category
//! ```
//!
//! # A player's records share one partition number
//! `ow.players.profile` and `ow.stats.deltas` are keyed by the player id, as the raw topic is.
//! `ow.stats.by-category` and `ow.stats.daily` have composite keys (for compaction) but are
//! partitioned by their player id alone, hashed exactly as a player-id key is (the schemas'
//! `partition_key()`): with output topics of the raw topic's partition count, every record of a
//! player is in the partition number of the player's raw events, on Kafka and on the local log.
//!
//! # One sub-topology, no repartition topic
//! Every output is keyed by the player id or by a record whose first field is the player id,
//! and every record of a player is read from that player's partition of the raw topic. The
//! daily aggregation is grouped by (player, platform, game mode, day), a key that only ever
//! comes from one player, so all records of a group already meet in one task: grouping by key
//! needs no repartition topic. The whole topology is one sub-topology, one task per raw
//! partition, whose three stores commit atomically with the raw offsets they reflect.
//!
//! # Idempotence
//! A raw event delivered twice (or an old one delivered again after newer ones) changes nothing
//! the second time: the profile fold ignores fetches older than its status and gives the same
//! profile for the same fetch; `newer-snapshots` lets a snapshot through only when it
//! [supersedes](crate::supersedes()) the stored one, so deltas, daily sums and category records
//! are written once per snapshot.

use std::sync::Arc;
use std::time::Duration;

use ow_domain::hero::ALL_HEROES;
use ow_domain::{
    DAILY_STATS_KEY, DAILY_STATS_VALUE, DailyStats, DailyStatsKey, PLAYER_ID_KEY,
    PLAYER_PROFILE_VALUE, PLAYER_SNAPSHOT_VALUE, PlayerProfile, PlayerSnapshot,
    RAW_PLAYER_PROFILE_VALUE, RawPlayerProfile, STATS_BY_CATEGORY_VALUE, STATS_CATEGORY_KEY,
    STATS_DELTA_VALUE, StatsByCategory, StatsCategoryKey, StatsDelta, topics,
};
use ow_stream_core::admin::TopicSpec;
use ow_stream_core::dsl::{Materialized, Produced, TimeWindows, Windowed};
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{Processor, ProcessorContext};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::AvroSerde;
use ow_stream_core::{Record, StreamsBuilder, Topic, Topology};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::daily::{DAY_MS, GRACE_MS, add_delta, day_window};
use crate::delta::compute_deltas;
use crate::error::ProcessorError;
use crate::fetch::{FetchOutputs, PlayerFetch, check_key};
use crate::snapshot::supersedes;

/// The key-value store of the player table behind `ow.players.profile` (key player id, value
/// [`PlayerProfile`]).
pub const PROFILE_STORE: &str = "player-profile";
/// The key-value store of the last snapshot of each player (key player id, value
/// [`PlayerSnapshot`]), which the next snapshot is compared with.
pub const SNAPSHOT_STORE: &str = "player-last-snapshot";
/// The window store of the daily sums behind `ow.stats.daily` (key [`DailyStatsKey`], value
/// [`DailyStats`], one-day windows).
pub const DAILY_STORE: &str = "player-daily-stats";

/// The processor's own settings (the streams settings are in
/// [`StreamsConfig`](ow_stream_core::config::StreamsConfig)).
///
/// ```
/// use std::time::Duration;
/// use ow_processor::TopologyOptions;
///
/// let options = TopologyOptions::default().with_topic_prefix("staging.");
/// assert_eq!(options.daily_grace, Duration::from_secs(3600));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopologyOptions {
    /// Prepended to every topic name (`staging.` makes `staging.ow.stats.deltas`). Default
    /// empty.
    pub topic_prefix: String,
    /// How long after its end a day still accepts deltas. Default one hour.
    pub daily_grace: Duration,
    /// How long a day stays in the `player-daily-stats` store after it ends (for interactive
    /// queries; at least the grace). Default seven days.
    pub daily_retention: Duration,
}

impl Default for TopologyOptions {
    fn default() -> Self {
        TopologyOptions {
            topic_prefix: String::new(),
            daily_grace: Duration::from_millis(GRACE_MS.unsigned_abs()),
            daily_retention: Duration::from_millis(7 * DAY_MS.unsigned_abs()),
        }
    }
}

impl TopologyOptions {
    /// Sets the topic prefix.
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    /// Sets the grace period of the daily windows.
    pub fn with_daily_grace(mut self, grace: Duration) -> Self {
        self.daily_grace = grace;
        self
    }

    /// Sets how long days stay queryable in the daily store.
    pub fn with_daily_retention(mut self, retention: Duration) -> Self {
        self.daily_retention = retention;
        self
    }
}

/// The topics the processor reads and writes, typed with their Avro serdes (subjects
/// `<topic>-key` and `<topic>-value` in the registry).
///
/// ```
/// use ow_processor::Topics;
/// use ow_stream_core::registry::SchemaRegistry;
///
/// let topics = Topics::new(&SchemaRegistry::mock("topics-doc"), "")?;
/// assert_eq!(topics.deltas.name(), "ow.stats.deltas");
/// # Ok::<(), ow_processor::ProcessorError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Topics {
    /// `ow.raw.player-profiles`: the input.
    pub raw: Topic<String, RawPlayerProfile>,
    /// `ow.stats.by-category`.
    pub stats_by_category: Topic<StatsCategoryKey, StatsByCategory>,
    /// `ow.players.profile`.
    pub profiles: Topic<String, PlayerProfile>,
    /// `ow.stats.deltas`.
    pub deltas: Topic<String, StatsDelta>,
    /// `ow.stats.daily`.
    pub daily: Topic<DailyStatsKey, DailyStats>,
}

impl Topics {
    /// The topics, named with `prefix` (empty for the standard names), with serdes over
    /// `registry`.
    ///
    /// # Errors
    /// [`ProcessorError::Schema`] if a schema of `ow-domain` does not parse.
    pub fn new(registry: &SchemaRegistry, prefix: &str) -> Result<Self, ProcessorError> {
        let player = avro::<String>(registry, PLAYER_ID_KEY, "player id key")?;
        let name = |topic: &str| format!("{prefix}{topic}");
        Ok(Topics {
            raw: Topic::new(
                name(topics::RAW_PLAYER_PROFILES),
                player.clone(),
                avro(registry, RAW_PLAYER_PROFILE_VALUE, "raw player profile")?,
            ),
            stats_by_category: Topic::new(
                name(topics::STATS_BY_CATEGORY),
                avro(registry, STATS_CATEGORY_KEY, "stats category key")?,
                avro(registry, STATS_BY_CATEGORY_VALUE, "stats by category")?,
            ),
            profiles: Topic::new(
                name(topics::PLAYERS_PROFILE),
                player.clone(),
                avro(registry, PLAYER_PROFILE_VALUE, "player profile")?,
            ),
            deltas: Topic::new(
                name(topics::STATS_DELTAS),
                player,
                avro(registry, STATS_DELTA_VALUE, "stats delta")?,
            ),
            daily: Topic::new(
                name(topics::STATS_DAILY),
                avro(registry, DAILY_STATS_KEY, "daily stats key")?,
                avro(registry, DAILY_STATS_VALUE, "daily stats")?,
            ),
        })
    }

    /// How to create the four output topics with `partitions` partitions (the raw topic's
    /// count, so that a player's records share a partition number everywhere): the three
    /// tables (`ow.stats.by-category`, `ow.players.profile`, `ow.stats.daily`) compacted,
    /// `ow.stats.deltas` a plain log. The processor never creates them itself: it refuses to
    /// start while one is missing.
    ///
    /// ```
    /// use ow_processor::Topics;
    /// use ow_stream_core::registry::SchemaRegistry;
    ///
    /// let topics = Topics::new(&SchemaRegistry::mock("specs-doc"), "")?;
    /// let specs = topics.output_specs(4);
    /// assert_eq!(specs.len(), 4);
    /// assert!(specs.iter().all(|s| s.partitions == 4));
    /// # Ok::<(), ow_processor::ProcessorError>(())
    /// ```
    pub fn output_specs(&self, partitions: i32) -> Vec<TopicSpec> {
        vec![
            TopicSpec::new(self.stats_by_category.name(), partitions).compacted(),
            TopicSpec::new(self.profiles.name(), partitions).compacted(),
            TopicSpec::new(self.deltas.name(), partitions),
            TopicSpec::new(self.daily.name(), partitions).compacted(),
        ]
    }

    /// Registers the key and value schemas of the four output topics (once; a no-op in effect
    /// for in-process registries), so that a registry that cannot be reached, or refuses a
    /// schema as incompatible, stops the processor before it reads anything.
    ///
    /// # Errors
    /// [`ProcessorError::Register`] naming the topic.
    pub async fn prepare_outputs(&self) -> Result<(), ProcessorError> {
        let err = |topic: &str| {
            let topic = topic.to_string();
            move |source| ProcessorError::Register { topic, source }
        };
        let t = &self.stats_by_category;
        t.prepare().await.map_err(err(t.name()))?;
        let t = &self.profiles;
        t.prepare().await.map_err(err(t.name()))?;
        let t = &self.deltas;
        t.prepare().await.map_err(err(t.name()))?;
        let t = &self.daily;
        t.prepare().await.map_err(err(t.name()))
    }
}

fn avro<T>(
    registry: &SchemaRegistry,
    avsc: &str,
    what: &'static str,
) -> Result<AvroSerde<T>, ProcessorError>
where
    T: Serialize + DeserializeOwned + 'static,
{
    AvroSerde::from_avsc(registry, avsc).map_err(|source| ProcessorError::Schema { what, source })
}

/// The processor's topology over `registry` (see the [module docs](self) for its shape).
///
/// ```
/// use ow_processor::{TopologyOptions, build};
/// use ow_stream_core::registry::SchemaRegistry;
///
/// let topology = build(&SchemaRegistry::mock("build-doc"), &TopologyOptions::default())?;
/// let description = topology.describe();
/// assert_eq!(description.subtopologies.len(), 1);
/// assert_eq!(description.stores.len(), 3);
/// # Ok::<(), ow_processor::ProcessorError>(())
/// ```
///
/// # Errors
/// [`ProcessorError::Schema`] if a schema does not parse, [`ProcessorError::Topology`] if the
/// topic prefix makes a topic name invalid.
pub fn build(
    registry: &SchemaRegistry,
    options: &TopologyOptions,
) -> Result<Topology, ProcessorError> {
    let topics = Topics::new(registry, &options.topic_prefix)?;
    build_on(registry, &topics, options)
}

/// [`build`] writing to `topics` (so that the serdes prepared by
/// [`Topics::prepare_outputs`] are the ones the topology uses).
pub(crate) fn build_on(
    registry: &SchemaRegistry,
    topics: &Topics,
    options: &TopologyOptions,
) -> Result<Topology, ProcessorError> {
    let player = avro::<String>(registry, PLAYER_ID_KEY, "player id key")?;
    let builder = StreamsBuilder::new();
    builder.add_state_store(
        Materialized::<String, PlayerSnapshot>::as_(SNAPSHOT_STORE)
            .with_key_serde(player.clone())
            .with_value_serde(avro::<PlayerSnapshot>(
                registry,
                PLAYER_SNAPSHOT_VALUE,
                "player snapshot",
            )?),
    );

    // Checks and parses each raw event once; one that fails goes to the dead-letter topic.
    let fetches = builder
        .stream(&topics.raw)
        .try_map(|key: String, raw: RawPlayerProfile| {
            check_key(&key, &raw)?;
            let outputs = PlayerFetch::parse(&raw)?.outputs();
            Ok::<_, BoxError>((key, Arc::new(outputs)))
        })
        .named("parse-fetch")
        // The key is the raw event's, unchanged: no repartition before the aggregations.
        .mark_as_partitioned();

    fetches
        .group_by_key()
        .aggregate(
            blank_profile,
            |_, fetch: Arc<FetchOutputs>, profile| fold_profile(&fetch, profile),
            Materialized::as_(PROFILE_STORE)
                .with_key_serde(player)
                .with_value_serde(avro::<PlayerProfile>(
                    registry,
                    PLAYER_PROFILE_VALUE,
                    "player profile",
                )?),
        )
        .to_stream()
        .to(&topics.profiles);

    let snapshots = fetches.process("newer-snapshots", &[SNAPSHOT_STORE], || NewerSnapshots);

    let deltas = snapshots
        .flat_map_values(|new: Arc<NewSnapshot>| new.deltas())
        .named("stats-deltas");
    deltas.to(&topics.deltas);
    deltas
        .filter(|_, delta| delta.hero == ALL_HEROES)
        .named("all-heroes-deltas")
        .select_key(|_, delta| DailyStatsKey {
            player_id: delta.player_id.clone(),
            platform: delta.platform.clone(),
            gamemode: delta.gamemode.clone(),
            window_start: day_window(delta.snapshot_at).0,
        })
        .named("daily-key")
        // Every record of a (player, platform, mode, day) key comes from one player, hence
        // from one partition of the raw topic: grouping needs no repartition topic.
        .mark_as_partitioned()
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_millis(DAY_MS.unsigned_abs()),
            options.daily_grace,
        ))
        .aggregate(
            DailyStats::default,
            |_, delta, day| add_delta(day, &delta),
            Materialized::as_(DAILY_STORE)
                .with_key_serde(avro::<DailyStatsKey>(
                    registry,
                    DAILY_STATS_KEY,
                    "daily stats key",
                )?)
                .with_value_serde(avro::<DailyStats>(
                    registry,
                    DAILY_STATS_VALUE,
                    "daily stats",
                )?)
                .with_retention(options.daily_retention),
        )
        .to_stream()
        .map(|day: Windowed<DailyStatsKey>, stats| (day.key, stats))
        .named("daily-stats-record")
        .to_with(
            &topics.daily,
            // The player id alone, hashed as a player-id key: `DailyStatsKey::partition_key`.
            Produced::new()
                .with_partition_key_of(&topics.profiles, |key: &DailyStatsKey, _| &key.player_id),
        );

    // Declared last, so that it is the last child of `newer-snapshots`: it then receives the
    // only reference to the parsed event and moves the category records out without a copy.
    snapshots
        .flat_map(|_, new: Arc<NewSnapshot>| {
            new.into_categories()
                .into_iter()
                .map(|record| (record.key(), record))
        })
        .named("stats-by-category")
        .to_with(
            &topics.stats_by_category,
            // The player id alone, hashed as a player-id key: `StatsCategoryKey::partition_key`.
            Produced::new().with_partition_key_of(&topics.profiles, |key: &StatsCategoryKey, _| {
                &key.player_id
            }),
        );

    Ok(builder.build()?)
}

/// The profile a player's aggregate starts from: a placeholder with an empty player id, which
/// [`fold_profile`] reads as "no profile yet" (raw events with an empty player id never get
/// this far: [`check_key`] refuses them).
fn blank_profile() -> PlayerProfile {
    PlayerProfile {
        player_id: String::new(),
        username: None,
        avatar: None,
        namecard: None,
        title: None,
        endorsement: None,
        competitive: Vec::new(),
        last_updated_at: None,
        profile_fetched_at: None,
        status: ow_domain::FetchStatus {
            outcome: ow_domain::FetchOutcome::Ok,
            fetched_at: i64::MIN,
            http_status: None,
            message: None,
            next_check_at: None,
        },
    }
}

/// Folds a fetch into its player's profile (the blank placeholder counts as none).
fn fold_profile(fetch: &FetchOutputs, profile: PlayerProfile) -> PlayerProfile {
    let update = &fetch.profile;
    if profile.player_id.is_empty() {
        update.merge_into(None)
    } else if profile.player_id == update.player_id() {
        update.merge_into(Some(profile))
    } else {
        // Cannot happen: parse-fetch lets through only events whose player id is their key,
        // and the store holds the profile of that key.
        tracing::error!(
            profile = %profile.player_id, fetch = %update.player_id(),
            "a player's profile store holds another player's profile; the fetch is ignored"
        );
        profile
    }
}

/// A snapshot newer than the stored one, with the one it replaces.
struct NewSnapshot {
    previous: Option<PlayerSnapshot>,
    fetch: Arc<FetchOutputs>,
}

impl NewSnapshot {
    fn deltas(&self) -> Vec<StatsDelta> {
        match &self.fetch.snapshot {
            Some(current) => compute_deltas(self.previous.as_ref(), current),
            None => Vec::new(),
        }
    }

    /// The category records, moved out when this is the last reference to them.
    fn into_categories(self: Arc<Self>) -> Vec<StatsByCategory> {
        let fetch = match Arc::try_unwrap(self) {
            Ok(new) => new.fetch,
            Err(shared) => shared.fetch.clone(),
        };
        match Arc::try_unwrap(fetch) {
            Ok(fetch) => fetch.categories,
            Err(shared) => shared.categories.clone(),
        }
    }
}

/// Lets a fetch through only when its snapshot supersedes the stored one, stores it, and
/// stamps the record with the snapshot's time (the time the daily windows go by).
struct NewerSnapshots;

impl Processor<String, Arc<FetchOutputs>, String, Arc<NewSnapshot>> for NewerSnapshots {
    fn process(
        &mut self,
        record: Record<String, Arc<FetchOutputs>>,
        ctx: &mut ProcessorContext<'_, '_, String, Arc<NewSnapshot>>,
    ) -> Result<(), BoxError> {
        let Some(current) = &record.value.snapshot else {
            return Ok(());
        };
        let mut store = ctx.key_value_store::<String, PlayerSnapshot>(SNAPSHOT_STORE)?;
        let previous = store.get(&record.key)?;
        if !supersedes(previous.as_ref(), current) {
            return Ok(());
        }
        store.put(&record.key, current)?;
        let timestamp = current.snapshot_at;
        let new = NewSnapshot {
            previous,
            fetch: record.value,
        };
        ctx.forward(Record {
            key: record.key,
            value: Arc::new(new),
            timestamp,
            headers: record.headers,
        })
    }
}
