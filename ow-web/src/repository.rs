//! Where pages get their data: the [`PlayerRepository`] trait between the routes and the
//! stores, with an implementation over the materialized stores ([`StoreRepository`]) and one
//! over plain values ([`MemoryRepository`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ow_domain::battletag::PlayerId;
use ow_domain::{PlayerProfile, StatsByCategory, StatsCategoryKey};
use ow_stream_core::runtime::Streams;
use ow_stream_core::state::ReadOnlyKeyValueStore;
use ow_stream_core::testing::TopologyTestDriver;
use parking_lot::{Mutex, RwLock};

use crate::Error;
use crate::materialize::{
    CATEGORIES_STORE, CATEGORY_CHANGES_STORE, CategoryChanges, DELTAS_STORE, HISTORY_STORE,
    PROFILES_STORE, PlayerDeltas, PlayerHistory, PlayerStats, category_prefix,
};

/// What the pages read about players.
///
/// Methods are synchronous and quick (a store lookup or scan each); the routes call them on
/// tokio's blocking pool, so an implementation may do file I/O.
pub trait PlayerRepository: Send + Sync + 'static {
    /// What is known of a player, and how the latest fetch went.
    fn profile(&self, id: &PlayerId) -> Result<Option<PlayerProfile>, Error>;
    /// The latest stats of every platform, mode, hero and category.
    fn categories(&self, id: &PlayerId) -> Result<Option<Arc<PlayerStats>>, Error>;
    /// The latest change of each platform, mode and hero.
    fn deltas(&self, id: &PlayerId) -> Result<Option<PlayerDeltas>, Error>;
    /// The daily series.
    fn history(&self, id: &PlayerId) -> Result<Option<PlayerHistory>, Error>;
    /// Whether the player has stats (polled often; the default reads them all).
    fn has_categories(&self, id: &PlayerId) -> Result<bool, Error> {
        Ok(self.categories(id)?.is_some())
    }
    /// Up to `limit` known players, most recently fetched first.
    fn recent_players(&self, limit: usize) -> Result<Vec<PlayerProfile>, Error>;
}

/// Sorts profiles most recently fetched first and keeps `limit` of them.
fn most_recent(mut profiles: Vec<PlayerProfile>, limit: usize) -> Vec<PlayerProfile> {
    profiles.sort_by(|a, b| {
        b.status
            .fetched_at
            .cmp(&a.status.fetched_at)
            .then_with(|| a.player_id.cmp(&b.player_id))
    });
    profiles.truncate(limit);
    profiles
}

/// A [`PlayerRepository`] over the stores of the materialization topology, read with
/// interactive queries, from a running [`Streams`] app or a [`TopologyTestDriver`].
///
/// A player's stats are assembled from their records in the category table, found with one
/// prefix scan (see [`materialize`](crate::materialize)): a few hundred small JSON values for
/// a player with every hero played, kept for as long as the player's change counts are the
/// same.
///
/// ```
/// use ow_stream_core::registry::SchemaRegistry;
/// use ow_stream_core::testing::TopologyTestDriver;
/// use ow_domain::battletag::PlayerId;
/// use ow_web::{materialize, PlayerRepository, StoreRepository, Topics};
///
/// let topics = Topics::new(&SchemaRegistry::mock("store-repository-doc"), "").unwrap();
/// let driver = TopologyTestDriver::new(materialize::topology(&topics).unwrap()).unwrap();
/// let repository = StoreRepository::from_driver(&driver).unwrap();
/// let id = PlayerId::parse("TeKrop#2217").unwrap();
/// assert!(repository.profile(&id).unwrap().is_none());
/// ```
pub struct StoreRepository {
    profiles: ReadOnlyKeyValueStore<String, PlayerProfile>,
    categories: ReadOnlyKeyValueStore<StatsCategoryKey, StatsByCategory>,
    changes: ReadOnlyKeyValueStore<String, CategoryChanges>,
    deltas: ReadOnlyKeyValueStore<String, PlayerDeltas>,
    history: ReadOnlyKeyValueStore<String, PlayerHistory>,
    assembled: StatsCache,
}

/// The version of a player's assembled stats: their entries of
/// [`CATEGORY_CHANGES_STORE`], one per partition holding records of theirs.
type Version = Vec<CategoryChanges>;

/// Players' assembled [`PlayerStats`], each with the version it was assembled at.
///
/// Assembling a player reads and decodes every one of their category records (278 for the
/// recorded `TeKrop-2217`, about 260 KB of JSON): milliseconds, for a page whose own rendering
/// takes a fraction of one. A player's change counts commit with their records, and are read
/// before the records: assembled stats are at least as new as the counts they are kept under,
/// and stay current for as long as the counts read afterwards are the same.
#[derive(Default)]
struct StatsCache {
    entries: Mutex<HashMap<String, CachedStats>>,
    /// Reads so far: the clock of least-recently-used eviction.
    ticks: AtomicU64,
}

