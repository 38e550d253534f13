//! Compatibility levels, and the Avro schema-resolution checks behind them.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

use super::RegistryError;

/// How a new schema of a subject must relate to the subject's earlier versions (Confluent's
/// levels). A level is set globally and may be overridden per subject.
///
/// | level | the new schema must… |
/// |---|---|
/// | `BACKWARD` (default) | read data written with the latest version |
/// | `FORWARD` | be readable by the latest version |
/// | `FULL` | both |
/// | `*_TRANSITIVE` | the same, against every earlier version instead of the latest |
/// | `NONE` | nothing |
///
/// ```
/// use ow_stream_registry::CompatibilityLevel;
///
/// let level: CompatibilityLevel = "full_transitive".parse().unwrap();
/// assert_eq!(level, CompatibilityLevel::FullTransitive);
/// assert_eq!(level.to_string(), "FULL_TRANSITIVE");
/// assert_eq!(CompatibilityLevel::default(), CompatibilityLevel::Backward);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// The new schema can read data written with the latest version.
    #[default]
    Backward,
    /// The new schema can read data written with every earlier version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every earlier version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
    /// No check.
    None,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's order.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
        CompatibilityLevel::None,
    ];

    /// The name Confluent uses, such as `"BACKWARD_TRANSITIVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
            CompatibilityLevel::None => "NONE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Checks `new` against the earlier versions of a subject, oldest first, as
    /// `(version, schema)`. `Err` carries the reason.
    pub(crate) fn check<'a>(
        self,
        new: &Schema,
        earlier: impl DoubleEndedIterator<Item = (u32, &'a Schema)>,
    ) -> Result<(), String> {
        if self == CompatibilityLevel::None {
            return Ok(());
        }
        let targets: Box<dyn Iterator<Item = (u32, &Schema)>> = if self.transitive() {
            Box::new(earlier.rev())
        } else {
            Box::new(earlier.rev().take(1))
        };
        for (version, old) in targets {
            if self.backward() {
                can_read(old, new).map_err(|why| {
                    format!("the new schema cannot read data written with version {version}: {why}")
                })?;
            }
            if self.forward() {
                can_read(new, old).map_err(|why| {
                    format!("version {version} cannot read data written with the new schema: {why}")
                })?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Parses a level name, ignoring case (`"backward"`, `"FULL_TRANSITIVE"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RegistryError::InvalidCompatibility {
                level: s.to_string(),
            })
    }
}

/// Whether data written with `writer` can always be read with `reader`, per Avro's resolution
/// rules. Partial compatibility (some enum symbols or union branches of the writer unknown to
/// the reader) counts as incompatible, as in Confluent's registry.
pub(crate) fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(
            "some values of the writer schema cannot be read: the reader lacks enum symbols \
             (and has no enum default) or union branches of the writer"
                .to_string(),
        ),
        Err(e) => Err(describe(&e)),
    }
}

/// A short, lowercase description of a compatibility error with the path of fields to it.
fn describe(e: &CompatibilityError) -> String {
    match e {
        CompatibilityError::FieldTypeMismatch(field, inner) => {
            format!("field {field}: {}", describe(inner))
        }
        CompatibilityError::MissingDefaultValue(field) => {
            format!("field {field} is new in the reader schema and has no default")
        }
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => format!(
            "writer type {} cannot be read as {}",
            kind(writer_schema_type),
            kind(reader_schema_type)
        ),
        CompatibilityError::TypeExpected {
            schema_type,
            expected_type,
        } => format!("{schema_type} should have been one of {expected_type:?}"),
        CompatibilityError::MissingSymbols => {
            "the reader enum has none of the writer enum's symbols".to_string()
        }
        CompatibilityError::MissingUnionElements => {
            "no branch of the writer union can be read by the reader union".to_string()
        }
        CompatibilityError::SchemaMismatchAllUnionElements => {
            "no union branch matches the other schema".to_string()
        }
        CompatibilityError::FixedMismatch => "fixed sizes differ".to_string(),
        CompatibilityError::DecimalMismatch {
            r_precision,
            r_scale,
            w_precision,
            w_scale,
        } => format!(
            "decimal precision and scale differ: writer ({w_precision},{w_scale}), reader \
             ({r_precision},{r_scale})"
        ),
        CompatibilityError::NameMismatch {
            writer_name,
            reader_name,
        } => format!("name changed from {writer_name} to {reader_name}"),
        CompatibilityError::Inconclusive(what) => format!("cannot compare type {what}"),
    }
}

/// `"Record(RecordSchema { … })"` (a `Debug` rendering of a schema) → `"record"`.
fn kind(debug: &str) -> String {
    debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Schema {
        Schema::parse_str(s).unwrap()
    }

    const V1: &str = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"}]}"#;
    /// V1 + a field with a default.
    const V2_DEFAULT: &str = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"},{"name":"b","type":"long","default":0}]}"#;
    /// V1 + a field without a default.
    const V2_REQUIRED: &str = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}"#;
    /// V1 without its only field.
    const V0_EMPTY: &str = r#"{"type":"record","name":"P","fields":[]}"#;

    fn check(level: CompatibilityLevel, new: &str, earlier: &[&str]) -> Result<(), String> {
        let earlier: Vec<Schema> = earlier.iter().map(|s| parse(s)).collect();
        level.check(
            &parse(new),
            earlier.iter().enumerate().map(|(i, s)| (i as u32 + 1, s)),
        )
    }

    #[test]
    fn levels_parse_and_print() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>().unwrap(), level);
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{}\"", level.as_str())
            );
        }
        assert!(matches!(
            "SIDEWAYS".parse::<CompatibilityLevel>(),
            Err(RegistryError::InvalidCompatibility { level }) if level == "SIDEWAYS"
        ));
    }

    #[test]
    fn backward_accepts_a_field_with_default_and_refuses_one_without() {
        use CompatibilityLevel::*;
        assert_eq!(check(Backward, V2_DEFAULT, &[V1]), Ok(()));
        let err = check(Backward, V2_REQUIRED, &[V1]).unwrap_err();
        assert_eq!(
            err,
            "the new schema cannot read data written with version 1: field b is new in the \
             reader schema and has no default"
        );
        // Removing a field is backward compatible (the reader ignores it)…
        assert_eq!(check(Backward, V0_EMPTY, &[V1]), Ok(()));
        // …but not forward compatible: the old reader needs `a`, which has no default.
        let err = check(Forward, V0_EMPTY, &[V1]).unwrap_err();
        assert_eq!(
            err,
            "version 1 cannot read data written with the new schema: field a is new in the \
             reader schema and has no default"
        );
    }

    #[test]
    fn forward_full_and_none() {
        use CompatibilityLevel::*;
        // Adding a required field: the old reader ignores it, so it is forward compatible.
        assert_eq!(check(Forward, V2_REQUIRED, &[V1]), Ok(()));
        assert!(check(Full, V2_REQUIRED, &[V1]).is_err());
        assert_eq!(check(Full, V2_DEFAULT, &[V1]), Ok(()));
        assert_eq!(check(None, r#""string""#, &[V1]), Ok(()));
        // Type change.
        let err = check(Backward, r#""string""#, &[r#""int""#]).unwrap_err();
        assert_eq!(
            err,
            "the new schema cannot read data written with version 1: writer type int cannot \
             be read as string"
        );
        // Promotion int → long is fine backward, not forward.
        assert_eq!(check(Backward, r#""long""#, &[r#""int""#]), Ok(()));
        assert!(check(Forward, r#""long""#, &[r#""int""#]).is_err());
    }

    #[test]
    fn transitive_levels_check_every_version() {
        use CompatibilityLevel::*;
        // v1 has `a`; v2 drops it; v3 adds `a` back without a default.
        let v3 = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"}]}"#;
        // Against the latest (v2, empty) v3 cannot read v2 data: `a` has no default.
        assert!(check(Backward, v3, &[V1, V0_EMPTY]).is_err());
        // Forward against the latest only passes, transitive too (v1 and v2 readers can read).
        assert_eq!(check(Forward, V0_EMPTY, &[V0_EMPTY]), Ok(()));
        let v4 =
            r#"{"type":"record","name":"P","fields":[{"name":"b","type":"long","default":1}]}"#;
        // v4 reads v2 data (b has a default) and v1 data (a ignored, b defaulted).
        assert_eq!(check(BackwardTransitive, v4, &[V1, V0_EMPTY]), Ok(()));
        // FORWARD: v2 (empty) can read v4 data; v1 cannot (needs `a`).
        assert_eq!(check(Forward, v4, &[V1, V0_EMPTY]), Ok(()));
        let err = check(ForwardTransitive, v4, &[V1, V0_EMPTY]).unwrap_err();
        assert!(err.starts_with("version 1 cannot read"), "{err}");
    }

    #[test]
    fn missing_enum_symbols_are_incompatible() {
        let abc = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
        let ab = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
        let ab_default = r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#;
        assert!(check(CompatibilityLevel::Backward, ab, &[abc]).is_err());
        assert_eq!(
            check(CompatibilityLevel::Backward, ab_default, &[abc]),
            Ok(())
        );
        assert_eq!(check(CompatibilityLevel::Backward, abc, &[ab]), Ok(()));
    }
}
