//! What a stat key says about its value: its [`StatUnit`], and whether it adds up.
//!
//! Nothing here lists stats: the unit is read from the words of the key (split on `_`, empty
//! words ignored, ASCII case ignored), so a stat Blizzard adds tomorrow gets a unit too.
//!
//! # Unit rules, first match wins
//! | # | rule | unit | examples |
//! |---|---|---|---|
//! | 1 | ends with the words `avg per 10 min` | [`StatUnit::Per10Min`] | `eliminations_avg_per_10_min`, `objective_time_avg_per_10_min`, `biotic_orb_kills__avg_per_10_min` |
//! | 2 | contains `percentage`, `accuracy` or `efficiency` | [`StatUnit::Percent`] | `win_percentage`, `weapon_accuracy_best_in_game`, `ally_coalescence_efficiency` |
//! | 3 | ends with the words `per life`, or has the word `kda` | [`StatUnit::Ratio`] | `eliminations_per_life`, `kda` |
//! | 4 | has the word `time` (so `time_played` too) | [`StatUnit::Seconds`] | `time_played`, `objective_contest_time`, `time_spent_on_fire` |
//! | 5 | anything else | [`StatUnit::Count`] | `eliminations`, `games_won`, `cards` |
//!
//! Why this order: a rate of a duration (`objective_time_avg_per_10_min`) is a rate first, so
//! rule 1 beats rule 4; an accuracy or percentage is a percent whatever else it names, so rule 2
//! beats 3 and 4; a per-life rate of a duration would still be a ratio, so 3 beats 4. Rule 2 adds
//! `efficiency` to the brief's `percentage` and `accuracy`: Blizzard's `*_efficiency` stats
//! (Moira's coalescence) are percentages (`45` means 45 %).
//!
//! # Additive stats
//! [`is_additive`] tells whether two snapshots' values may be subtracted to get what was played
//! in between: counts and seconds are, except records (`best`, `most` — `kill_streak_best`,
//! `eliminations_most_in_game`, `weapon_accuracy_best_in_game`) and averages (`avg`,
//! `average` — `average_energy`), which are counts or seconds by unit but do not add up.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::StatUnit;

/// How many keys each thread remembers the reading of. OverFast names a few hundred stats; past
/// this, keys are read again each time (a stream of made-up keys cannot grow memory).
const REMEMBERED_KEYS: usize = 8192;

thread_local! {
    /// Each key's unit and additivity, read once per thread: the processor asks for them of
    /// every stat of every snapshot, and reading the words of a key is a dozen passes over it.
    static READINGS: RefCell<HashMap<Box<str>, (StatUnit, bool)>> = RefCell::new(HashMap::new());
}

/// The unit and additivity of `key`, remembered.
fn reading(key: &str) -> (StatUnit, bool) {
    READINGS.with(|readings| {
        if let Some(found) = readings.borrow().get(key) {
            return *found;
        }
        let unit = read_unit(key);
        let found = (unit, read_additive(unit, key));
        let mut readings = readings.borrow_mut();
        if readings.len() < REMEMBERED_KEYS {
            readings.insert(key.into(), found);
        }
        found
    })
}

/// The unit of a stat, from its key (see the [module docs](self) for the rules and their order).
///
/// ```
/// use ow_domain::units::unit_of;
/// use ow_domain::StatUnit;
///
/// assert_eq!(unit_of("time_played"), StatUnit::Seconds);
/// assert_eq!(unit_of("objective_time_avg_per_10_min"), StatUnit::Per10Min);
/// assert_eq!(unit_of("weapon_accuracy"), StatUnit::Percent);
/// assert_eq!(unit_of("eliminations_per_life"), StatUnit::Ratio);
/// assert_eq!(unit_of("eliminations"), StatUnit::Count);
/// ```
pub fn unit_of(key: &str) -> StatUnit {
    reading(key).0
}

fn read_unit(key: &str) -> StatUnit {
    if ends_with_words(key, &["avg", "per", "10", "min"]) {
        StatUnit::Per10Min
    } else if ["percentage", "accuracy", "efficiency"]
        .iter()
        .any(|part| contains(key, part))
    {
        StatUnit::Percent
    } else if ends_with_words(key, &["per", "life"]) || has_word(key, "kda") {
        StatUnit::Ratio
    } else if has_word(key, "time") {
        StatUnit::Seconds
    } else {
        StatUnit::Count
    }
}

/// Whether a stat adds up over games, so that the difference of two snapshots is what was
/// played in between: a count or seconds that is neither a record (`best`, `most`) nor an
/// average (`avg`, `average`).
///
/// ```
/// use ow_domain::units::is_additive;
///
/// assert!(is_additive("eliminations"));
/// assert!(is_additive("time_played"));
/// assert!(!is_additive("eliminations_most_in_game"));
/// assert!(!is_additive("kill_streak_best"));
/// assert!(!is_additive("win_percentage"));
/// assert!(!is_additive("deaths_avg_per_10_min"));
/// ```
pub fn is_additive(key: &str) -> bool {
    reading(key).1
}

