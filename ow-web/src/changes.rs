//! Which players' data changed in the web's stores: a version per player, bumped by the
//! materialization topology right after each write to one of the player's stores, and a
//! [`watch`] channel that wakes whoever waits for a change.
//!
//! Two things hang on it:
//!
//! * the page cache of the player page (a rendered page is kept under the version of its
//!   player, and is not served once the version moved), and
//! * the long-poll of the status endpoint (`GET /api/players/{id}/status?version=…`), which
//!   answers as soon as the player's look-up state differs from the one the page shows.
//!
//! A version moves *after* the store write it stands for (the topology calls
//! [`StoreChanges::changed`] from a node downstream of the store, and the web's stores have no
//! record cache, so that node runs in the same step as the write): whoever reads a version and
//! then the stores sees data at least as new as that version. A page rendered from data newer
//! than the version it is kept under is replaced at the next change, never served stale.
//!
//! The versions live in memory: they start again at a restart, with an empty page cache.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Players whose versions are kept one by one. Past that many, every player's version becomes
/// the newest one (which invalidates every cached page once) and the count starts again.
const TRACKED_PLAYERS: usize = 65_536;

/// The version of each player's data in the web's stores. Cheap to clone (one `Arc`).
///
/// ```
/// use ow_web::StoreChanges;
///
/// let changes = StoreChanges::new();
/// let mut woken = changes.subscribe();
/// let before = changes.version("TeKrop-2217");
/// changes.changed("TeKrop-2217");
/// assert_ne!(changes.version("TeKrop-2217"), before);
/// assert_eq!(changes.version("Someone-1234"), before, "other players keep theirs");
/// assert!(woken.has_changed().unwrap());
/// ```
#[derive(Clone)]
pub struct StoreChanges {
    inner: Arc<Inner>,
}

struct Inner {
    versions: Mutex<Versions>,
    /// The newest version handed out, sent to every waiter.
    latest: watch::Sender<u64>,
}

#[derive(Default)]
struct Versions {
    /// The version of each player changed since the last reset.
    players: HashMap<String, u64>,
    /// The version of every player not in `players`: the newest version when they were last
    /// reset (0 at start).
    floor: u64,
    /// The newest version handed out.
    latest: u64,
}

impl Default for StoreChanges {
    fn default() -> Self {
        StoreChanges::new()
    }
}

impl StoreChanges {
    /// No change seen yet: every player is at version 0.
    pub fn new() -> StoreChanges {
        StoreChanges {
            inner: Arc::new(Inner {
                versions: Mutex::new(Versions::default()),
                latest: watch::channel(0).0,
            }),
        }
    }

    /// Records that the data of `player_id` changed (call it after the store write), and
    /// wakes the waiters.
    pub fn changed(&self, player_id: &str) {
        let latest = {
            let mut v = self.inner.versions.lock();
            v.latest += 1;
            let latest = v.latest;
            if !v.players.contains_key(player_id) && v.players.len() >= TRACKED_PLAYERS {
                v.players.clear();
                v.floor = latest;
            } else {
                v.players.insert(player_id.to_owned(), latest);
            }
            latest
        };
        self.inner.latest.send_replace(latest);
    }

    /// The version of the data of `player_id`: it differs from every earlier one read for the
    /// player whenever their data changed in between.
    pub fn version(&self, player_id: &str) -> u64 {
        let v = self.inner.versions.lock();
        v.players.get(player_id).copied().unwrap_or(v.floor)
    }

    /// A receiver that is woken at every change (of any player: compare
    /// [`version`](Self::version) to tell whether one's own changed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_per_player_and_survive_a_reset() {
        let c = StoreChanges::new();
        c.changed("a");
        let a = c.version("a");
        let b = c.version("b");
        c.changed("b");
        assert_eq!(c.version("a"), a);
        assert_ne!(c.version("b"), b);
        // Past the bound every player moves to the newest version, none goes back.
        for i in 0..TRACKED_PLAYERS {
            c.changed(&format!("p{i}"));
        }
        assert!(c.version("a") > a);
        let after = c.version("a");
        c.changed("x");
        assert!(c.version("x") > after);
        assert_eq!(c.version("a"), after);
    }
}
