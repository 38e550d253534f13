//! `ow.players.profile`: what is known of a player, folded over the player's fetches.
//!
//! # Rules of [`apply_fetch`]
//! * The status ([`FetchStatus`]) always becomes the fetch's: outcome, time, HTTP status,
//!   message (`error`), next check (`next_attempt_at`).
//! * `ok`: the summary is the new truth. A field sent as `null` clears the old value where
//!   `null` means "none" (`namecard`, `title`, `competitive` — no ranks); it keeps the old value
//!   where OverFast uses `null` for "could not read" (`username`, `avatar`, `endorsement`,
//!   `last_updated_at`).
//! * `private`: the summary of a private profile hides things, so only what it sends replaces;
//!   every `null` keeps the old value (ranks included).
//! * `not_found`, `rate_limited`, `upstream_error`: only the status changes; the last good
//!   profile data is never erased.
//! * A fetch older than the status already folded in (`fetched_at` earlier) changes nothing:
//!   events re-read out of order cannot roll the profile back. The same event applied twice
//!   gives the same profile.

use ow_domain::overfast::{Summary, Text};
use ow_domain::{
    CompetitiveRank, Endorsement, FetchOutcome, FetchStatus, PlayerProfile, RawPlayerProfile,
};

use crate::error::ProcessError;
use crate::fetch::PlayerFetch;

/// Folds a raw event into the profile of its player: [`PlayerFetch::parse`] then
/// [`PlayerFetch::apply_to`]. See the [module docs](self) for the rules.
///
/// # Errors
/// As [`PlayerFetch::parse`], and [`ProcessError::PlayerMismatch`] when `previous` is another
/// player's profile.
pub fn apply_fetch(
    previous: Option<PlayerProfile>,
    raw: &RawPlayerProfile,
) -> Result<PlayerProfile, ProcessError> {
    PlayerFetch::parse(raw)?.apply_to(previous)
}

impl PlayerFetch<'_> {
    /// Folds this fetch into the previous profile of its player (see [`apply_fetch`]).
    ///
    /// # Errors
    /// [`ProcessError::PlayerMismatch`] when `previous` is another player's profile.
    pub fn apply_to(&self, previous: Option<PlayerProfile>) -> Result<PlayerProfile, ProcessError> {
        self.profile_update().apply_to(previous)
    }

    /// What this fetch says about its player's profile, owned, to fold in later.
    pub(crate) fn profile_update(&self) -> ProfileUpdate {
        let raw = self.raw();
        let summary = self.summary().map(|summary| {
            let replace_nulls = raw.outcome == FetchOutcome::Ok;
            let owned = |t: &Option<Text<'_>>| t.as_ref().map(|t| t.as_str().to_owned());
            SummaryUpdate {
                fetched_at: raw.fetched_at,
                replace_nulls,
                username: owned(&summary.username),
                avatar: owned(&summary.avatar),
                namecard: owned(&summary.namecard),
                title: owned(&summary.title),
                endorsement: summary.endorsement.as_ref().map(|endorsement| Endorsement {
                    level: endorsement
                        .level
                        .0
                        .and_then(|level| i32::try_from(level).ok())
                        .unwrap_or(0),
                    frame: owned(&endorsement.frame),
                }),
                competitive: (summary.competitive.is_some() || replace_nulls)
                    .then(|| ranks(summary)),
                last_updated_at: self.last_updated_at(),
            }
        });
        ProfileUpdate {
            player_id: raw.player_id.clone(),
            status: status_of(raw),
            summary,
        }
    }
}

/// What one fetch says about its player's profile, owned (it borrows nothing from the raw
/// event), so that a topology can parse an event once and fold it into the profile later.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProfileUpdate {
    player_id: String,
    status: FetchStatus,
    /// `None` when the fetch had no summary (`not_found` and error outcomes).
    summary: Option<SummaryUpdate>,
}

/// The summary of an `ok` or `private` fetch, as [`ProfileUpdate::apply_to`] folds it in.
#[derive(Clone, Debug, PartialEq)]
struct SummaryUpdate {
    fetched_at: i64,
    /// `ok`: a `null` clears what `null` means "none" for; `private`: every `null` keeps.
    replace_nulls: bool,
    username: Option<String>,
    avatar: Option<String>,
    namecard: Option<String>,
    title: Option<String>,
    endorsement: Option<Endorsement>,
    /// `None`: keep the old ranks.
    competitive: Option<Vec<CompetitiveRank>>,
    last_updated_at: Option<i64>,
}

