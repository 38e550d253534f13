//! How numbers, times and OverFast keys read on a page.
//!
//! | unit | format | example |
//! |---|---|---|
//! | seconds | hours and minutes, or minutes and seconds | `12h 34m`, `4m 05s`, `42s` |
//! | percent | whole percent | `45%` |
//! | count | whole below 1 000, then `k`, `M`, `B` with one decimal | `950`, `1.2k`, `12k`, `3.4M` |
//! | per 10 min | one decimal, thousands grouped | `9.1`, `7,289.0` |
//! | ratio | two decimals | `1.63` |
//!
//! Values that are not finite read `—`.

use ow_domain::StatUnit;
use ow_domain::hero::ALL_HEROES;

/// Shown for values that are not numbers.
pub(crate) const MISSING: &str = "—";

/// Strips a trailing `.0` from a one-decimal number.
fn trim_zero(s: String) -> String {
    match s.strip_suffix(".0") {
        Some(t) => t.to_owned(),
        None => s,
    }
}

/// `1234567` → `1,234,567` (the integer part of `digits`, which may carry a sign and decimals).
fn group_thousands(digits: &str) -> String {
    let (sign, rest) = match digits.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", digits),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(digits.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An integer with thousands grouped: `1,234,567`.
pub(crate) fn integer(v: impl std::fmt::Display) -> String {
    group_thousands(&v.to_string())
}

/// A count: `950`, `4.5`, `1.2k`, `12k`, `3.4M`, `1.1B`.
pub(crate) fn count(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.into();
    }
    let a = v.abs();
    if a < 999.95 {
        trim_zero(format!("{v:.1}"))
    } else if a < 999_950.0 {
        format!("{}k", trim_zero(format!("{:.1}", v / 1e3)))
    } else if a < 999_950_000.0 {
        format!("{}M", trim_zero(format!("{:.1}", v / 1e6)))
    } else {
        format!("{}B", trim_zero(format!("{:.1}", v / 1e9)))
    }
}

/// A duration in seconds: `12h 34m`, `4m 05s`, `42s`.
pub(crate) fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return MISSING.into();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    // Rounded to whole seconds; saturating cast for absurd values.
    let s = seconds.abs().round() as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h {m:02}m")
    } else if m > 0 {
        format!("{sign}{m}m {sec:02}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// A percentage between 0 and 100: `45%`.
pub(crate) fn percent(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.into();
    }
    format!("{v:.0}%")
}

/// An average per 10 minutes: one decimal, thousands grouped (`9.1`, `7,289.0`).
pub(crate) fn per_10_min(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.into();
    }
    group_thousands(&format!("{v:.1}"))
}

/// A ratio: two decimals (`1.63`).
pub(crate) fn ratio(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.into();
    }
    format!("{v:.2}")
}

/// A stat's value in its unit.
pub(crate) fn stat(v: f64, unit: StatUnit) -> String {
    match unit {
        StatUnit::Count => count(v),
        StatUnit::Seconds => duration(v),
        StatUnit::Percent => percent(v),
        StatUnit::Per10Min => per_10_min(v),
        StatUnit::Ratio => ratio(v),
    }
}

/// Which way a value moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Went up.
    Up,
    /// Went down.
    Down,
}

