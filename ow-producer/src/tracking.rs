//! Tracked players: who is refreshed on a schedule, when each was last asked for and fetched,
//! and how that survives restarts.
//!
//! # Who is tracked
//!
//! * every player given with `--track` / `--track-file`, for as long as the configuration names
//!   them;
//! * every player a request named (any origin, `view` included), until
//!   [`untrack_after`](crate::TrackingConfig::untrack_after) (14 days by default) passes without
//!   another request for them. The time of a request is its `requested_at` (never later than
//!   now), so a rebuild from old requests gives the same answer as the live run did.
//!
//! # When a tracked player is refreshed
//!
//! When `now ≥ max(last fetch + refresh interval, refetch_at)`. `refetch_at` is when a new
//! fetch can tell something new: the end of OverFast's cache of the last answer
//! (`fetched_at + max-age − Age`, see [`earliest_refetch`](crate::overfast::earliest_refetch)),
//! a not-found player's next check, a `Retry-After`. A requested player waits one refresh
//! interval after its request (the request itself fetched it); a configured player never fetched
//! is fetched at once. Scheduled fetches use at most half of the client's concurrency (at least
//! one), so answers to requests never queue behind a wave of refreshes.
//!
//! The same freshness answers `view` requests: a view of a player whose last answer is still
//! fresh (before `refetch_at`; an answer without cache headers stays fresh for one refresh
//! interval; a failed fetch is never fresh) fetches nothing.
//!
//! # Where the tracked set lives, and why
//!
//! Three places were possible: re-reading `ow.player-requests` from its beginning at every
//! start, a compacted topic of the producer's own, or a file in the state directory. The
//! producer uses **a file plus a consumer group of its own**:
//!
//! * Re-reading the requests topic alone cannot work: its retention (7 days by default on
//!   Kafka) is shorter than the untrack time (14 days), so players would be forgotten while
//!   still tracked; and every start would re-read the whole topic.
//! * A compacted topic would need every instance to read it to its end before scheduling and
//!   would have several writers racing on one key; the library's consumer can neither seek nor
//!   say where a partition ends, so "caught up" could only be guessed.
//! * The file `<state dir>/<application id>/tracked-players.json` holds, per player, the last
//!   request time, the last fetch time and outcome, and when a new fetch becomes useful. It is
//!   written atomically (a temporary file, fsync, rename) at each commit, *before* the offsets
//!   of the requests it reflects are committed. Its views are fed by a consumer of
//!   `ow.player-requests` in the group `<application id>-tracker-<epoch>`, whose offsets are
//!   committed only after the file is written: a committed request is always in the file, and
//!   a request read but not yet written down is read again after a crash. Nothing is lost and
//!   nothing is counted from a half-written file.
//! * When the file is missing (a new machine, a wiped volume), a new epoch starts a new tracker
//!   group, which reads `ow.player-requests` from its beginning: the tracked set is rebuilt from
//!   the requests the topic still holds (keep its retention at least as long as
//!   `--untrack-after` to rebuild it fully). Only the fetch times are lost: each tracked player
//!   is refreshed once. A file that cannot be read is an error, not an empty set: move it away
//!   to rebuild.
//!
//! # Several instances
//!
//! Answering requests scales out: every instance takes its share of the partitions of
//! `ow.player-requests` in the consumer group `<application id>`. **Scheduling is owned by one
//! instance**: run exactly one with `--schedule true` (the default) and the others with
//! `--schedule false`. The scheduling instance is the only member of its tracker group, so it
//! reads every partition and sees the requests every instance answers. Two scheduling
//! instances would split the tracker group's partitions and, after a rebalance, keep polling
//! players they no longer own: the library's consumer tells no one which partitions it was
//! given or lost, so that cannot be fenced. The scheduler does not see the fetches of other
//! instances: a player answered elsewhere may be refreshed once earlier than needed, and
//! OverFast then answers from its cache. Each instance needs its own state directory.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ow_domain::battletag::PlayerId;
use ow_domain::{FetchOutcome, RawPlayerProfile};
use serde::{Deserialize, Serialize};

use crate::error::ProducerError;

/// What the producer knows of a player on its schedule
/// ([`ProducerHandle::tracked_players`](crate::ProducerHandle::tracked_players)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrackedPlayer {
    /// The player.
    pub player_id: PlayerId,
    /// Given with `--track` / `--track-file`: tracked whether or not anyone asks.
    pub configured: bool,
    /// When a request last named the player (schedule clock, milliseconds since the epoch).
    pub last_viewed_at: Option<i64>,
    /// When this producer last fetched the player (schedule clock).
    pub last_fetched_at: Option<i64>,
    /// How that fetch ended.
    pub last_outcome: Option<FetchOutcome>,
    /// When the schedule refreshes the player next (schedule clock); `None`: as soon as it can.
    pub next_refresh_at: Option<i64>,
}

