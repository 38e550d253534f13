//! A raw event with its body parsed once, ready for every output.

use ow_domain::overfast::{Category, Obj, PlayerBody, Summary};
use ow_domain::{FetchOutcome, PlayerSnapshot, RawPlayerProfile, StatsByCategory};

use crate::error::ProcessError;
use crate::profile::ProfileUpdate;

/// A raw event (`ow.raw.player-profiles`) with its body parsed, borrowing from the event.
///
/// Parse once, then ask for each output:
/// [`stats_by_category`](PlayerFetch::stats_by_category), [`snapshot`](PlayerFetch::snapshot),
/// [`apply_to`](PlayerFetch::apply_to) (the profile). The free functions
/// [`crate::stats_by_category`], [`crate::snapshot_of`] and [`crate::apply_fetch`] do the same
/// from a raw event in one call.
///
/// Only `ok` and `private` fetches have their body read (a `not_found` or error body is
/// OverFast's error message, not a career); for them the body must be a player by the domain's
/// body model ([`PlayerBody::parse`]), the one the producer decided `ok` or `private` with.
///
/// ```
/// use ow_processor::PlayerFetch;
/// use ow_domain::{FetchOutcome, RawPlayerProfile};
///
/// let raw = RawPlayerProfile {
///     request_id: "r1".into(),
///     player_id: "Someone-1234".into(),
///     fetched_at: 1_700_000_000_000,
///     request_url: "https://overfast-api.tekrop.fr/players/Someone-1234".into(),
///     http_status: Some(200),
///     outcome: FetchOutcome::Ok,
///     body: Some(r#"{"summary": {"username": "Someone", "last_updated_at": 1699999999},
///         "stats": {"pc": {"quickplay": {"career_stats": {"all-heroes": [
///             {"category": "game", "label": "Game", "stats": [
///                 {"key": "games_played", "label": "Games Played", "value": 12}]}],
///         "ana": null}}}}}"#.into()),
///     cache_max_age_secs: None,
///     cache_age_secs: None,
///     error: None,
///     attempts: 1,
///     next_attempt_at: None,
/// };
/// let fetch = PlayerFetch::parse(&raw)?;
/// assert_eq!(fetch.last_updated_at(), Some(1_699_999_999_000));
/// let records = fetch.stats_by_category();
/// assert_eq!(records.len(), 1);
/// assert_eq!(records[0].stats["games_played"].value, 12.0);
/// # Ok::<(), ow_processor::ProcessError>(())
/// ```
#[derive(Debug)]
pub struct PlayerFetch<'a> {
    raw: &'a RawPlayerProfile,
    /// The body of an `ok` or `private` fetch.
    body: Option<PlayerBody<'a>>,
}

impl<'a> PlayerFetch<'a> {
    /// Parses the body of an `ok` or `private` fetch; other outcomes carry no career and parse
    /// to a fetch without summary or stats.
    ///
    /// # Errors
    /// [`ProcessError::MissingBody`], and the errors of [`PlayerBody::parse`] naming the fetch:
    /// [`ProcessError::MalformedJson`], [`ProcessError::UnexpectedShape`],
    /// [`ProcessError::MissingSummary`], [`ProcessError::OutOfRange`] (a `last_updated_at` too
    /// large to be in milliseconds), [`ProcessError::MissingStats`].
    pub fn parse(raw: &'a RawPlayerProfile) -> Result<Self, ProcessError> {
        if !matches!(raw.outcome, FetchOutcome::Ok | FetchOutcome::Private) {
            return Ok(PlayerFetch { raw, body: None });
        }
        let text = raw
            .body
            .as_deref()
            .ok_or_else(|| ProcessError::MissingBody {
                player_id: raw.player_id.clone(),
                fetched_at: raw.fetched_at,
                outcome: raw.outcome,
            })?;
        let body = PlayerBody::parse(text)
            .map_err(|e| ProcessError::body(&raw.player_id, raw.fetched_at, e))?;
        Ok(PlayerFetch {
            raw,
            body: Some(body),
        })
    }

    /// The raw event.
    pub fn raw(&self) -> &'a RawPlayerProfile {
        self.raw
    }

    /// `summary.last_updated_at` in milliseconds since the epoch (OverFast sends seconds).
    pub fn last_updated_at(&self) -> Option<i64> {
        self.body.as_ref().and_then(PlayerBody::last_updated_at)
    }

    /// Whether the body had a summary (an `ok` or `private` fetch).
    pub fn has_summary(&self) -> bool {
        self.body.is_some()
    }

    /// Whether the body had stats (`false` for a private profile and for failed fetches).
    pub fn has_stats(&self) -> bool {
        self.body
            .as_ref()
            .is_some_and(|body| body.stats().is_some())
    }

    pub(crate) fn summary(&self) -> Option<&Summary<'a>> {
        self.body.as_ref().map(PlayerBody::summary)
    }

    /// Every `(platform, gamemode, hero, categories)` of the stats, in body order, skipping the
    /// `null`s (unplayed heroes, absent platforms and modes).
    pub(crate) fn heroes(&self) -> impl Iterator<Item = (&str, &str, &str, &[Obj<Category<'a>>])> {
        self.body.iter().flat_map(PlayerBody::heroes)
    }
}

/// Everything the topology needs from one raw event, owned: the event is parsed once and each
/// branch of the topology takes its part.
#[derive(Clone, Debug)]
pub(crate) struct FetchOutputs {
    /// The `ow.stats.by-category` records (empty without stats).
    pub(crate) categories: Vec<StatsByCategory>,
    /// The snapshot to compare with the previous one (`None` without stats).
    pub(crate) snapshot: Option<PlayerSnapshot>,
    /// What the fetch says about the profile.
    pub(crate) profile: ProfileUpdate,
}

impl PlayerFetch<'_> {
    /// Every output of this fetch, owned.
    pub(crate) fn outputs(&self) -> FetchOutputs {
        FetchOutputs {
            categories: self.stats_by_category(),
            snapshot: self.snapshot(),
            profile: self.profile_update(),
        }
    }
}

/// Checks that a raw event is keyed by the player id it carries, and that the id is not empty:
/// the topology keeps a player's state under the record key.
///
/// # Errors
/// [`ProcessError::KeyMismatch`], [`ProcessError::EmptyPlayerId`].
pub(crate) fn check_key(key: &str, raw: &RawPlayerProfile) -> Result<(), ProcessError> {
    if key != raw.player_id {
        return Err(ProcessError::KeyMismatch {
            key: key.to_owned(),
            player_id: raw.player_id.clone(),
            fetched_at: raw.fetched_at,
        });
    }
    if raw.player_id.is_empty() {
        return Err(ProcessError::EmptyPlayerId {
            fetched_at: raw.fetched_at,
        });
    }
    Ok(())
}