impl ProfileUpdate {
    /// The player the fetch was about.
    pub(crate) fn player_id(&self) -> &str {
        &self.player_id
    }

    /// Folds this update into the previous profile of its player (see [`apply_fetch`]).
    ///
    /// # Errors
    /// [`ProcessError::PlayerMismatch`] when `previous` is another player's profile.
    pub(crate) fn apply_to(
        &self,
        previous: Option<PlayerProfile>,
    ) -> Result<PlayerProfile, ProcessError> {
        match previous {
            Some(previous) if previous.player_id != self.player_id => {
                Err(ProcessError::PlayerMismatch {
                    profile_player_id: previous.player_id,
                    fetched_player_id: self.player_id.clone(),
                })
            }
            previous => Ok(self.merge_into(previous)),
        }
    }

    /// Folds this update into `previous`, which must be a profile of the same player.
    pub(crate) fn merge_into(&self, previous: Option<PlayerProfile>) -> PlayerProfile {
        let mut profile = match previous {
            Some(previous) if previous.status.fetched_at > self.status.fetched_at => {
                return previous;
            }
            Some(previous) => previous,
            None => PlayerProfile {
                player_id: self.player_id.clone(),
                username: None,
                avatar: None,
                namecard: None,
                title: None,
                endorsement: None,
                competitive: Vec::new(),
                last_updated_at: None,
                profile_fetched_at: None,
                status: self.status.clone(),
            },
        };
        profile.status = self.status.clone();
        if let Some(summary) = &self.summary {
            let update =
                |old: &mut Option<String>, new: &Option<String>, clear_on_null: bool| match new {
                    Some(new) => *old = Some(new.clone()),
                    None if clear_on_null => *old = None,
                    None => {}
                };
            update(&mut profile.username, &summary.username, false);
            update(&mut profile.avatar, &summary.avatar, false);
            update(
                &mut profile.namecard,
                &summary.namecard,
                summary.replace_nulls,
            );
            update(&mut profile.title, &summary.title, summary.replace_nulls);
            if let Some(endorsement) = &summary.endorsement {
                profile.endorsement = Some(endorsement.clone());
            }
            if let Some(competitive) = &summary.competitive {
                profile.competitive.clone_from(competitive);
            }
            if let Some(at) = summary.last_updated_at {
                profile.last_updated_at = Some(at);
            }
            profile.profile_fetched_at = Some(summary.fetched_at);
        }
        profile
    }
}

fn status_of(raw: &RawPlayerProfile) -> FetchStatus {
    FetchStatus {
        outcome: raw.outcome,
        fetched_at: raw.fetched_at,
        http_status: raw.http_status,
        message: raw.error.clone(),
        next_check_at: raw.next_attempt_at,
    }
}

/// The ranked roles of a summary, platform by platform, in body order. A role without a division
/// or tier cannot be shown and is left out; a tier or season outside `i32` is left out too.
fn ranks(summary: &Summary<'_>) -> Vec<CompetitiveRank> {
    let owned = |t: &Option<Text<'_>>| t.as_ref().map(|t| t.as_str().to_owned());
    let platforms = summary.competitive.iter().flat_map(|c| c.0.iter());
    platforms
        .filter_map(|(platform, ranks)| Some((platform, ranks.as_ref()?)))
        .flat_map(|(platform, ranks)| {
            let season = ranks.season.and_then(|s| i32::try_from(s).ok());
            ranks.roles.iter().filter_map(move |(role, rank)| {
                Some(CompetitiveRank {
                    platform: platform.as_str().to_owned(),
                    role: role.as_str().to_owned(),
                    division: rank.division.as_ref()?.as_str().to_owned(),
                    tier: i32::try_from(rank.tier.0?).ok()?,
                    role_icon: owned(&rank.role_icon),
                    rank_icon: owned(&rank.rank_icon),
                    tier_icon: owned(&rank.tier_icon),
                    season,
                })
            })
        })
        .collect()
}
