//! The header of a player page: avatar, name, title, endorsement, competitive ranks, when the
//! data was fetched, and the refresh button.

use maud::{Markup, html};
use ow_domain::battletag::PlayerId;
use ow_domain::{CompetitiveRank, PlayerProfile};

use super::image_url;
use crate::format;

fn rank(rank: &CompetitiveRank) -> Markup {
    let division = format::humanize(&rank.division);
    let role = format::humanize(&rank.role);
    html! {
        li.rank data-role=(rank.role) {
            @if let Some(src) = rank.role_icon.as_deref().and_then(image_url) {
                img.role-icon src=(src) alt=(role) title=(role) width="20" height="20";
            } @else {
                span.role-name { (role) }
            }
            @if let Some(src) = rank.rank_icon.as_deref().and_then(image_url) {
                img.rank-icon src=(src) alt="" width="32" height="32";
            }
            @if let Some(src) = rank.tier_icon.as_deref().and_then(image_url) {
                img.tier-icon src=(src) alt="" width="20" height="20";
            }
            span.rank-text { (division) " " (rank.tier) }
            span.rank-meta {
                (format::platform_name(&rank.platform))
                @if let Some(season) = rank.season { ", season " (season) }
            }
        }
    }
}

/// The header. `snapshot_at` is the time of the newest stats shown, when there are any.
pub(crate) fn header(
    id: &PlayerId,
    profile: Option<&PlayerProfile>,
    snapshot_at: Option<i64>,
    now: i64,
) -> Markup {
    let name = profile
        .and_then(|p| p.username.clone())
        .unwrap_or_else(|| id.name().to_owned());
    let updated = snapshot_at.or_else(|| profile.and_then(|p| p.profile_fetched_at));
    html! {
        section.player-header {
            @if let Some(src) = profile.and_then(|p| p.avatar.as_deref()).and_then(image_url) {
                img.avatar src=(src) alt="" width="96" height="96";
            } @else {
                span.avatar.placeholder aria-hidden="true" {}
            }
            div.identity {
                h1 {
                    span.name { (name) }
                    " "
                    span.tag { "#" (id.discriminator()) }
                }
                @if let Some(title) = profile.and_then(|p| p.title.as_deref()) {
                    p.player-title { (title) }
                }
                @if let Some(endorsement) = profile.and_then(|p| p.endorsement.as_ref()) {
                    p.endorsement {
                        @if let Some(src) = endorsement.frame.as_deref().and_then(image_url) {
                            img src=(src) alt="" width="24" height="24";
                        }
                        "Endorsement level " (endorsement.level)
                    }
                }
                @if let Some(p) = profile.filter(|p| !p.competitive.is_empty()) {
                    ul.ranks aria-label="Competitive ranks" {
                        @for r in &p.competitive { (rank(r)) }
                    }
                }
                p.updated {
                    @if let Some(at) = updated {
                        "Updated "
                        time datetime=(format::iso8601(at)) title=(format::datetime(at)) {
                            (format::relative(at, now))
                        }
                    } @else {
                        "Not fetched yet"
                    }
                    @if let Some(at) = profile.and_then(|p| p.last_updated_at) {
                        span.blizzard-updated {
                            " · Blizzard profile updated "
                            time datetime=(format::iso8601(at)) title=(format::datetime(at)) {
                                (format::relative(at, now))
                            }
                        }
                    }
                }
            }
            @if profile.is_some() {
                form.refresh method="post" action={ "/players/" (id.url_path_segment()) "/refresh" } {
                    button type="submit" { "Refresh now" }
                }
            }
        }
    }
}