/// One player's record, as kept in memory and in the state file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Named by the configuration (not persisted: the configuration says it at every start).
    #[serde(skip)]
    pub(crate) configured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_viewed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_fetched_at: Option<i64>,
    /// Before this, a new fetch tells nothing new (OverFast's cache, a not-found's next check,
    /// a `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refetch_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_outcome: Option<FetchOutcome>,
}

/// How long after a fetch (in milliseconds) asking again is pointless, from its raw event:
/// `None` when the answer said nothing (the refresh interval then applies to ok and private
/// answers).
pub(crate) fn refetch_wait_ms(raw: &RawPlayerProfile) -> Option<i64> {
    match raw.outcome {
        FetchOutcome::Ok | FetchOutcome::Private => {
            crate::overfast::earliest_refetch(raw).map(|t| t.saturating_sub(raw.fetched_at))
        }
        FetchOutcome::NotFound | FetchOutcome::RateLimited => Some(
            raw.next_attempt_at
                .map_or(0, |t| t.saturating_sub(raw.fetched_at)),
        ),
        FetchOutcome::UpstreamError => Some(0),
    }
}

/// Every player the producer knows something about, with the schedule's rules.
#[derive(Debug)]
pub(crate) struct Book {
    entries: HashMap<PlayerId, Entry>,
    refresh_ms: i64,
    untrack_ms: i64,
    dirty: bool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Book {
    pub(crate) fn new(refresh_interval: Duration, untrack_after: Duration) -> Book {
        Book {
            entries: HashMap::new(),
            refresh_ms: ms(refresh_interval),
            untrack_ms: ms(untrack_after),
            dirty: false,
        }
    }

    /// Marks exactly `players` as configured.
    pub(crate) fn configure(&mut self, players: &[PlayerId]) {
        for entry in self.entries.values_mut() {
            entry.configured = false;
        }
        for player in players {
            self.entries.entry(player.clone()).or_default().configured = true;
        }
    }

    /// Replaces what is known with a loaded state (configured flags are kept).
    pub(crate) fn load(&mut self, players: BTreeMap<PlayerId, Entry>) {
        for (player, mut entry) in players {
            entry.configured = self.entries.get(&player).is_some_and(|e| e.configured);
            self.entries.insert(player, entry);
        }
    }

    /// The state to write down.
    pub(crate) fn entries(&self) -> BTreeMap<PlayerId, Entry> {
        self.entries
            .iter()
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect()
    }

    /// Whether something changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the book as changed (a write that failed is tried again).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// A request named `player` at `at`.
    pub(crate) fn viewed(&mut self, player: &PlayerId, at: i64) {
        let entry = self.entries.entry(player.clone()).or_default();
        if entry.last_viewed_at.is_none_or(|v| v < at) {
            entry.last_viewed_at = Some(at);
            self.dirty = true;
        }
    }

    /// `player` was fetched at `now` (schedule clock); asking again is pointless for `wait_ms`
    /// (`None`: the answer said nothing, see [`refetch_wait_ms`]).
    pub(crate) fn fetched(
        &mut self,
        player: &PlayerId,
        now: i64,
        outcome: FetchOutcome,
        wait_ms: Option<i64>,
    ) {
        let refresh_ms = self.refresh_ms;
        let entry = self.entries.entry(player.clone()).or_default();
        entry.last_fetched_at = Some(now);
        entry.last_outcome = Some(outcome);
        entry.refetch_at = Some(now.saturating_add(wait_ms.unwrap_or(refresh_ms).max(0)));
        self.dirty = true;
    }

    fn is_tracked(&self, entry: &Entry, now: i64) -> bool {
        entry.configured
            || entry
                .last_viewed_at
                .is_some_and(|v| now.saturating_sub(v) < self.untrack_ms)
    }

    fn entry_is_fresh(entry: &Entry, now: i64) -> bool {
        entry.refetch_at.is_some_and(|r| now < r)
    }

    /// Whether the last answer about `player` is still fresh at `now`.
    pub(crate) fn is_fresh(&self, player: &PlayerId, now: i64) -> bool {
        self.entries
            .get(player)
            .is_some_and(|e| Self::entry_is_fresh(e, now))
    }

    /// When a tracked entry is due; `None` when not tracked.
    fn due_at(&self, entry: &Entry, now: i64) -> Option<i64> {
        if !self.is_tracked(entry, now) {
            return None;
        }
        let base = match (entry.last_fetched_at, entry.configured) {
            (Some(fetched), _) => Some(fetched),
            (None, true) => None,
            (None, false) => entry.last_viewed_at,
        };
        Some(match base {
            None => i64::MIN,
            Some(base) => base
                .saturating_add(self.refresh_ms)
                .max(entry.refetch_at.unwrap_or(i64::MIN)),
        })
    }

    /// The tracked players due at `now`, the longest-waiting first.
    pub(crate) fn due(&self, now: i64) -> Vec<PlayerId> {
        let mut due: Vec<(i64, &PlayerId)> = self
            .entries
            .iter()
            .filter_map(|(p, e)| self.due_at(e, now).map(|at| (at, p)))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        due.into_iter().map(|(_, p)| p.clone()).collect()
    }

    /// Forgets the players that are neither tracked nor fresh; returns how many.
    pub(crate) fn sweep(&mut self, now: i64) -> usize {
        let before = self.entries.len();
        let untrack_ms = self.untrack_ms;
        self.entries.retain(|_, e| {
            let tracked = e.configured
                || e.last_viewed_at
                    .is_some_and(|v| now.saturating_sub(v) < untrack_ms);
            tracked || Self::entry_is_fresh(e, now)
        });
        let removed = before - self.entries.len();
        if removed > 0 {
            self.dirty = true;
        }
        removed
    }

    /// How many players are tracked at `now`.
    pub(crate) fn tracked_count(&self, now: i64) -> usize {
        self.entries
            .values()
            .filter(|e| self.is_tracked(e, now))
            .count()
    }

    /// The players tracked at `now`, by player id.
    pub(crate) fn tracked(&self, now: i64) -> Vec<TrackedPlayer> {
        let mut out: Vec<TrackedPlayer> = self
            .entries
            .iter()
            .filter_map(|(player, e)| {
                let due = self.due_at(e, now)?;
                Some(TrackedPlayer {
                    player_id: player.clone(),
                    configured: e.configured,
                    last_viewed_at: e.last_viewed_at,
                    last_fetched_at: e.last_fetched_at,
                    last_outcome: e.last_outcome,
                    next_refresh_at: (due != i64::MIN).then_some(due),
                })
            })
            .collect();
        out.sort_by(|a, b| a.player_id.cmp(&b.player_id));
        out
    }
}

/// The state file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    /// The format; this is version 1.
    version: u32,
    /// The consumer group whose committed offsets this state reflects.
    tracker_group: String,
    /// Every player known, by id.
    players: BTreeMap<PlayerId, Entry>,
}

