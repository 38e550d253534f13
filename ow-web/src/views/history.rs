//! History charts of a platform and game mode, from the daily series: games and win rate per
//! day, time played per day, KDA per day.

use maud::{Markup, html};
use ow_domain::DailyStats;

use super::chart::{self, Axis, Chart, Mark, Series};
use crate::format;

/// Days drawn at most (the latest ones).
pub(crate) const CHART_DAYS: usize = 30;

fn hours_tick(h: f64) -> String {
    format!("{}h", format::count(h))
}

fn hours_tooltip(h: f64) -> String {
    format::duration(h * 3600.0)
}

/// The charts of `days` (oldest first).
pub(crate) fn charts(days: &[&DailyStats]) -> Markup {
    let days = &days[days.len().saturating_sub(CHART_DAYS)..];
    let starts: Vec<i64> = days.iter().map(|d| d.window_start).collect();
    let games: Vec<Option<f64>> = days.iter().map(|d| Some(d.games_played)).collect();
    let win_rate: Vec<Option<f64>> = days
        .iter()
        .map(|d| (d.games_played > 0.0).then(|| d.games_won * 100.0 / d.games_played))
        .collect();
    let hours: Vec<Option<f64>> = days.iter().map(|d| Some(d.time_played / 3600.0)).collect();
    let kda: Vec<Option<f64>> = days
        .iter()
        .map(|d| match (d.eliminations, d.deaths) {
            (e, deaths) if deaths > 0.0 => Some(e / deaths),
            (e, _) if e > 0.0 => Some(e),
            _ => None,
        })
        .collect();
    html! {
        @if days.is_empty() {
            p.empty {
                "No daily history yet: it starts with the first change between two snapshots "
                "of this player."
            }
        } @else {
            div.charts {
                (chart::chart(&Chart {
                    id: "chart-games",
                    title: "Games and win rate per day",
                    days: &starts,
                    series: vec![
                        Series { name: "Games", class: "series-a", mark: Mark::Bars, axis: Axis::Left,
                            values: games, tick: format::count, tooltip: format::count, max: None },
                        Series { name: "Win rate", class: "series-b", mark: Mark::Line, axis: Axis::Right,
                            values: win_rate, tick: format::percent, tooltip: format::percent, max: Some(100.0) },
                    ],
                }))
                (chart::chart(&Chart {
                    id: "chart-time",
                    title: "Time played per day",
                    days: &starts,
                    series: vec![
                        Series { name: "Time played", class: "series-c", mark: Mark::Bars, axis: Axis::Left,
                            values: hours, tick: hours_tick, tooltip: hours_tooltip, max: None },
                    ],
                }))
                (chart::chart(&Chart {
                    id: "chart-kda",
                    title: "KDA per day",
                    days: &starts,
                    series: vec![
                        Series { name: "KDA", class: "series-d", mark: Mark::Line, axis: Axis::Left,
                            values: kda, tick: format::ratio, tooltip: format::ratio, max: None },
                    ],
                }))
                p.chart-note {
                    "Daily sums over all heroes (UTC days). KDA here is eliminations per death: "
                    "daily sums carry no assists."
                }
            }
        }
    }
}