impl Direction {
    /// A CSS class name.
    pub(crate) fn class(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A change: `▲ 3`, `▼ 1h 05m`; `None` when there is none.
pub(crate) fn delta(v: f64, unit: StatUnit) -> Option<(Direction, String)> {
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    let (direction, arrow) = if v > 0.0 {
        (Direction::Up, '▲')
    } else {
        (Direction::Down, '▼')
    };
    Some((direction, format!("{arrow} {}", stat(v.abs(), unit))))
}

/// The civil date of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn split_ms(ms: i64) -> ((i64, u32, u32), i64) {
    let day = ms.div_euclid(86_400_000);
    (civil_from_days(day), ms.rem_euclid(86_400_000) / 1000)
}

/// `2024-01-01 10:05 UTC`.
pub(crate) fn datetime(ms: i64) -> String {
    let ((y, m, d), secs) = split_ms(ms);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// `10:05:09 UTC`.
pub(crate) fn time_of_day(ms: i64) -> String {
    let (_, secs) = split_ms(ms);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// `2024-01-01T10:05:09Z`, for `<time datetime>`.
pub(crate) fn iso8601(ms: i64) -> String {
    let ((y, m, d), secs) = split_ms(ms);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// `Jan 1`, for chart axes.
pub(crate) fn day_label(ms: i64) -> String {
    let ((_, m, d), _) = split_ms(ms);
    let month = MONTHS.get(m as usize - 1).copied().unwrap_or("?");
    format!("{month} {d}")
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// How long ago (or how far ahead) `ms` is from `now`: `just now`, `5 minutes ago`,
/// `in 2 hours`, `3 days ago`.
pub(crate) fn relative(ms: i64, now: i64) -> String {
    let diff = now.saturating_sub(ms);
    let secs = diff.unsigned_abs() / 1000;
    if secs < 60 {
        return "just now".into();
    }
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let text = if secs < 3600 {
        plural(secs / 60, "minute")
    } else if secs < 48 * 3600 {
        plural(secs / 3600, "hour")
    } else {
        plural(secs / 86_400, "day")
    };
    if diff >= 0 {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// `games_played` → `Games played`.
pub(crate) fn humanize(key: &str) -> String {
    let words: Vec<&str> = key.split(['_', '-']).filter(|w| !w.is_empty()).collect();
    let mut out = words.join(" ");
    if let Some(first) = out.chars().next() {
        let upper: String = first.to_uppercase().collect();
        out.replace_range(..first.len_utf8(), &upper);
    }
    out
}

/// A stat's label for a card, and the unit caption under it: the label OverFast sent (or the
/// key, humanized, when it sent none), without the `- Avg per 10 Min` suffix that the caption
/// says instead.
pub(crate) fn stat_label(key: &str, label: &str, unit: StatUnit) -> (String, Option<&'static str>) {
    let label = label.trim();
    let base = if label.is_empty() || label == key {
        humanize(key)
    } else {
        label.to_owned()
    };
    match unit {
        StatUnit::Per10Min => {
            let lower = base.to_ascii_lowercase();
            let cut = lower
                .rfind(" - avg per 10 min")
                .or_else(|| lower.rfind(" avg per 10 min"))
                .unwrap_or(base.len());
            (base[..cut].trim_end().to_owned(), Some("per 10 min"))
        }
        StatUnit::Percent => (base, Some("%")),
        StatUnit::Seconds => (base, Some("time")),
        StatUnit::Ratio => (base, Some("ratio")),
        StatUnit::Count => (base, None),
    }
}

/// A hero's display name: `soldier-76` → `Soldier: 76`, `dva` → `D.Va`.
pub(crate) fn hero_name(key: &str) -> String {
    match key {
        ALL_HEROES => "All heroes".into(),
        "dva" => "D.Va".into(),
        "lucio" => "Lúcio".into(),
        "torbjorn" => "Torbjörn".into(),
        "soldier-76" => "Soldier: 76".into(),
        "junker-queen" => "Junker Queen".into(),
        "wrecking-ball" => "Wrecking Ball".into(),
        other => other
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `pc` → `PC`, `console` → `Console`.
pub(crate) fn platform_name(key: &str) -> String {
    match key {
        "pc" => "PC".into(),
        other => humanize(other),
    }
}

/// `quickplay` → `Quick Play`, `competitive` → `Competitive`.
pub(crate) fn mode_name(key: &str) -> String {
    match key {
        "quickplay" => "Quick Play".into(),
        other => humanize(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(7.0), "7");
        assert_eq!(count(4.5), "4.5");
        assert_eq!(count(950.0), "950");
        assert_eq!(count(999.96), "1k");
        assert_eq!(count(1_234.0), "1.2k");
        assert_eq!(count(12_000.0), "12k");
        assert_eq!(count(34_098.0), "34.1k");
        assert_eq!(count(999_960.0), "1M");
        assert_eq!(count(3_400_000.0), "3.4M");
        assert_eq!(count(1_100_000_000.0), "1.1B");
        assert_eq!(count(-1_500.0), "-1.5k");
        assert_eq!(count(f64::NAN), MISSING);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(45_240.0), "12h 34m");
        assert_eq!(duration(45_296.0), "12h 34m");
        assert_eq!(duration(3_600.0), "1h 00m");
        assert_eq!(duration(1_335_916.0), "371h 05m");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(-90.0), "-1m 30s");
        assert_eq!(duration(f64::INFINITY), MISSING);
    }

    #[test]
    fn percents_rates_ratios() {
        assert_eq!(percent(45.0), "45%");
        assert_eq!(percent(45.4), "45%");
        assert_eq!(percent(100.0), "100%");
        assert_eq!(per_10_min(9.11), "9.1");
        assert_eq!(per_10_min(7_289.0), "7,289.0");
        assert_eq!(per_10_min(1_234_567.25), "1,234,567.2");
        assert_eq!(per_10_min(-1_234.0), "-1,234.0");
        assert_eq!(integer(1_234_567u64), "1,234,567");
        assert_eq!(integer(-12i64), "-12");
        assert_eq!(integer(999), "999");
        assert_eq!(ratio(1.625_1), "1.63");
        assert_eq!(ratio(2.0), "2.00");
        assert_eq!(ratio(f64::NAN), MISSING);
    }

    #[test]
    fn stats_and_deltas() {
        assert_eq!(stat(2807.0, StatUnit::Seconds), "46m 47s");
        assert_eq!(stat(50.0, StatUnit::Percent), "50%");
        assert_eq!(stat(10.9, StatUnit::Per10Min), "10.9");
        assert_eq!(stat(1.63, StatUnit::Ratio), "1.63");
        assert_eq!(stat(34_098.0, StatUnit::Count), "34.1k");
        assert_eq!(
            delta(3.0, StatUnit::Count),
            Some((Direction::Up, "▲ 3".into()))
        );
        assert_eq!(
            delta(-3600.0, StatUnit::Seconds),
            Some((Direction::Down, "▼ 1h 00m".into()))
        );
        assert_eq!(delta(0.0, StatUnit::Count), None);
        assert_eq!(delta(f64::NAN, StatUnit::Count), None);
    }

    #[test]
    fn dates_and_times() {
        // 2024-01-01T00:00:00Z
        let jan1 = 1_704_067_200_000;
        assert_eq!(datetime(jan1), "2024-01-01 00:00 UTC");
        assert_eq!(datetime(jan1 + 36_300_000), "2024-01-01 10:05 UTC");
        assert_eq!(time_of_day(jan1 + 36_309_000), "10:05:09 UTC");
        assert_eq!(iso8601(jan1 + 36_309_000), "2024-01-01T10:05:09Z");
        assert_eq!(day_label(jan1), "Jan 1");
        // 2024-02-29 (leap day) and 1969-12-31.
        assert_eq!(day_label(jan1 + 59 * 86_400_000), "Feb 29");
        assert_eq!(datetime(-86_400_000), "1969-12-31 00:00 UTC");
        assert_eq!(datetime(1_678_536_999_000), "2023-03-11 12:16 UTC");
    }

    #[test]
    fn relative_times() {
        let now = 10_000_000_000;
        assert_eq!(relative(now - 30_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 minute ago");
        assert_eq!(relative(now - 5 * 60_000, now), "5 minutes ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(relative(now - 3 * 86_400_000, now), "3 days ago");
        assert_eq!(relative(now + 10 * 60_000, now), "in 10 minutes");
    }

    #[test]
    fn labels_and_names() {
        assert_eq!(humanize("games_played"), "Games played");
        assert_eq!(humanize("hero_specific"), "Hero specific");
        assert_eq!(
            stat_label(
                "eliminations_avg_per_10_min",
                "Eliminations - Avg per 10 Min",
                StatUnit::Per10Min
            ),
            ("Eliminations".to_string(), Some("per 10 min"))
        );
        assert_eq!(
            stat_label(
                "assists_avg_per_10_min",
                "assists_avg_per_10_min",
                StatUnit::Per10Min
            ),
            ("Assists".to_string(), Some("per 10 min"))
        );
        assert_eq!(
            stat_label("time_played", "Time Played", StatUnit::Seconds),
            ("Time Played".to_string(), Some("time"))
        );
        assert_eq!(
            stat_label("eliminations", "", StatUnit::Count),
            ("Eliminations".to_string(), None)
        );
        assert_eq!(hero_name("soldier-76"), "Soldier: 76");
        assert_eq!(hero_name("dva"), "D.Va");
        assert_eq!(hero_name("junker-queen"), "Junker Queen");
        assert_eq!(hero_name("ana"), "Ana");
        assert_eq!(hero_name("all-heroes"), "All heroes");
        assert_eq!(platform_name("pc"), "PC");
        assert_eq!(platform_name("console"), "Console");
        assert_eq!(mode_name("quickplay"), "Quick Play");
        assert_eq!(mode_name("competitive"), "Competitive");
    }
}