struct CachedStats {
    /// The player's change counts when the stats were assembled.
    version: Version,
    stats: Arc<PlayerStats>,
    /// The tick of its last read.
    used: u64,
}

/// Players whose assembled stats are kept.
const CACHED_PLAYERS: usize = 256;

impl StatsCache {
    fn get(&self, id: &str, version: &Version) -> Option<Arc<PlayerStats>> {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock();
        let entry = entries.get_mut(id).filter(|e| e.version == *version)?;
        entry.used = tick;
        Some(entry.stats.clone())
    }

    fn put(&self, id: &str, version: Version, stats: Arc<PlayerStats>) {
        let used = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock();
        if entries.len() >= CACHED_PLAYERS && !entries.contains_key(id) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            id.to_owned(),
            CachedStats {
                version,
                stats,
                used,
            },
        );
    }
}

/// Opens one store through `open`, naming it in the error.
fn open<K: 'static, V: 'static>(
    name: &'static str,
    open: impl FnOnce(&str) -> Result<ReadOnlyKeyValueStore<K, V>, ow_stream_core::Error>,
) -> Result<ReadOnlyKeyValueStore<K, V>, Error> {
    open(name).map_err(|source| Error::Store {
        store: name,
        source,
    })
}

impl StoreRepository {
    /// The stores of a running (or not yet started) streams app built from
    /// [`materialize::topology`](crate::materialize::topology).
    pub fn from_streams(streams: &Streams) -> Result<StoreRepository, Error> {
        Ok(StoreRepository {
            profiles: open(PROFILES_STORE, |n| streams.key_value_store(n))?,
            categories: open(CATEGORIES_STORE, |n| streams.key_value_store(n))?,
            changes: open(CATEGORY_CHANGES_STORE, |n| streams.key_value_store(n))?,
            deltas: open(DELTAS_STORE, |n| streams.key_value_store(n))?,
            history: open(HISTORY_STORE, |n| streams.key_value_store(n))?,
            assembled: StatsCache::default(),
        })
    }

    /// The stores of a test driver running the materialization topology.
    pub fn from_driver(driver: &TopologyTestDriver) -> Result<StoreRepository, Error> {
        Ok(StoreRepository {
            profiles: open(PROFILES_STORE, |n| driver.key_value_store(n))?,
            categories: open(CATEGORIES_STORE, |n| driver.key_value_store(n))?,
            changes: open(CATEGORY_CHANGES_STORE, |n| driver.key_value_store(n))?,
            deltas: open(DELTAS_STORE, |n| driver.key_value_store(n))?,
            history: open(HISTORY_STORE, |n| driver.key_value_store(n))?,
            assembled: StatsCache::default(),
        })
    }
}

fn get<V: 'static>(
    store: &ReadOnlyKeyValueStore<String, V>,
    name: &'static str,
    id: &PlayerId,
) -> Result<Option<V>, Error> {
    store
        .get(&id.as_str().to_owned())
        .map_err(|source| Error::Store {
            store: name,
            source,
        })
}

impl StoreRepository {
    /// The player's entries of [`CATEGORY_CHANGES_STORE`] in every shard here (none: no
    /// stats).
    fn version(&self, id: &PlayerId) -> Result<Version, Error> {
        let id = id.as_str().to_owned();
        let entries = self
            .changes
            .range(&id, &id)
            .map_err(|source| Error::Store {
                store: CATEGORY_CHANGES_STORE,
                source,
            })?;
        Ok(entries.into_iter().map(|(_, changes)| changes).collect())
    }

    /// Every record of the player in the category table, with one prefix scan of every shard
    /// here.
    fn records(&self, id: &PlayerId) -> Result<Vec<StatsByCategory>, Error> {
        let records = self
            .categories
            .prefix_scan(&category_prefix(id.as_str()))
            .map_err(|source| Error::Store {
                store: CATEGORIES_STORE,
                source,
            })?;
        Ok(records.into_iter().map(|(_, record)| record).collect())
    }
}

impl PlayerRepository for StoreRepository {
    fn profile(&self, id: &PlayerId) -> Result<Option<PlayerProfile>, Error> {
        get(&self.profiles, PROFILES_STORE, id)
    }

