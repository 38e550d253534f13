//! The body of `GET /players/{player_id}`, read in one pass into borrowed structures.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::lenient::{Entries, Int, Number, Obj, Text};
use super::{BodyError, ProfileKind};

/// A `GET /players/{player_id}` body that passed every check of [`PlayerBody::parse`]: a JSON
/// object with a `summary` object and a `stats` field (`null` for a private profile).
///
/// ```
/// use ow_domain::overfast::{PlayerBody, ProfileKind};
///
/// let body = PlayerBody::parse(r#"{"summary": {"username": "Someone", "last_updated_at": 1699999999},
///     "stats": {"pc": {"quickplay": {"career_stats": {"all-heroes": [
///         {"category": "game", "label": "Game", "stats": [
///             {"key": "games_played", "label": "Games Played", "value": 12}]}],
///     "ana": null}}}}}"#)?;
/// assert_eq!(body.kind(), ProfileKind::Public);
/// assert_eq!(body.last_updated_at(), Some(1_699_999_999_000));
/// let heroes: Vec<_> = body.heroes().map(|(p, m, h, _)| (p, m, h)).collect();
/// assert_eq!(heroes, [("pc", "quickplay", "all-heroes")]);
/// # Ok::<(), ow_domain::overfast::BodyError>(())
/// ```
#[derive(Debug)]
pub struct PlayerBody<'a> {
    summary: Summary<'a>,
    stats: Option<StatsBody<'a>>,
    /// `summary.last_updated_at` in milliseconds.
    last_updated_at: Option<i64>,
}

impl<'a> PlayerBody<'a> {
    /// Reads and checks a body; see the [module docs](super) for what passes.
    ///
    /// # Errors
    /// The first check that fails, in this order: [`BodyError::MalformedJson`],
    /// [`BodyError::UnexpectedShape`], [`BodyError::MissingSummary`],
    /// [`BodyError::OutOfRange`] (a `last_updated_at` too large to be in milliseconds),
    /// [`BodyError::MissingStats`].
    pub fn parse(text: &'a str) -> Result<PlayerBody<'a>, BodyError> {
        let top: TopLevel<'a> = serde_json::from_str(text).map_err(BodyError::from_json)?;
        let Some(Some(Obj(summary))) = top.summary else {
            return Err(BodyError::MissingSummary);
        };
        let last_updated_at = match summary.last_updated_at.0 {
            None => None,
            Some(seconds) => Some(seconds.checked_mul(1000).ok_or(BodyError::OutOfRange {
                field: "summary.last_updated_at",
                value: seconds,
            })?),
        };
        let Some(stats) = top.stats else {
            return Err(BodyError::MissingStats);
        };
        Ok(PlayerBody {
            summary,
            stats,
            last_updated_at,
        })
    }

    /// Public (`stats` holds something) or private (`"stats": null`).
    pub fn kind(&self) -> ProfileKind {
        match self.stats {
            Some(_) => ProfileKind::Public,
            None => ProfileKind::Private,
        }
    }

    /// The summary.
    pub fn summary(&self) -> &Summary<'a> {
        &self.summary
    }

    /// The stats: platform → game mode → stats; `None` for a private profile.
    pub fn stats(&self) -> Option<&StatsBody<'a>> {
        self.stats.as_ref()
    }

    /// `summary.last_updated_at` in milliseconds since the epoch (OverFast sends seconds).
    pub fn last_updated_at(&self) -> Option<i64> {
        self.last_updated_at
    }

    /// Every `(platform, gamemode, hero, categories)` of the stats, in body order, skipping the
    /// `null`s (unplayed heroes, absent platforms and modes); nothing for a private profile.
    pub fn heroes(&self) -> impl Iterator<Item = (&str, &str, &str, &[Obj<Category<'a>>])> {
        self.stats.iter().flat_map(|stats| heroes(stats))
    }
}

/// The top level as sent, before the checks of [`PlayerBody::parse`]: for each field, `None`
/// when the key is absent and `Some(None)` when it is `null`. Other keys are skipped unread.
struct TopLevel<'a> {
    summary: Option<Option<Obj<Summary<'a>>>>,
    stats: Option<Option<StatsBody<'a>>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor<'a>(PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an overfast player object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut top = TopLevel {
                    summary: None,
                    stats: None,
                };
                while let Some(key) = map.next_key::<Text<'a>>()? {
                    match key.as_str() {
                        "summary" if top.summary.is_some() => {
                            return Err(de::Error::duplicate_field("summary"));
                        }
                        "summary" => top.summary = Some(map.next_value()?),
                        "stats" if top.stats.is_some() => {
                            return Err(de::Error::duplicate_field("stats"));
                        }
                        "stats" => top.stats = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor(PhantomData))
    }
}

