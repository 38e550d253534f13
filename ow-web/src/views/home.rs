//! `/`: the search box, recently viewed and tracked players.

use maud::{Markup, html};
use ow_domain::battletag::PlayerId;
use ow_domain::{FetchOutcome, PlayerProfile};

use super::{image_url, layout, search_form};
use crate::career::player_url;
use crate::format;

/// A short label and CSS class for a fetch outcome.
pub(crate) fn outcome_badge(outcome: FetchOutcome) -> (&'static str, &'static str) {
    match outcome {
        FetchOutcome::Ok => ("public", "ok"),
        FetchOutcome::Private => ("private", "private"),
        FetchOutcome::NotFound => ("not found", "not-found"),
        FetchOutcome::RateLimited => ("rate-limited", "limited"),
        FetchOutcome::UpstreamError => ("upstream error", "error"),
    }
}

fn tracked_player(profile: &PlayerProfile, now: i64) -> Markup {
    // A profile id that is not a battletag cannot be linked to; show it without a link.
    let id = PlayerId::parse(&profile.player_id).ok();
    let name = profile
        .username
        .clone()
        .unwrap_or_else(|| profile.player_id.clone());
    let (badge, class) = outcome_badge(profile.status.outcome);
    html! {
        li.player-tile {
            @if let Some(src) = profile.avatar.as_deref().and_then(image_url) {
                img.avatar-small src=(src) alt="" width="48" height="48" loading="lazy";
            } @else {
                span.avatar-small.placeholder aria-hidden="true" {}
            }
            div {
                @if let Some(id) = &id {
                    a.player-link href=(player_url(id, &[])) { (name) }
                    span.tag { (id.battletag()) }
                } @else {
                    span.player-link { (name) }
                }
                span class={ "badge " (class) } { (badge) }
                span.updated {
                    "fetched "
                    time datetime=(format::iso8601(profile.status.fetched_at)) {
                        (format::relative(profile.status.fetched_at, now))
                    }
                }
            }
        }
    }
}

/// The home page.
pub(crate) fn page(viewed: &[PlayerId], tracked: &[PlayerProfile], now: i64) -> Markup {
    layout::page(
        "Players",
        None,
        html! {
            section.intro {
                h1 { "Overwatch 2 player stats" }
                p {
                    "Look a player up by battletag. A player the pipeline has never seen is "
                    "fetched from OverFast; the page turns into their stats as soon as they arrive."
                }
                (search_form::form("home-search", "", true))
            }
            section.recent aria-labelledby="recent-title" {
                h2 #recent-title { "Recently viewed" }
                @if viewed.is_empty() {
                    p.empty { "Nobody yet. Try " a href="/players/TeKrop-2217" { "TeKrop#2217" } "." }
                } @else {
                    ul.chips {
                        @for id in viewed {
                            li { a href=(player_url(id, &[])) { (id.battletag()) } }
                        }
                    }
                }
            }
            section.tracked aria-labelledby="tracked-title" {
                h2 #tracked-title { "Tracked players" }
                @if tracked.is_empty() {
                    p.empty { "The pipeline follows no player yet." }
                } @else {
                    ul.player-tiles {
                        @for profile in tracked { (tracked_player(profile, now)) }
                    }
                }
            }
        },
    )
}
