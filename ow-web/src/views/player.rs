//! `/players/{id}`: header, switches, one section of cards per category, the hero table and
//! the history charts; or what is known while (and after) the pipeline looks the player up.

use std::time::Duration;

use maud::{Markup, html};
use ow_domain::PlayerProfile;
use ow_domain::battletag::PlayerId;

use super::lookup::{self, Notice};
use super::{categories, hero_table, history, layout, player_header, switches};
use crate::career::{self, PlayerQuery, SortDir, SortKey};
use crate::format;
use crate::lookup::LookupStatus;
use crate::materialize::{PlayerDeltas, PlayerHistory, PlayerStats};

/// Seconds between reloads of a waiting page when JavaScript is off.
pub(crate) const NO_SCRIPT_REFRESH_SECS: u32 = 3;

/// Everything a player page shows.
pub(crate) struct PlayerPage<'a> {
    pub(crate) id: &'a PlayerId,
    pub(crate) profile: Option<&'a PlayerProfile>,
    pub(crate) stats: Option<&'a PlayerStats>,
    pub(crate) deltas: Option<&'a PlayerDeltas>,
    pub(crate) history: Option<&'a PlayerHistory>,
    pub(crate) status: &'a LookupStatus,
    pub(crate) query: &'a PlayerQuery,
    pub(crate) timeout: Duration,
    pub(crate) notice: Option<Notice>,
    pub(crate) now: i64,
}

/// The page.
pub(crate) fn page(p: &PlayerPage<'_>) -> Markup {
    let title = p.profile.and_then(|pr| pr.username.clone()).map_or_else(
        || p.id.battletag(),
        |name| format!("{name} ({})", p.id.battletag()),
    );
    let polling = p.status.polling();
    let selection = p.stats.and_then(|s| career::select(s, p.query));
    let mode = selection
        .as_ref()
        .zip(p.stats)
        .and_then(|(sel, stats)| stats.mode(&sel.platform, &sel.mode));
    let shown_at = mode
        .map(|m| m.snapshot_at)
        .or(p.stats.map(|s| s.snapshot_at));
    let content = html! {
        div #player data-player=(p.id.as_str())
            data-status-url={ "/api/players/" (p.id.url_path_segment()) "/status" }
            data-status-version=(p.status.version)
            data-poll=(if polling { "true" } else { "false" }) {
            (player_header::header(p.id, p.profile, shown_at, p.now))
            @match (&selection, mode) {
                (Some(sel), Some(mode)) => {
                    (lookup::banners(p.status, shown_at, p.timeout, p.notice, p.now))
                    (switches::switches(p.id, sel))
                    @let delta = p.deltas.and_then(|d| d.get(&sel.platform, &sel.mode, &sel.hero));
                    @let sections = career::sections(mode, &sel.hero, delta);
                    div.stats-heading {
                        h2 { (format::hero_name(&sel.hero)) }
                        p.muted {
                            (format::mode_name(&sel.mode)) " on " (format::platform_name(&sel.platform))
                            @if delta.is_some_and(|d| d.snapshot_at == mode.snapshot_at) {
                                " · ▲/▼ show the change since the previous snapshot"
                            }
                        }
                    }
                    @if sections.is_empty() {
                        p.empty { "No stats for this hero." }
                    } @else {
                        (categories::sections(&sections))
                    }
                    section #heroes aria-labelledby="heroes-title" {
                        h2 #heroes-title { "Heroes" }
                        @let sort = SortKey::parse(p.query.sort.as_deref());
                        @let dir = SortDir::parse(p.query.dir.as_deref(), sort);
                        @let rows = career::sorted_hero_rows(mode, sort, dir);
                        (hero_table::table(p.id, sel, &rows, sort, dir))
                    }
                    section #history aria-labelledby="history-title" {
                        h2 #history-title { "History" }
                        @let days = p.history.map(|h| h.days(&sel.platform, &sel.mode)).unwrap_or_default();
                        (history::charts(&days))
                    }
                }
                _ => {
                    (lookup::message(p.id, p.profile, p.status, p.timeout, p.notice, p.now))
                }
            }
        }
    };
    layout::page(&title, polling.then_some(NO_SCRIPT_REFRESH_SECS), content)
}