/// `stats`: platform → game mode → stats. A `null` platform or mode is absent.
pub type StatsBody<'a> = Entries<'a, Option<Entries<'a, Option<Obj<GamemodeStats<'a>>>>>>;

/// `summary`: who the player is. Every field may be absent or `null`.
#[derive(Debug, Deserialize)]
pub struct Summary<'a> {
    /// The name shown in game.
    #[serde(borrow, default)]
    pub username: Option<Text<'a>>,
    /// URL of the avatar.
    #[serde(borrow, default)]
    pub avatar: Option<Text<'a>>,
    /// URL of the namecard.
    #[serde(borrow, default)]
    pub namecard: Option<Text<'a>>,
    /// The title shown under the name.
    #[serde(borrow, default)]
    pub title: Option<Text<'a>>,
    /// Endorsement level and frame.
    #[serde(borrow, default)]
    pub endorsement: Option<Obj<EndorsementBody<'a>>>,
    /// Platform → season and ranked roles.
    #[serde(borrow, default)]
    pub competitive: Option<Entries<'a, Option<PlatformRanks<'a>>>>,
    /// When Blizzard last updated the profile, in Unix seconds (see
    /// [`PlayerBody::last_updated_at`] for milliseconds).
    #[serde(default)]
    pub last_updated_at: Int,
}

/// `summary.endorsement`.
#[derive(Debug, Deserialize)]
pub struct EndorsementBody<'a> {
    /// Endorsement level.
    #[serde(default)]
    pub level: Int,
    /// URL of the frame.
    #[serde(borrow, default)]
    pub frame: Option<Text<'a>>,
}

/// `summary.competitive.<platform>`: a `season` plus one key per role (`null` when unranked).
/// Any role key passes, in the order sent.
#[derive(Debug, Default)]
pub struct PlatformRanks<'a> {
    /// The competitive season.
    pub season: Option<i64>,
    /// Role key → rank, ranked roles only.
    pub roles: Vec<(Text<'a>, RankBody<'a>)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for PlatformRanks<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RanksVisitor<'a>(PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for RanksVisitor<'a> {
            type Value = PlatformRanks<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of a season and roles")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut ranks = PlatformRanks::default();
                while let Some(key) = map.next_key::<Text<'a>>()? {
                    if key.as_str() == "season" {
                        ranks.season = map.next_value::<Int>()?.0;
                    } else if let Some(rank) = map.next_value::<Option<Obj<RankBody<'a>>>>()? {
                        ranks.roles.push((key, rank.0));
                    }
                }
                Ok(ranks)
            }
        }
        deserializer.deserialize_map(RanksVisitor(PhantomData))
    }
}

/// The rank of one role.
#[derive(Debug, Deserialize)]
pub struct RankBody<'a> {
    /// Division key (`gold`, `master`…).
    #[serde(borrow, default)]
    pub division: Option<Text<'a>>,
    /// Tier inside the division (1 is the highest).
    #[serde(default)]
    pub tier: Int,
    /// URL of the role icon.
    #[serde(borrow, default)]
    pub role_icon: Option<Text<'a>>,
    /// URL of the rank icon.
    #[serde(borrow, default)]
    pub rank_icon: Option<Text<'a>>,
    /// URL of the tier icon.
    #[serde(borrow, default)]
    pub tier_icon: Option<Text<'a>>,
}

/// `stats.<platform>.<gamemode>`; `heroes_comparisons` is skipped unread.
#[derive(Debug, Deserialize)]
pub struct GamemodeStats<'a> {
    /// Hero key → categories; `None` for an unplayed hero.
    #[serde(borrow, default)]
    pub career_stats: Option<Entries<'a, Option<Vec<Obj<Category<'a>>>>>>,
}

/// One category of a hero's career stats.
#[derive(Debug, Deserialize)]
pub struct Category<'a> {
    /// Category key (`game`, `combat`, `best`…).
    #[serde(borrow)]
    pub category: Text<'a>,
    /// Display label.
    #[serde(borrow, default)]
    pub label: Option<Text<'a>>,
    /// Its stats.
    #[serde(borrow, default)]
    pub stats: Option<Vec<Obj<Stat<'a>>>>,
}

/// One stat; a `null` value is treated as absent.
#[derive(Debug, Deserialize)]
pub struct Stat<'a> {
    /// Stat key (`games_played`, `eliminations_avg_per_10_min`…).
    #[serde(borrow)]
    pub key: Text<'a>,
    /// Display label.
    #[serde(borrow, default)]
    pub label: Option<Text<'a>>,
    /// The value, read leniently.
    pub value: Number,
}

