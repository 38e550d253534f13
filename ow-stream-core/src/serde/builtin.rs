//! The serdes that need no schema registry.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Serde, SerdeContext, SerdeError};

/// UTF-8 text.
#[derive(Clone, Copy, Debug, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        value: &String,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<String, SerdeError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| SerdeError::Malformed {
            format: "utf-8",
            reason: e.to_string(),
        })
    }

    fn describe(&self) -> String {
        "string".into()
    }
}

/// The bytes themselves.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        value: &Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }

    fn describe(&self) -> String {
        "bytes".into()
    }
}

/// No bytes at all: for topics whose keys carry nothing (`()` keys are written as empty keys).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        _value: &(),
        _out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, _bytes: &[u8]) -> Result<(), SerdeError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "unit".into()
    }
}

/// JSON through `serde_json`, for any `serde` type.
///
/// This is the serde the DSL uses for internal topics and stores when none is given: it needs
/// nothing but `Serialize + DeserializeOwned`. Map keys are written in the order the type gives
/// them, so use `BTreeMap` rather than `HashMap` in keys (keys are compared as bytes).
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for JsonSerde<T> {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        serde_json::to_writer(out, value)?;
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<T, SerdeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    fn describe(&self) -> String {
        let name = std::any::type_name::<T>();
        format!("json({})", short_type_name(name))
    }
}

/// `alloc::string::String` → `String`, `core::option::Option<my::Type>` → `Option<Type>`.
pub(crate) fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut segment = String::new();
    for ch in name.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            segment.push(ch);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(""));
            segment.clear();
            out.push(ch);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trip_and_bad_utf8() {
        let ctx = SerdeContext::value("t");
        let bytes = StringSerde.serialize(ctx, &"héllo".to_string()).unwrap();
        assert_eq!(StringSerde.deserialize(ctx, &bytes).unwrap(), "héllo");
        let err = StringSerde.deserialize(ctx, &[0xff, 0xfe]).unwrap_err();
        assert!(matches!(
            err,
            SerdeError::Malformed {
                format: "utf-8",
                ..
            }
        ));
    }

    #[test]
    fn json_round_trip() {
        let ctx = SerdeContext::key("t");
        let serde = JsonSerde::<(String, i64)>::new();
        let bytes = serde.serialize(ctx, &("a".into(), 3)).unwrap();
        assert_eq!(bytes, br#"["a",3]"#);
        assert_eq!(serde.deserialize(ctx, &bytes).unwrap(), ("a".into(), 3));
        assert!(serde.deserialize(ctx, b"{").is_err());
    }

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(
            short_type_name("core::option::Option<my::mod::Type>"),
            "Option<Type>"
        );
        assert_eq!(
            short_type_name("(i64, alloc::string::String)"),
            "(i64, String)"
        );
    }
}