const VERSION: u32 = 1;

/// What a state file says.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) tracker_group: String,
    pub(crate) players: BTreeMap<PlayerId, Entry>,
}

/// `<state dir>/<application id>/tracked-players.json`.
#[derive(Clone, Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub(crate) fn new(state_dir: &Path, application_id: &str) -> StateFile {
        StateFile {
            path: state_dir.join(application_id).join("tracked-players.json"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or `None` when there is no file.
    pub(crate) fn load(&self) -> Result<Option<Loaded>, ProducerError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ProducerError::State {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| ProducerError::CorruptState {
            path: self.path.clone(),
            reason,
        };
        let snapshot: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if snapshot.version != VERSION {
            return Err(corrupt(format!(
                "format version {}, this producer reads {VERSION}",
                snapshot.version
            )));
        }
        if snapshot.tracker_group.is_empty() {
            return Err(corrupt("no tracker group".into()));
        }
        Ok(Some(Loaded {
            tracker_group: snapshot.tracker_group,
            players: snapshot.players,
        }))
    }

    /// Writes the state atomically: a temporary file, fsync, rename, fsync of the directory.
    pub(crate) async fn save(
        &self,
        tracker_group: &str,
        players: BTreeMap<PlayerId, Entry>,
    ) -> Result<(), ProducerError> {
        let snapshot = Snapshot {
            version: VERSION,
            tracker_group: tracker_group.to_owned(),
            players,
        };
        let path = self.path.clone();
        let state_error = |source| ProducerError::State {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| state_error(e.into()))?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| ProducerError::Stopped {
                reason: format!("state file writer: {e}"),
            })?
            .map_err(state_error)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable where the platform allows opening a directory.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn id(s: &str) -> PlayerId {
        PlayerId::parse(s).unwrap()
    }

    fn book() -> Book {
        Book::new(Duration::from_secs(600), Duration::from_secs(3600))
    }

    #[test]
    fn configured_players_are_due_at_once_and_requested_ones_after_a_refresh_interval() {
        let mut b = book();
        b.configure(&[id("Conf-1111")]);
        b.viewed(&id("Req-2222"), 0);
        assert_eq!(b.due(0), vec![id("Conf-1111")]);
        assert_eq!(b.tracked_count(0), 2);
        assert_eq!(b.due(10 * MIN), vec![id("Conf-1111"), id("Req-2222")]);
    }

    #[test]
    fn a_fetch_waits_for_the_refresh_interval_and_overfasts_cache() {
        let mut b = book();
        let p = id("Req-2222");
        b.viewed(&p, 0);
        // Fresh for 15 minutes (OverFast's cache), refreshed every 10.
        b.fetched(&p, 0, FetchOutcome::Ok, Some(15 * MIN));
        assert!(b.is_fresh(&p, 14 * MIN));
        assert!(b.due(14 * MIN).is_empty());
        assert_eq!(b.due(15 * MIN), vec![p.clone()]);
        // A short cache: the refresh interval decides.
        b.fetched(&p, 20 * MIN, FetchOutcome::Ok, Some(MIN));
        assert!(!b.is_fresh(&p, 21 * MIN));
        assert!(b.due(29 * MIN).is_empty());
        assert_eq!(b.due(30 * MIN), vec![p.clone()]);
        // No cache headers: fresh for one refresh interval.
        b.fetched(&p, 40 * MIN, FetchOutcome::Private, None);
        assert!(b.is_fresh(&p, 49 * MIN));
        assert!(!b.is_fresh(&p, 50 * MIN));
        // A failure is never fresh, but the schedule still waits a refresh interval.
        b.fetched(&p, 50 * MIN, FetchOutcome::UpstreamError, Some(0));
        assert!(!b.is_fresh(&p, 50 * MIN));
        assert!(b.due(59 * MIN).is_empty());
    }

    #[test]
    fn players_not_asked_for_stop_being_tracked_and_are_forgotten_once_stale() {
        let mut b = book();
        let p = id("Req-2222");
        b.configure(&[id("Conf-1111")]);
        b.viewed(&p, 0);
        b.fetched(&p, 55 * MIN, FetchOutcome::Ok, Some(10 * MIN));
        assert_eq!(b.tracked_count(59 * MIN), 2);
        assert_eq!(b.tracked_count(60 * MIN), 1);
        assert!(b.due(70 * MIN).iter().all(|d| *d != p));
        // Still fresh at 60 min: kept to answer views.
        assert_eq!(b.sweep(60 * MIN), 0);
        assert_eq!(b.sweep(65 * MIN), 1);
        assert_eq!(b.tracked(65 * MIN).len(), 1);
        // Configured players are never forgotten.
        assert_eq!(b.sweep(1_000 * MIN), 0);
        // A view tracks the player again, and an older view does not move the time back.
        b.viewed(&p, 2_000 * MIN);
        b.viewed(&p, 1_000 * MIN);
        assert_eq!(b.tracked(2_000 * MIN)[1].last_viewed_at, Some(2_000 * MIN));
    }

    #[test]
    fn refetch_waits_come_from_the_raw_event() {
        let mut raw = RawPlayerProfile {
            request_id: "r".into(),
            player_id: "A-1234".into(),
            fetched_at: 1_000_000,
            request_url: String::new(),
            http_status: Some(200),
            outcome: FetchOutcome::Ok,
            body: None,
            cache_max_age_secs: Some(600),
            cache_age_secs: Some(100),
            error: None,
            attempts: 1,
            next_attempt_at: None,
        };
        assert_eq!(refetch_wait_ms(&raw), Some(500_000));
        raw.cache_max_age_secs = None;
        assert_eq!(refetch_wait_ms(&raw), None);
        raw.outcome = FetchOutcome::NotFound;
        raw.next_attempt_at = Some(1_600_000);
        assert_eq!(refetch_wait_ms(&raw), Some(600_000));
        raw.outcome = FetchOutcome::UpstreamError;
        assert_eq!(refetch_wait_ms(&raw), Some(0));
    }

    #[tokio::test]
    async fn the_state_file_round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "ow-producer");
        assert!(file.load().unwrap().is_none());
        let mut b = book();
        b.configure(&[id("Conf-1111")]);
        b.viewed(&id("Jöhn-1234"), 5);
        b.fetched(&id("Jöhn-1234"), 7, FetchOutcome::NotFound, Some(600_000));
        assert!(b.take_dirty());
        assert!(!b.take_dirty());
        file.save("ow-producer-tracker-1", b.entries())
            .await
            .unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.tracker_group, "ow-producer-tracker-1");
        let mut again = book();
        again.configure(&[id("Conf-1111")]);
        again.load(loaded.players);
        assert_eq!(again.tracked(10), b.tracked(10));
        assert!(again.is_fresh(&id("Jöhn-1234"), 10));

        std::fs::write(
            file.path(),
            br#"{"version":1,"tracker_group":"g","players":{"../etc":{}}}"#,
        )
        .unwrap();
        assert!(matches!(
            file.load(),
            Err(ProducerError::CorruptState { .. })
        ));
        std::fs::write(file.path(), b"{").unwrap();
        assert!(matches!(
            file.load(),
            Err(ProducerError::CorruptState { .. })
        ));
    }
}
