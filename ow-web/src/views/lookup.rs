//! What a player page says while the pipeline looks a player up, and when the look-up did not
//! end with stats: waiting, timed out, not found, private, rate-limited, upstream failure.

use std::time::Duration;

use maud::{Markup, html};
use ow_domain::PlayerProfile;
use ow_domain::battletag::PlayerId;

use crate::format;
use crate::lookup::{LookupState, LookupStatus};

/// Something the page must add about this very request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The client made too many requests; none was written.
    Limited {
        /// Time until the next request is allowed.
        retry_after: Duration,
    },
    /// The request could not be written to the pipeline.
    RequestFailed,
}

fn when(ms: i64, now: i64) -> Markup {
    html! {
        time datetime=(format::iso8601(ms)) { (format::datetime(ms)) }
        " (" (format::relative(ms, now)) ")"
    }
}

fn retry_form(id: &PlayerId, label: &str) -> Markup {
    html! {
        form.inline-form method="post" action={ "/players/" (id.url_path_segment()) "/refresh" } {
            button type="submit" { (label) }
        }
    }
}

fn notice(notice: Option<Notice>) -> Markup {
    html! {
        @match notice {
            Some(Notice::Limited { retry_after }) => {
                p.notice.warning role="alert" {
                    "Too many look-ups from your address: nothing was sent. Try again in "
                    (format::duration(retry_after.as_secs_f64().ceil())) "."
                }
            }
            Some(Notice::RequestFailed) => {
                p.notice.error role="alert" {
                    "The request could not be handed to the pipeline (it may be down). "
                    "Try again in a moment."
                }
            }
            None => {}
        }
    }
}

/// The body of a player page without stats.
pub(crate) fn message(
    id: &PlayerId,
    profile: Option<&PlayerProfile>,
    status: &LookupStatus,
    timeout: Duration,
    extra: Option<Notice>,
    now: i64,
) -> Markup {
    let name = profile
        .and_then(|p| p.username.clone())
        .unwrap_or_else(|| id.battletag());
    let battletag = id.battletag();
    html! {
        section.lookup data-lookup-state=(status.state.as_str()) {
            (notice(extra))
            @match status.state {
                LookupState::Unknown => {
                    h2 { "Not looked up yet" }
                    p { "This dashboard has no data on " strong { (battletag) } " yet." }
                    (retry_form(id, "Look up now"))
                }
                LookupState::Pending => {
                    h2 { "Looking up " (battletag) "…" }
                    progress.lookup-progress aria-label="Waiting for the pipeline" {}
                    @if let Some(w) = &status.waiting {
                        p {
                            "Asked at " (format::time_of_day(w.requested_at)) ". "
                            "The producer fetches the profile from OverFast, the processor turns it into "
                            "stats, and this page shows them as soon as they arrive."
                        }
                        p.muted {
                            "This page stops waiting at " (format::time_of_day(w.deadline))
                            " (" (format::duration(timeout.as_secs_f64())) " after asking)."
                        }
                    }
                }
                LookupState::TimedOut => {
                    h2 { "No answer yet for " (battletag) }
                    @if let Some(w) = &status.waiting {
                        p {
                            "The request was written to " code { "ow.player-requests" } " at "
                            (format::time_of_day(w.requested_at)) ", and nothing came back on "
                            code { "ow.players.profile" } " within "
                            (format::duration(timeout.as_secs_f64())) "."
                        }
                    }
                    p {
                        "The producer may be stopped or paused (see the "
                        a href="/pipeline" { "pipeline" } "), or OverFast slow to answer. "
                        "The answer will still show here when it arrives."
                    }
                    (retry_form(id, "Ask again"))
                }
                LookupState::Private => {
                    h2 { (name) "'s career profile is private" }
                    p { "Overwatch only shares the stats of public profiles." }
                    p.howto {
                        "To make it public: in Overwatch 2, open "
                        strong { "Options → Social → Career Profile Visibility" }
                        " and choose " strong { "Public" } ". OverFast sees the change at its next check"
                        @if let Some(at) = status.retry_at { ", " (when(at, now)) }
                        "."
                    }
                    (retry_form(id, "Check again"))
                }
                LookupState::NotFound => {
                    h2 { "No player " (battletag) }
                    p {
                        "OverFast found no such player. Battletags are case-sensitive: check the name "
                        "and the number after the #."
                    }
                    @if let Some(at) = status.retry_at {
                        p { "OverFast will check again at " (when(at, now)) "." }
                    }
                }
                LookupState::RateLimited => {
                    h2 { "OverFast is rate-limiting requests" }
                    p {
                        "Blizzard or OverFast asked us to slow down, so " (battletag)
                        " could not be fetched."
                        @if let Some(message) = &status.message { " (" (message) ")" }
                    }
                    @if let Some(at) = status.retry_at {
                        p { "Next try at " (when(at, now)) "." }
                    }
                }
                LookupState::UpstreamError => {
                    h2 { "OverFast or Blizzard is having trouble" }
                    p {
                        (battletag) " could not be fetched"
                        @if let Some(code) = status.http_status { " (HTTP " (code) ")" }
                        "."
                        @if let Some(message) = &status.message { " " span.upstream-message { (message) } }
                    }
                    @if let Some(at) = status.retry_at {
                        p { "Next try at " (when(at, now)) "." }
                    }
                    (retry_form(id, "Try again"))
                }
                LookupState::Ready => {
                    h2 { "Stats on their way" }
                    p {
                        "The latest fetch of " (battletag) " succeeded, but its stats have not reached "
                        "this dashboard yet. Reload in a moment."
                    }
                }
            }
        }
    }
}

/// The banners of a player page with stats: a refresh in flight or late, a latest fetch that
/// did not succeed, a request refused.
pub(crate) fn banners(
    status: &LookupStatus,
    shown_at: Option<i64>,
    timeout: Duration,
    extra: Option<Notice>,
    now: i64,
) -> Markup {
    html! {
        (notice(extra))
        @if let Some(w) = &status.waiting {
            @if w.timed_out {
                p.notice.warning data-banner="refresh-late" {
                    "The refresh asked at " (format::time_of_day(w.requested_at)) " got no answer within "
                    (format::duration(timeout.as_secs_f64())) "; the stats below are the latest known."
                }
            } @else {
                p.notice.info data-banner="refreshing" {
                    progress.inline-progress aria-label="Refreshing" {}
                    " Refreshing: asked at " (format::time_of_day(w.requested_at))
                    ". The page updates when the new stats arrive."
                }
            }
        }
        @let since = html! {
            @if let Some(at) = shown_at { " Showing the stats of " (when(at, now)) "." }
        };
        @match status.state {
            LookupState::Private => {
                p.notice.warning data-banner="private" {
                    "The profile has turned private since. To make it public again: in Overwatch 2, "
                    "Options → Social → Career Profile Visibility → Public." (since)
                }
            }
            LookupState::NotFound => {
                p.notice.warning data-banner="not-found" { "OverFast no longer finds this player." (since) }
            }
            LookupState::RateLimited | LookupState::UpstreamError => {
                p.notice.warning data-banner="fetch-failed" {
                    "The latest refresh failed: "
                    @if status.state == LookupState::RateLimited { "OverFast is rate-limiting" } @else { "OverFast or Blizzard is having trouble" }
                    @if let Some(message) = &status.message { " (" (message) ")" }
                    "."
                    (since)
                    @if let Some(at) = status.retry_at { " Next try at " (when(at, now)) "." }
                }
            }
            _ => {}
        }
    }
}
