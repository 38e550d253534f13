//! Hero keys.
//!
//! OverFast names heroes by key (`ana`, `soldier-76`, `junker-queen`…) and adds one key that is
//! not a hero, [`ALL_HEROES`], for the totals over every hero. No hero is listed here: a hero
//! Blizzard adds tomorrow passes through the pipeline under its key.

/// The hero key of the totals over every hero.
///
/// Its stats overlap every hero's: sum either the heroes or this one, never both.
///
/// ```
/// assert_eq!(ow_domain::hero::ALL_HEROES, "all-heroes");
/// ```
pub const ALL_HEROES: &str = "all-heroes";
