//! Avro values as JSON, for showing records whose Rust type is unknown (the topic browser).

use apache_avro::types::Value;
use serde_json::{Map, Number, Value as Json};

/// Converts a decoded Avro value to JSON.
///
/// Unions are shown as the branch value itself (not Avro's `{"type": value}` wrapping), enums
/// as their symbol, bytes and fixed as strings of code points U+0000–U+00FF (Avro's JSON
/// encoding), logical types as their underlying numbers, non-finite floats as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"`, big decimals as decimal strings and durations as
/// `{"months", "days", "millis"}`.
pub(crate) fn to_json(value: Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(i),
        Value::Long(l)
        | Value::TimeMicros(l)
        | Value::TimestampMillis(l)
        | Value::TimestampMicros(l)
        | Value::TimestampNanos(l)
        | Value::LocalTimestampMillis(l)
        | Value::LocalTimestampMicros(l)
        | Value::LocalTimestampNanos(l) => Json::from(l),
        Value::Float(f) => float(f64::from(f)),
        Value::Double(d) => float(d),
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => latin1(&bytes),
        Value::String(s) | Value::Enum(_, s) => Json::String(s),
        Value::Union(_, inner) => to_json(*inner),
        Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Map(items) => Json::Object(
            items
                .into_iter()
                .map(|(k, v)| (k, to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Record(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Decimal(d) => match <Vec<u8>>::try_from(&d) {
            Ok(bytes) => latin1(&bytes),
            Err(_) => Json::Null,
        },
        Value::BigDecimal(d) => Json::String(d.to_string()),
        Value::Duration(d) => {
            let mut map = Map::new();
            map.insert("months".into(), Json::from(u32::from(d.months())));
            map.insert("days".into(), Json::from(u32::from(d.days())));
            map.insert("millis".into(), Json::from(u32::from(d.millis())));
            Json::Object(map)
        }
        Value::Uuid(u) => Json::String(u.hyphenated().to_string()),
    }
}

fn float(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn latin1(bytes: &[u8]) -> Json {
    Json::String(bytes.iter().map(|&b| char::from(b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_to_json() {
        let value = Value::Record(vec![
            ("s".into(), Value::String("x".into())),
            ("n".into(), Value::Union(0, Box::new(Value::Null))),
            ("l".into(), Value::Union(1, Box::new(Value::Long(5)))),
            ("e".into(), Value::Enum(1, "private".into())),
            ("t".into(), Value::TimestampMillis(1_700_000_000_000)),
            ("d".into(), Value::Double(f64::NAN)),
            ("b".into(), Value::Bytes(vec![104, 105, 255])),
            (
                "m".into(),
                Value::Map([("k".to_string(), Value::Int(1))].into_iter().collect()),
            ),
            ("a".into(), Value::Array(vec![Value::Boolean(true)])),
        ]);
        assert_eq!(
            to_json(value),
            serde_json::json!({
                "s": "x", "n": null, "l": 5, "e": "private", "t": 1_700_000_000_000i64,
                "d": "NaN", "b": "hi\u{ff}", "m": {"k": 1}, "a": [true]
            })
        );
    }
}
