//! The shape of OverFast's `GET /players/{player_id}` body, read in one pass.
//!
//! The body is deserialized straight into these borrowed structures: strings without escapes
//! point into the body, objects whose keys are data (platforms, game modes, heroes, roles) keep
//! their order as sent, and everything the processor does not use (`heroes_comparisons`, unknown
//! fields) is skipped without being built. No platform, game mode, hero, role, category or stat
//! is named here, so new ones pass through.
//!
//! Leniency: numbers may be integers, floats or numeric strings (`"12"`, `"45%"`, `"1:02:03"`);
//! `null` stands for "absent" everywhere (unplayed heroes, missing platforms, a stat without a
//! value). A value of another type is an error.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A JSON string, borrowed from the body when it holds no escape sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A `T` that must be written as a JSON object.
///
/// serde_json also accepts an array for a derived struct (its fields by position); a body with
/// an array where OverFast sends an object is the wrong shape, so every derived struct here is
/// read through this wrapper, which only asks for a map.
#[derive(Debug)]
pub(crate) struct Obj<T>(pub(crate) T);

impl<T> Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectOnly(deserializer)).map(Obj)
    }
}

/// A deserializer that reads a struct from a map only.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A JSON object whose keys are data, as `(key, value)` pairs in the order sent.
#[derive(Debug)]
pub(crate) struct Entries<'a, V>(pub(crate) Vec<(Text<'a>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Entries<'a, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a, V>(PhantomData<(Text<'a>, V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<'a, V> {
            type Value = Entries<'a, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<Text<'a>, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A number read leniently; `None` for `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Number(pub(crate) Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a numeric string or null")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                finite(v)
                    .map(|v| Number(Some(v)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &"a finite number"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                parse_number(v)
                    .map(|v| Number(Some(v)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// An integer read leniently (an integral float or a numeric string will do); `None` for `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) Option<i64>);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl<'de> Visitor<'de> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or null")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(|v| Int(Some(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                integral(v)
                    .map(|v| Int(Some(v)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                parse_number(v)
                    .and_then(integral)
                    .map(|v| Int(Some(v)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Int, E> {
                Ok(Int(None))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `v` as an `i64` when it is a whole number in range.
fn integral(v: f64) -> Option<i64> {
    // 2^63 is exactly representable; every whole f64 below it in magnitude fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.is_finite() && v.fract() == 0.0 && v > -LIMIT && v < LIMIT).then_some(v as i64)
}

/// A number written as text: `"12"`, `"3.5"`, `"45%"`, `"1,234"`, or a duration `"MM:SS"` /
/// `"HH:MM:SS"` (in seconds). `None` when it is none of these.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_suffix('%').unwrap_or(text).trim_end();
    if text.contains(':') {
        let mut seconds = 0.0;
        let mut parts = 0;
        for part in text.split(':') {
            let part: f64 = part.parse().ok().and_then(finite)?;
            if part < 0.0 {
                return None;
            }
            seconds = seconds * 60.0 + part;
            parts += 1;
        }
        return (parts <= 3).then_some(seconds);
    }
    let parsed = if text.contains(',') {
        text.replace(',', "").parse::<f64>()
    } else {
        text.parse::<f64>()
    };
    // `f64::from_str` also takes "inf" and "NaN": refuse them.
    parsed.ok().and_then(finite)
}

/// The whole body: `{"summary": {...}, "stats": {...} | null}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PlayerBody<'a> {
    #[serde(borrow, default)]
    pub(crate) summary: Option<Obj<Summary<'a>>>,
    /// Platform → game mode → stats; `None` for a private profile.
    #[serde(borrow, default)]
    pub(crate) stats: Option<StatsBody<'a>>,
}

/// `stats`: platform → game mode → stats.
pub(crate) type StatsBody<'a> = Entries<'a, Option<Entries<'a, Option<Obj<GamemodeStats<'a>>>>>>;

/// `summary`.
#[derive(Debug, Deserialize)]
pub(crate) struct Summary<'a> {
    #[serde(borrow, default)]
    pub(crate) username: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) avatar: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) namecard: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) title: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) endorsement: Option<Obj<EndorsementBody<'a>>>,
    /// Platform → season and ranked roles.
    #[serde(borrow, default)]
    pub(crate) competitive: Option<Entries<'a, Option<PlatformRanks<'a>>>>,
    /// Unix seconds.
    #[serde(default)]
    pub(crate) last_updated_at: Int,
}

