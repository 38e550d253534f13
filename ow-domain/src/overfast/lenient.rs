//! The building blocks of the body model: borrowed strings, objects that must be objects,
//! objects whose keys are data, and numbers read leniently.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A JSON string, borrowed from the body when it holds no escape sequence.
///
/// ```
/// use ow_domain::overfast::Text;
///
/// let texts: Vec<Text<'_>> = serde_json::from_str(r#"["plain", "esc\"aped"]"#).unwrap();
/// assert_eq!(texts[0].as_str(), "plain");
/// assert_eq!(texts[1].as_str(), "esc\"aped");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
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
/// an array where OverFast sends an object is the wrong shape, so every derived struct of the
/// model is read through this wrapper, which only asks for a map.
#[derive(Debug)]
pub struct Obj<T>(pub T);

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

/// A JSON object whose keys are data (platforms, game modes, heroes), as `(key, value)` pairs
/// in the order sent.
#[derive(Debug)]
pub struct Entries<'a, V>(pub Vec<(Text<'a>, V)>);

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

/// A number read leniently: an integer, a float or a numeric string (`"12"`, `"45%"`,
/// `"1,234"`, `"1:02:03"` in seconds); `None` for `null`. Not finite, or another type, is an
/// error.
///
/// ```
/// use ow_domain::overfast::Number;
///
/// let n: Vec<Number> = serde_json::from_str(r#"[1, 2.5, "45%", "1:00", null]"#).unwrap();
/// let values: Vec<Option<f64>> = n.iter().map(|n| n.0).collect();
/// assert_eq!(values, [Some(1.0), Some(2.5), Some(45.0), Some(60.0), None]);
/// assert!(serde_json::from_str::<Number>("true").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Number(pub Option<f64>);

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

/// An integer read leniently (an integral float or a numeric string will do); `None` for
/// `null`. A fraction, or a value outside `i64`, is an error.
///
/// ```
/// use ow_domain::overfast::Int;
///
/// let i: Vec<Int> = serde_json::from_str(r#"[1, 2.0, "3", null]"#).unwrap();
/// assert_eq!(i, [Int(Some(1)), Int(Some(2)), Int(Some(3)), Int(None)]);
/// assert!(serde_json::from_str::<Int>("2.5").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Int(pub Option<i64>);

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
        // Parts that are finite alone can still overflow together ("1e308:0" is infinite).
        return (parts <= 3).then_some(seconds).and_then(finite);
    }
    let parsed = if text.contains(',') {
        text.replace(',', "").parse::<f64>()
    } else {
        text.parse::<f64>()
    };
    // `f64::from_str` also takes "inf" and "NaN": refuse them.
    parsed.ok().and_then(finite)
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
            "",
            "abc",
            "NaN",
            "inf",
            "-inf",
            "1:2:3:4",
            "1:-2",
            "1::2",
            "%",
            // Found while writing the overfast_body fuzz target: finite parts, infinite sum.
            "1e308:0",
            "1e308:1e308",
            "1:1e307:0",
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
        // The overfast_body fuzz target's `time-overflowing-to-infinity.json`.
        assert!(serde_json::from_str::<Number>(r#""1e308:1e308""#).is_err());

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
}
