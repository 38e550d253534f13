//! A schema as the registry knows it: id, parsed schema, text, and the form that identifies it.

use std::fmt;
use std::sync::Arc;

use apache_avro::Schema;
use serde_json::Value as Json;

use super::RegistryError;

/// A schema registered under an id. Ids are immutable: the schema of an id never changes, so
/// registries cache these by id.
pub struct RegisteredSchema {
    id: u32,
    schema: Schema,
    text: String,
    form: String,
}

impl RegisteredSchema {
    /// Builds the entry for `schema` under `id`; `text` is its JSON as the registry serves it.
    pub(crate) fn new(id: u32, schema: Schema, text: String) -> Self {
        let form = registry_form(&schema);
        RegisteredSchema {
            id,
            schema,
            text,
            form,
        }
    }

    /// Parses schema text that came from a registry.
    pub(crate) fn parse(id: u32, text: String) -> Result<Self, RegistryError> {
        let schema = Schema::parse_str(&text).map_err(RegistryError::invalid_schema)?;
        Ok(RegisteredSchema::new(id, schema, text))
    }

    /// The global id of the schema: the 4 bytes after the magic byte in Confluent framing.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema as JSON text, as the registry serves it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The full name of a record, enum or fixed schema (`"ow.raw.RawPlayerProfile"`), or the
    /// type for other schemas (`"string"`).
    pub fn name(&self) -> String {
        schema_name(&self.schema)
    }

    /// The identity of the schema in the registry: its [`registry_form`]. A serde whose own
    /// schema has the same form as a record's writer schema can decode without resolution.
    pub fn form(&self) -> &str {
        &self.form
    }
}

impl fmt::Debug for RegisteredSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredSchema")
            .field("id", &self.id)
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// A version of a subject: which schema it is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SubjectVersion {
    /// The subject, e.g. `ow.raw.player-profiles-value`.
    pub subject: String,
    /// The version within the subject, from 1.
    pub version: u32,
    /// The schema.
    pub schema: Arc<RegisteredSchema>,
}

impl SubjectVersion {
    pub(crate) fn new(
        subject: impl Into<String>,
        version: u32,
        schema: Arc<RegisteredSchema>,
    ) -> Self {
        SubjectVersion {
            subject: subject.into(),
            version,
            schema,
        }
    }

    /// The schema id.
    pub fn id(&self) -> u32 {
        self.schema.id()
    }
}

/// The name of a schema as errors and logs show it: the full name of a record, enum or fixed
/// schema (`"ow.raw.RawPlayerProfile"`), the type otherwise (`"string"`, `"array"`, `"union"`…).
///
/// ```
/// use apache_avro::Schema;
/// use ow_stream_registry::schema_name;
///
/// let record = Schema::parse_str(r#"{"type":"record","name":"P","namespace":"ow","fields":[]}"#).unwrap();
/// assert_eq!(schema_name(&record), "ow.P");
/// assert_eq!(schema_name(&Schema::String), "string");
/// ```
pub fn schema_name(schema: &Schema) -> String {
    if let Some(name) = schema.name() {
        return name.fullname(None);
    }
    match serde_json::to_value(schema) {
        Ok(Json::String(s)) => s,
        Ok(Json::Object(map)) => match map.get("type") {
            Some(Json::String(t)) => t.clone(),
            _ => "schema".to_string(),
        },
        Ok(Json::Array(_)) => "union".to_string(),
        _ => "schema".to_string(),
    }
}

/// The JSON text of a schema as the registry stores and serves it.
pub(crate) fn schema_text(schema: &Schema) -> String {
    // A parsed `Schema` always serializes (apache-avro's own `canonical_form` relies on it).
    serde_json::to_string(schema).unwrap_or_default()
}