fn read_additive(unit: StatUnit, key: &str) -> bool {
    matches!(unit, StatUnit::Count | StatUnit::Seconds)
        && !["best", "most", "avg", "average"]
            .iter()
            .any(|word| has_word(key, word))
}

fn words(key: &str) -> impl DoubleEndedIterator<Item = &str> {
    key.split('_').filter(|word| !word.is_empty())
}

fn has_word(key: &str, word: &str) -> bool {
    words(key).any(|w| w.eq_ignore_ascii_case(word))
}

fn ends_with_words(key: &str, suffix: &[&str]) -> bool {
    let mut last = words(key).rev();
    suffix
        .iter()
        .rev()
        .all(|want| last.next().is_some_and(|w| w.eq_ignore_ascii_case(want)))
}

fn contains(key: &str, part: &str) -> bool {
    key.as_bytes()
        .windows(part.len())
        .any(|w| w.eq_ignore_ascii_case(part.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn unit(key: &str, want: StatUnit) {
        assert_eq!(unit_of(key), want, "{key}");
    }

    #[test]
    fn readings_are_remembered_up_to_a_bound() {
        for i in 0..REMEMBERED_KEYS + 100 {
            let key = format!("made_up_{i}_time");
            // The first reading is made, the second remembered (or made again past the bound).
            assert_eq!(unit_of(&key), StatUnit::Seconds, "{key}");
            assert_eq!(unit_of(&key), StatUnit::Seconds, "{key}");
            assert!(is_additive(&key), "{key}");
        }
        READINGS.with(|readings| assert_eq!(readings.borrow().len(), REMEMBERED_KEYS));
        assert_eq!(unit_of("eliminations_avg_per_10_min"), StatUnit::Per10Min);
        assert!(!is_additive("eliminations_avg_per_10_min"));
    }

    #[test]
    fn rule_1_per_10_min() {
        unit("eliminations_avg_per_10_min", StatUnit::Per10Min);
        unit("hero_damage_done_avg_per_10_min", StatUnit::Per10Min);
        // Blizzard's double underscore still matches.
        unit("biotic_orb_kills__avg_per_10_min", StatUnit::Per10Min);
        // Only as a suffix.
        unit("avg_per_10_min_kills", StatUnit::Count);
    }

    #[test]
    fn rule_2_percent() {
        unit("win_percentage", StatUnit::Percent);
        unit("inspire_uptime_percentage", StatUnit::Percent);
        unit("weapon_accuracy", StatUnit::Percent);
        unit("critical_hit_accuracy", StatUnit::Percent);
        unit("scoped_accuracy_best_in_game", StatUnit::Percent);
        unit("ally_coalescence_efficiency", StatUnit::Percent);
    }

    #[test]
    fn rule_3_ratio() {
        unit("eliminations_per_life", StatUnit::Ratio);
        unit("kda", StatUnit::Ratio);
        unit("KDA", StatUnit::Ratio);
        unit("all_damage_done_most_in_life", StatUnit::Count);
    }

    #[test]
    fn rule_4_seconds() {
        unit("time_played", StatUnit::Seconds);
        unit("objective_time", StatUnit::Seconds);
        unit("obj_contest_time", StatUnit::Seconds);
        unit("objective_contest_time_most_in_game", StatUnit::Seconds);
        unit("time_spent_on_fire", StatUnit::Seconds);
        // A word, not a substring.
        unit("overtime_kills", StatUnit::Count);
    }

    #[test]
    fn rule_5_count() {
        for key in [
            "eliminations",
            "games_won",
            "game_tied",
            "cards",
            "multikill_best",
            "x",
            "",
        ] {
            unit(key, StatUnit::Count);
        }
    }

    #[test]
    fn precedence() {
        // 1 before 4: a rate of a duration.
        unit("objective_time_avg_per_10_min", StatUnit::Per10Min);
        unit("time_spent_on_fire_avg_per_10_min", StatUnit::Per10Min);
        // 1 before 2.
        unit("accuracy_avg_per_10_min", StatUnit::Per10Min);
        // 2 before 3 and 4.
        unit("accuracy_per_life", StatUnit::Percent);
        unit("time_percentage", StatUnit::Percent);
        // 3 before 4.
        unit("objective_time_per_life", StatUnit::Ratio);
    }

    #[test]
    fn additivity() {
        for key in [
            "eliminations",
            "time_played",
            "games_played",
            "hero_wins",
            "cards",
            "game_tied",
        ] {
            assert!(is_additive(key), "{key}");
        }
        for key in [
            "eliminations_most_in_game",
            "all_damage_done_most_in_life",
            "kill_streak_best",
            "multikill_best",
            "objective_time_most_in_game",
            "average_energy",
            "weapon_accuracy",
            "eliminations_per_life",
            "healing_done_avg_per_10_min",
        ] {
            assert!(!is_additive(key), "{key}");
        }
    }
}
