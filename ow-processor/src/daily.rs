//! `ow.stats.daily`: a player's gains per UTC day, per platform and game mode.
//!
//! The topology windows `ow.stats.deltas` into tumbling UTC days ([`DAY_MS`], starting at
//! midnight UTC, grace [`GRACE_MS`]) by the delta's `snapshot_at`, groups by (player, platform,
//! game mode) and folds with [`add_delta`] from [`DailyStats::default`].
//!
//! # Why `snapshot_at` and not `last_updated_at`
//! A delta is what was seen between two fetches; `snapshot_at` is when it was seen. Blizzard's
//! `last_updated_at` can be hours before the fetch, so with a one-hour grace, deltas of a player
//! fetched the next morning would be dropped as late.
//!
//! # Only `all-heroes`
//! [`crate::compute_deltas`] emits an `all-heroes` delta *and* one per hero played: summing both
//! would count every game twice (or more). [`add_delta`] sums only `all-heroes` deltas and
//! ignores the others, so the topology may feed it every delta.

use ow_domain::hero::ALL_HEROES;
use ow_domain::{DailyStats, StatsDelta};

/// Length of a window: one day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// How long after its end a day still accepts deltas: one hour, in milliseconds.
pub const GRACE_MS: i64 = 3_600_000;

/// The UTC day containing `timestamp_ms`: `(start inclusive, end exclusive)`, in milliseconds
/// since the epoch (saturating at the ends of the `i64` range instead of overflowing).
///
/// ```
/// // 2023-11-14T22:13:20Z is in the day starting 2023-11-14T00:00:00Z.
/// assert_eq!(
///     ow_processor::day_window(1_700_000_000_000),
///     (1_699_920_000_000, 1_700_006_400_000)
/// );
/// ```
pub fn day_window(timestamp_ms: i64) -> (i64, i64) {
    let start = timestamp_ms.saturating_sub(timestamp_ms.rem_euclid(DAY_MS));
    (start, start.saturating_add(DAY_MS))
}

/// Adds an `all-heroes` delta to a day's sums; any other delta returns `acc` unchanged.
///
/// An empty accumulator ([`DailyStats::default`], empty `player_id`) takes the player, platform,
/// game mode and [`day_window`] of `delta.snapshot_at` from its first delta, so this works with
/// an initializer that does not see the key. A delta of another player, platform or mode than a
/// non-empty `acc` is ignored (the topology groups by them, so that means a wiring mistake, not
/// data to add). The window is not checked further: assigning deltas to days is the window's
/// job.
///
/// ```
/// use ow_processor::add_delta;
/// use ow_domain::{DailyStats, StatsDelta};
///
/// let delta = StatsDelta {
///     player_id: "Someone-1234".into(),
///     platform: "pc".into(),
///     gamemode: "competitive".into(),
///     hero: "all-heroes".into(),
///     snapshot_at: 1_700_000_000_000,
///     games_played: 3.0,
///     ..StatsDelta::default()
/// };
/// let day = add_delta(add_delta(DailyStats::default(), &delta), &delta);
/// assert_eq!(day.games_played, 6.0);
/// assert_eq!(day.window_start, 1_699_920_000_000);
/// assert_eq!(day.delta_count, 2);
/// ```
pub fn add_delta(mut acc: DailyStats, delta: &StatsDelta) -> DailyStats {
    if delta.hero != ALL_HEROES {
        return acc;
    }
    if acc.player_id.is_empty() {
        let (window_start, window_end) = day_window(delta.snapshot_at);
        acc.player_id.clone_from(&delta.player_id);
        acc.platform.clone_from(&delta.platform);
        acc.gamemode.clone_from(&delta.gamemode);
        acc.window_start = window_start;
        acc.window_end = window_end;
    } else if acc.player_id != delta.player_id
        || acc.platform != delta.platform
        || acc.gamemode != delta.gamemode
    {
        return acc;
    }
    acc.games_played += delta.games_played;
    acc.games_won += delta.games_won;
    acc.games_lost += delta.games_lost;
    acc.time_played += delta.time_played;
    acc.eliminations += delta.eliminations;
    acc.deaths += delta.deaths;
    acc.damage += delta.damage;
    acc.healing += delta.healing;
    acc.delta_count = acc.delta_count.saturating_add(1);
    acc.last_snapshot_at = acc.last_snapshot_at.max(delta.snapshot_at);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_windows_are_utc_days() {
        assert_eq!(day_window(0), (0, DAY_MS));
        assert_eq!(day_window(DAY_MS - 1), (0, DAY_MS));
        assert_eq!(day_window(DAY_MS), (DAY_MS, 2 * DAY_MS));
        assert_eq!(day_window(-1), (-DAY_MS, 0));
        let (start, end) = day_window(i64::MAX);
        assert_eq!((start % DAY_MS, end), (0, i64::MAX));
        assert_eq!(day_window(i64::MIN), (i64::MIN, i64::MIN + DAY_MS));
    }

    fn delta(hero: &str, player: &str) -> StatsDelta {
        StatsDelta {
            player_id: player.into(),
            platform: "pc".into(),
            gamemode: "quickplay".into(),
            hero: hero.into(),
            snapshot_at: 5 * DAY_MS + 10,
            games_played: 1.0,
            ..StatsDelta::default()
        }
    }

    #[test]
    fn only_all_heroes_of_the_same_key_count() {
        let acc = add_delta(DailyStats::default(), &delta("ana", "A-1"));
        assert_eq!(acc, DailyStats::default());
        let acc = add_delta(acc, &delta(ALL_HEROES, "A-1"));
        assert_eq!(
            (acc.games_played, acc.window_start, acc.window_end),
            (1.0, 5 * DAY_MS, 6 * DAY_MS)
        );
        let acc = add_delta(acc, &delta(ALL_HEROES, "B-2"));
        assert_eq!(
            (acc.player_id.as_str(), acc.games_played, acc.delta_count),
            ("A-1", 1.0, 1)
        );
        assert_eq!(acc.last_snapshot_at, 5 * DAY_MS + 10);
    }
}