/// `summary.endorsement`.
#[derive(Debug, Deserialize)]
pub(crate) struct EndorsementBody<'a> {
    #[serde(default)]
    pub(crate) level: Int,
    #[serde(borrow, default)]
    pub(crate) frame: Option<Text<'a>>,
}

/// `summary.competitive.<platform>`: a `season` plus one key per role (`null` when unranked).
#[derive(Debug, Default)]
pub(crate) struct PlatformRanks<'a> {
    pub(crate) season: Option<i64>,
    pub(crate) roles: Vec<(Text<'a>, RankBody<'a>)>,
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
pub(crate) struct RankBody<'a> {
    #[serde(borrow, default)]
    pub(crate) division: Option<Text<'a>>,
    #[serde(default)]
    pub(crate) tier: Int,
    #[serde(borrow, default)]
    pub(crate) role_icon: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) rank_icon: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) tier_icon: Option<Text<'a>>,
}

/// `stats.<platform>.<gamemode>`; `heroes_comparisons` is skipped.
#[derive(Debug, Deserialize)]
pub(crate) struct GamemodeStats<'a> {
    /// Hero key → categories; `None` for an unplayed hero.
    #[serde(borrow, default)]
    pub(crate) career_stats: Option<Entries<'a, Option<Vec<Obj<Category<'a>>>>>>,
}

/// One category of a hero's career stats.
#[derive(Debug, Deserialize)]
pub(crate) struct Category<'a> {
    #[serde(borrow)]
    pub(crate) category: Text<'a>,
    #[serde(borrow, default)]
    pub(crate) label: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) stats: Option<Vec<Obj<Stat<'a>>>>,
}

/// One stat; a `null` value is treated as absent.
#[derive(Debug, Deserialize)]
pub(crate) struct Stat<'a> {
    #[serde(borrow)]
    pub(crate) key: Text<'a>,
    #[serde(borrow, default)]
    pub(crate) label: Option<Text<'a>>,
    pub(crate) value: Number,
}

/// Every `(platform, gamemode, hero, categories)` of a body's stats, skipping `null`s.
pub(crate) fn heroes<'b, 'a>(
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
    fn numbers_as_text() {
        assert_eq!(parse_number("12"), Some(12.0));
        assert_eq!(parse_number(" 3.5 "), Some(3.5));
        assert_eq!(parse_number("45%"), Some(45.0));
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("02:03"), Some(123.0));
        assert_eq!(parse_number("1:02:03"), Some(3723.0));
        for bad in [
            "", "abc", "NaN", "inf", "-inf", "1:2:3:4", "1:-2", "1::2", "%",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lenient_numbers_and_ints() {
        let n: Vec<Number> = serde_json::from_str(r#"[1, 2.5, "3", null, "1:00"]"#).unwrap();
        assert_eq!(
            n,
            [
                Number(Some(1.0)),
                Number(Some(2.5)),
                Number(Some(3.0)),
                Number(None),
                Number(Some(60.0))
            ]
        );
        assert!(serde_json::from_str::<Number>("true").is_err());
        assert!(serde_json::from_str::<Number>("{}").is_err());
        assert!(serde_json::from_str::<Number>(r#""x""#).is_err());

        let i: Vec<Int> = serde_json::from_str(r#"[1, 2.0, "3", null, -4]"#).unwrap();
        assert_eq!(
            i,
            [
                Int(Some(1)),
                Int(Some(2)),
                Int(Some(3)),
                Int(None),
                Int(Some(-4))
            ]
        );
        for bad in ["2.5", "18446744073709551615", "1e300", r#""2.5""#, "[]"] {
            assert!(serde_json::from_str::<Int>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_borrows_unless_escaped() {
        let body = r#"["plain", "esc\"aped"]"#;
        let t: Vec<Text<'_>> = serde_json::from_str(body).unwrap();
        assert!(matches!(t[0].0, Cow::Borrowed("plain")));
        assert!(matches!(&t[1].0, Cow::Owned(s) if s == "esc\"aped"));
    }

    #[test]
    fn structs_must_be_objects() {
        let err = serde_json::from_str::<Obj<Stat<'_>>>(r#"["k", "label", 3]"#).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid type: sequence"),
            "{err}"
        );
        let stat: Obj<Stat<'_>> = serde_json::from_str(r#"{"key": "k", "value": 3}"#).unwrap();
        assert_eq!((stat.key.as_str(), stat.value), ("k", Number(Some(3.0))));
        assert!(serde_json::from_str::<Obj<PlayerBody<'_>>>("[]").is_err());
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
}