    fn categories(&self, id: &PlayerId) -> Result<Option<Arc<PlayerStats>>, Error> {
        // The counts first: the records scanned next are at least as new as they say.
        let version = self.version(id)?;
        if !version.is_empty()
            && let Some(stats) = self.assembled.get(id.as_str(), &version)
        {
            return Ok(Some(stats));
        }
        let records = self.records(id)?;
        if records.is_empty() {
            return Ok(None);
        }
        let mut stats = PlayerStats {
            player_id: id.as_str().to_owned(),
            ..PlayerStats::default()
        };
        for record in records {
            stats = stats.apply(record);
        }
        let stats = Arc::new(stats);
        // Records without counts come from a state directory older than the counts (they
        // start with the player's next snapshot): served, but not kept.
        if !version.is_empty() {
            self.assembled.put(id.as_str(), version, stats.clone());
        }
        Ok(Some(stats))
    }

    fn has_categories(&self, id: &PlayerId) -> Result<bool, Error> {
        Ok(!self.version(id)?.is_empty() || !self.records(id)?.is_empty())
    }

    fn deltas(&self, id: &PlayerId) -> Result<Option<PlayerDeltas>, Error> {
        get(&self.deltas, DELTAS_STORE, id)
    }

    fn history(&self, id: &PlayerId) -> Result<Option<PlayerHistory>, Error> {
        get(&self.history, HISTORY_STORE, id)
    }

    /// Scans the whole profile store: fine for the hundreds of players a dashboard follows.
    fn recent_players(&self, limit: usize) -> Result<Vec<PlayerProfile>, Error> {
        let all = self.profiles.all().map_err(|source| Error::Store {
            store: PROFILES_STORE,
            source,
        })?;
        Ok(most_recent(
            all.into_iter().map(|(_, p)| p).collect(),
            limit,
        ))
    }
}

#[derive(Clone, Default)]
struct Entry {
    profile: Option<PlayerProfile>,
    categories: Option<Arc<PlayerStats>>,
    deltas: Option<PlayerDeltas>,
    history: Option<PlayerHistory>,
}

/// A [`PlayerRepository`] over plain values, for tests and demos.
///
/// ```
/// use ow_domain::battletag::PlayerId;
/// use ow_web::{MemoryRepository, PlayerRepository};
/// use ow_web::materialize::PlayerStats;
///
/// let repository = MemoryRepository::new();
/// let id = PlayerId::parse("TeKrop-2217").unwrap();
/// repository.set_categories(&id, PlayerStats::default());
/// assert!(repository.categories(&id).unwrap().is_some());
/// assert!(repository.profile(&id).unwrap().is_none());
/// ```
#[derive(Default)]
pub struct MemoryRepository {
    players: RwLock<BTreeMap<String, Entry>>,
}

impl MemoryRepository {
    /// An empty repository.
    pub fn new() -> MemoryRepository {
        MemoryRepository::default()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Entry)) {
        f(self.players.write().entry(id.to_owned()).or_default());
    }

    fn read<T>(&self, id: &PlayerId, f: impl FnOnce(&Entry) -> Option<T>) -> Option<T> {
        self.players.read().get(id.as_str()).and_then(f)
    }

    /// Sets a player's profile (keyed by its `player_id`).
    pub fn set_profile(&self, profile: PlayerProfile) {
        let id = profile.player_id.clone();
        self.update(&id, |e| e.profile = Some(profile));
    }

    /// Sets a player's stats.
    pub fn set_categories(&self, id: &PlayerId, stats: PlayerStats) {
        self.update(id.as_str(), |e| e.categories = Some(Arc::new(stats)));
    }

    /// Sets a player's deltas.
    pub fn set_deltas(&self, id: &PlayerId, deltas: PlayerDeltas) {
        self.update(id.as_str(), |e| e.deltas = Some(deltas));
    }

    /// Sets a player's history.
    pub fn set_history(&self, id: &PlayerId, history: PlayerHistory) {
        self.update(id.as_str(), |e| e.history = Some(history));
    }
}

impl PlayerRepository for MemoryRepository {
    fn profile(&self, id: &PlayerId) -> Result<Option<PlayerProfile>, Error> {
        Ok(self.read(id, |e| e.profile.clone()))
    }

    fn categories(&self, id: &PlayerId) -> Result<Option<Arc<PlayerStats>>, Error> {
        Ok(self.read(id, |e| e.categories.clone()))
    }

    fn deltas(&self, id: &PlayerId) -> Result<Option<PlayerDeltas>, Error> {
        Ok(self.read(id, |e| e.deltas.clone()))
    }

    fn history(&self, id: &PlayerId) -> Result<Option<PlayerHistory>, Error> {
        Ok(self.read(id, |e| e.history.clone()))
    }

    fn recent_players(&self, limit: usize) -> Result<Vec<PlayerProfile>, Error> {
        let all = self
            .players
            .read()
            .values()
            .filter_map(|e| e.profile.clone())
            .collect();
        Ok(most_recent(all, limit))
    }
}