/// The identity of a schema in the registry: two schemas with the same form get the same id.
///
/// It is Avro's *parsing canonical form* made a little stricter: like it, the form ignores
/// whitespace, key order, documentation and how names are spelt (`"namespace"` + `"name"` or a
/// full name), but unlike it the form keeps field defaults, logical types, aliases, sort orders
/// and custom properties. A schema that only adds a default to a field is a new version of its
/// subject (compatibility checks of later versions depend on it), as in Confluent's registry;
/// with the plain canonical form it would silently keep the old schema.
///
/// ```
/// use apache_avro::Schema;
/// use ow_stream_registry::registry_form;
///
/// let plain = Schema::parse_str(r#"{"type":"record","name":"P","fields":[{"name":"a","type":"int"}]}"#).unwrap();
/// let documented = Schema::parse_str(
///     r#"{"doc":"a player","name":"P","type":"record","fields":[{"name":"a","type":"int","doc":"!"}]}"#,
/// ).unwrap();
/// let defaulted = Schema::parse_str(
///     r#"{"type":"record","name":"P","fields":[{"name":"a","type":"int","default":0}]}"#,
/// ).unwrap();
/// assert_eq!(registry_form(&plain), registry_form(&documented));
/// assert_ne!(registry_form(&plain), registry_form(&defaulted));
/// ```
pub fn registry_form(schema: &Schema) -> String {
    let mut json = match serde_json::to_value(schema) {
        Ok(json) => json,
        Err(_) => return schema.canonical_form(),
    };
    strip_docs(&mut json);
    let mut out = String::new();
    write_sorted(&json, &mut out);
    out
}

/// Removes `doc` attributes from a schema's JSON, leaving field defaults untouched (a default
/// for a record-typed field is an object that may well have a `doc` key).
fn strip_docs(json: &mut Json) {
    match json {
        Json::Object(map) => {
            map.remove("doc");
            for (key, value) in map.iter_mut() {
                if key != "default" {
                    strip_docs(value);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(strip_docs),
        _ => {}
    }
}

/// Compact JSON with object keys sorted, whatever `serde_json`'s map order is.
fn write_sorted(json: &Json, out: &mut String) {
    match json {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(key.clone()).to_string());
                out.push(':');
                write_sorted(value, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> String {
        registry_form(&Schema::parse_str(s).unwrap())
    }

    #[test]
    fn form_ignores_whitespace_docs_and_name_spelling() {
        let a = r#"{"type":"record","name":"P","namespace":"ow","fields":[{"name":"a","type":"string"}]}"#;
        let b = r#"{
            "namespace": "ow",
            "doc": "a player",
            "name": "P",
            "type": "record",
            "fields": [ { "type": "string", "name": "a", "doc": "the a" } ]
        }"#;
        let c =
            r#"{"type":"record","name":"ow.P","fields":[{"name":"a","type":{"type":"string"}}]}"#;
        assert_eq!(form(a), form(b));
        assert_eq!(form(a), form(c));
    }

    #[test]
    fn form_keeps_defaults_and_logical_types() {
        let plain = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"long"}]}"#;
        let default =
            r#"{"type":"record","name":"P","fields":[{"name":"a","type":"long","default":1}]}"#;
        let logical = r#"{"type":"record","name":"P","fields":[{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        assert_ne!(form(plain), form(default));
        assert_ne!(form(plain), form(logical));
        // The plain canonical form would have merged the default away.
        let pcf = |s: &str| Schema::parse_str(s).unwrap().canonical_form();
        assert_eq!(pcf(plain), pcf(default));
    }

    #[test]
    fn names() {
        let s = Schema::parse_str(ow_raw_profile()).unwrap();
        assert_eq!(schema_name(&s), "ow.raw.RawPlayerProfile");
        assert_eq!(schema_name(&Schema::String), "string");
        assert_eq!(
            schema_name(&Schema::parse_str(r#"{"type":"map","values":"long"}"#).unwrap()),
            "map"
        );
        assert_eq!(
            schema_name(&Schema::parse_str(r#"["null","long"]"#).unwrap()),
            "union"
        );
    }

    fn ow_raw_profile() -> &'static str {
        r#"{"type":"record","name":"RawPlayerProfile","namespace":"ow.raw","fields":[{"name":"player_id","type":"string"}]}"#
    }

    #[test]
    fn text_round_trips() {
        let s = Schema::parse_str(ow_raw_profile()).unwrap();
        let text = schema_text(&s);
        let again = Schema::parse_str(&text).unwrap();
        assert_eq!(registry_form(&again), registry_form(&s));
    }
}