/// Every `(platform, gamemode, hero, categories)` of a body's stats, skipping `null`s.
fn heroes<'b, 'a>(
    stats: &'b StatsBody<'a>,
) -> impl Iterator<Item = (&'b str, &'b str, &'b str, &'b [Obj<Category<'a>>])> {
    stats
        .0
        .iter()
        .filter_map(|(p, modes)| Some((p, modes.as_ref()?)))
        .flat_map(|(platform, modes)| {
            modes
                .0
                .iter()
                .filter_map(|(m, stats)| Some((m, stats.as_ref()?.career_stats.as_ref()?)))
                .flat_map(move |(gamemode, heroes)| {
                    heroes.0.iter().filter_map(move |(hero, categories)| {
                        Some((
                            platform.as_str(),
                            gamemode.as_str(),
                            hero.as_str(),
                            categories.as_deref()?,
                        ))
                    })
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_must_be_objects() {
        let err = serde_json::from_str::<Obj<Stat<'_>>>(r#"["k", "label", 3]"#).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid type: sequence"),
            "{err}"
        );
        let stat: Obj<Stat<'_>> = serde_json::from_str(r#"{"key": "k", "value": 3}"#).unwrap();
        assert_eq!((stat.key.as_str(), stat.value), ("k", Number(Some(3.0))));
        assert!(matches!(
            PlayerBody::parse("[]"),
            Err(BodyError::UnexpectedShape { .. })
        ));
    }

    #[test]
    fn platform_ranks_keep_any_role() {
        let r: PlatformRanks<'_> = serde_json::from_str(
            r#"{"tank": null, "flex": {"division": "gold", "tier": 2}, "season": 12}"#,
        )
        .unwrap();
        assert_eq!(r.season, Some(12));
        assert_eq!(r.roles.len(), 1);
        assert_eq!(r.roles[0].0.as_str(), "flex");
        assert_eq!(r.roles[0].1.tier, Int(Some(2)));
    }

    #[test]
    fn what_passes() {
        let public = PlayerBody::parse(r#"{"summary": {}, "stats": {"pc": null}}"#).unwrap();
        assert_eq!(public.kind(), ProfileKind::Public);
        assert_eq!(public.heroes().count(), 0);
        let private = PlayerBody::parse(
            r#"{"summary": {"username": "X"}, "stats": null, "privacy": "private"}"#,
        )
        .unwrap();
        assert_eq!(private.kind(), ProfileKind::Private);
        assert_eq!(
            private.summary().username.as_ref().map(Text::as_str),
            Some("X")
        );
        assert!(private.stats().is_none());
        // Unknown fields are skipped, whatever they hold.
        let extra = r#"{"heroes_comparisons": [1, {"a": null}], "summary": {}, "stats": {}}"#;
        assert_eq!(
            PlayerBody::parse(extra).unwrap().kind(),
            ProfileKind::Public
        );
    }

    #[test]
    fn what_does_not_pass() {
        type Check = fn(&BodyError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, BodyError::MalformedJson { .. })),
            (r#"{"summary": {}, "stats": null"#, |e| {
                matches!(e, BodyError::MalformedJson { .. })
            }),
            (r#"{"summary": {}, "stats": null} x"#, |e| {
                matches!(e, BodyError::MalformedJson { .. })
            }),
            ("null", |e| matches!(e, BodyError::UnexpectedShape { .. })),
            (r#"{"summary": {}, "stats": 5}"#, |e| {
                matches!(e, BodyError::UnexpectedShape { .. })
            }),
            (r#"{"summary": {}, "summary": {}, "stats": null}"#, |e| {
                matches!(e, BodyError::UnexpectedShape { .. })
            }),
            (r#"{"summary": {}, "stats": null, "stats": {}}"#, |e| {
                matches!(e, BodyError::UnexpectedShape { .. })
            }),
            ("{}", |e| matches!(e, BodyError::MissingSummary)),
            (r#"{"summary": null, "stats": null}"#, |e| {
                matches!(e, BodyError::MissingSummary)
            }),
            (r#"{"stats": {"pc": null}}"#, |e| {
                matches!(e, BodyError::MissingSummary)
            }),
            (r#"{"summary": {}}"#, |e| {
                matches!(e, BodyError::MissingStats)
            }),
            (
                r#"{"summary": {"last_updated_at": 9223372036854775807}, "stats": null}"#,
                |e| {
                    matches!(
                        e,
                        BodyError::OutOfRange {
                            field: "summary.last_updated_at",
                            value: i64::MAX
                        }
                    )
                },
            ),
        ];
        for (body, check) in cases {
            let err = PlayerBody::parse(body).expect_err(body);
            assert!(check(&err), "{body}: {err:?}");
        }
    }
}
