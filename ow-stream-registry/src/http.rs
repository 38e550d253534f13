//! A Confluent-compatible registry reached over HTTP, through `schema_registry_converter`.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::Arc;

use apache_avro::Schema;
use parking_lot::RwLock;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_all_subjects, get_all_versions, get_schema_by_id,
    get_schema_by_subject_and_version, is_compatible_schema, perform_sr_call, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SrCall, SuppliedSchema,
};

use super::RegistryError;
use super::registered::{RegisteredSchema, SubjectVersion, schema_name, schema_text};
use super::store::VersionSpec;

/// What a call was about, to map Confluent's error codes onto typed errors.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Subject(&'a str),
    Version(&'a str, u32),
    Id(u32),
    None,
}

pub(crate) struct HttpRegistry {
    url: String,
    settings: SrSettings,
    /// Schemas by id: ids are immutable, so once fetched a schema never needs the network.
    cache: RwLock<HashMap<u32, Arc<RegisteredSchema>>>,
}

impl HttpRegistry {
    /// `urls` is a comma-separated list of `http://` / `https://` base URLs, tried in order.
    pub(crate) fn new(urls: &str) -> Result<Self, RegistryError> {
        let list: Vec<String> = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let invalid = |reason: &str| RegistryError::InvalidUrl {
            url: urls.to_string(),
            reason: reason.to_string(),
        };
        let Some((first, rest)) = list.split_first() else {
            return Err(invalid("no url given"));
        };
        if let Some(bad) = list
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(invalid(&format!(
                "{bad} is not an http:// or https:// url (a list must not mix schemes)"
            )));
        }
        let mut builder = SrSettings::new_builder(first.clone());
        for url in rest {
            builder.add_url(url.clone());
        }
        let settings = builder.build().map_err(|e| invalid(&e.error))?;
        Ok(HttpRegistry {
            url: list.join(","),
            settings,
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn cached(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        self.cache.read().get(&id).cloned()
    }

    fn remember(&self, schema: RegisteredSchema) -> Arc<RegisteredSchema> {
        self.cache
            .write()
            .entry(schema.id())
            .or_insert_with(|| Arc::new(schema))
            .clone()
    }

    /// The cached schema of `id`, or a new entry parsed from `text`.
    fn entry(&self, id: u32, text: String) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(known) = self.cached(id) {
            return Ok(known);
        }
        Ok(self.remember(RegisteredSchema::parse(id, text)?))
    }

    pub(crate) async fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(known) = self.cached(id) {
            return Ok(known);
        }
        let found = get_schema_by_id(id, &self.settings)
            .await
            .map_err(|e| self.error(e, Ctx::Id(id)))?;
        if found.schema_type != SchemaType::Avro {
            return Err(RegistryError::InvalidSchema {
                reason: format!(
                    "schema id {id} is a {:?} schema, not avro",
                    found.schema_type
                ),
            });
        }
        self.entry(id, found.schema)
    }

    pub(crate) async fn register(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<u32, RegistryError> {
        let text = schema_text(schema);
        let supplied =
            SuppliedSchema::new(Some(schema_name(schema)), SchemaType::Avro, text.clone());
        let registered = post_schema(&self.settings, subject.to_string(), supplied)
            .await
            .map_err(|e| self.error(e, Ctx::Subject(subject)))?;
        let id = registered.id;
        if self.cached(id).is_none() {
            self.remember(RegisteredSchema::new(id, schema.clone(), text));
        }
        Ok(id)
    }

    pub(crate) async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<SubjectVersion, RegistryError> {
        let (number, ctx) = match spec {
            VersionSpec::Latest => (None, Ctx::Subject(subject)),
            VersionSpec::Number(n) => (Some(n), Ctx::Version(subject, n)),
        };
        let found = get_schema_by_subject_and_version(&self.settings, subject, number)
            .await
            .map_err(|e| self.error(e, ctx))?;
        let version = found
            .version
            .or(number)
            .ok_or_else(|| RegistryError::BadResponse {
                url: self.url.clone(),
                reason: format!("no version in the answer for subject {subject}"),
            })?;
        let schema = self.entry(found.id, found.schema)?;
        Ok(SubjectVersion::new(subject, version, schema))
    }

    pub(crate) async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        get_all_versions(&self.settings, path_subject(subject))
            .await
            .map_err(|e| self.error(e, Ctx::Subject(subject)))
    }

    pub(crate) async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        get_all_subjects(&self.settings)
            .await
            .map_err(|e| self.error(e, Ctx::None))
    }

    pub(crate) async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let body = serde_json::json!({ "schema": schema_text(schema), "schemaType": "AVRO" });
        let body = body.to_string();
        let raw =
            match perform_sr_call(&self.settings, SrCall::PostForVersion(subject, &body)).await {
                Ok(raw) => raw,
                Err(e) if raw_code(&e) == Some(40403) => return Ok(None),
                Err(e) => return Err(self.error(e, Ctx::Subject(subject))),
            };
        let bad = |what: &str| RegistryError::BadResponse {
            url: self.url.clone(),
            reason: format!("no {what} in the lookup answer for subject {subject}"),
        };
        let id = raw.id.ok_or_else(|| bad("id"))?;
        let version = raw.version.ok_or_else(|| bad("version"))?;
        let schema = match raw.schema {
            Some(text) => self.entry(id, text)?,
            None => self.remember(RegisteredSchema::new(
                id,
                schema.clone(),
                schema_text(schema),
            )),
        };
        Ok(Some(SubjectVersion::new(subject, version, schema)))
    }

    pub(crate) async fn check(&self, subject: &str, schema: &Schema) -> Result<(), RegistryError> {
        let supplied = SuppliedSchema::new(
            Some(schema_name(schema)),
            SchemaType::Avro,
            schema_text(schema),
        );
        match is_compatible_schema(&self.settings, path_subject(subject), supplied).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                reason: format!(
                    "the schema registry at {} reports it incompatible with the subject's \
                     versions",
                    self.url
                ),
            }),
            // A subject without versions accepts anything.
            Err(e) if raw_code(&e) == Some(40401) => Ok(()),
            Err(e) => Err(self.error(e, Ctx::Subject(subject))),
        }
    }

    /// Maps a `schema_registry_converter` error onto [`RegistryError`].
    fn error(&self, e: SRCError, ctx: Ctx<'_>) -> RegistryError {
        if let Some(raw) = e.source().and_then(|s| s.downcast_ref::<RawError>()) {
            let status = status_of(&e.error).unwrap_or_else(|| status_of_code(raw.error_code));
            return match (raw.error_code, ctx) {
                (40401, Ctx::Subject(s) | Ctx::Version(s, _)) => RegistryError::SubjectNotFound {
                    subject: s.to_string(),
                },
                (40402, Ctx::Version(s, version)) => RegistryError::VersionNotFound {
                    subject: s.to_string(),
                    version,
                },
                (40402, Ctx::Subject(s)) => RegistryError::SubjectNotFound {
                    subject: s.to_string(),
                },
                (40403, Ctx::Id(id)) => RegistryError::SchemaNotFound { id },
                (409, Ctx::Subject(s)) => RegistryError::Incompatible {
                    subject: s.to_string(),
                    // This crate's server words it as our own `Display` does.
                    reason: strip_prefix(
                        &raw.message,
                        &format!("schema is incompatible with subject {s}: "),
                    ),
                },
                (42201, _) => RegistryError::InvalidSchema {
                    reason: strip_prefix(&raw.message, "invalid schema: "),
                },
                _ => RegistryError::Http {
                    url: self.url.clone(),
                    status,
                    code: raw.error_code,
                    message: raw.message.clone(),
                },
            };
        }
        if e.retriable {
            RegistryError::Unreachable {
                url: self.url.clone(),
                source: Box::new(e),
            }
        } else {
            RegistryError::BadResponse {
                url: self.url.clone(),
                reason: match &e.cause {
                    Some(cause) => format!("{}: {cause}", e.error),
                    None => e.error.clone(),
                },
            }
        }
    }
}

/// `message` without `prefix`, when it has it.
fn strip_prefix(message: &str, prefix: &str) -> String {
    message.strip_prefix(prefix).unwrap_or(message).to_string()
}

/// `schema_registry_converter` puts some subjects into URLs as they are: escape what would
/// change the path (as it does itself for the calls that escape).
fn path_subject(subject: &str) -> String {
    subject.replace('/', "%2F")
}

/// The Confluent error code in an error answer.
fn raw_code(e: &SRCError) -> Option<u32> {
    e.source()
        .and_then(|s| s.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
}

/// `"… failed with status 409 Conflict"` → 409.
fn status_of(message: &str) -> Option<u16> {
    let rest = &message[message.find("status ")? + "status ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Confluent's codes are the HTTP status, optionally followed by two digits (40401 → 404).
fn status_of_code(code: u32) -> u16 {
    let status = if code >= 10_000 { code / 100 } else { code };
    u16::try_from(status).unwrap_or(500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(HttpRegistry::new("http://a:1, https://b:2/").is_ok());
        assert_eq!(
            HttpRegistry::new("http://a:1, https://b:2/").unwrap().url(),
            "http://a:1,https://b:2"
        );
        assert!(matches!(
            HttpRegistry::new("http://a,ftp://b"),
            Err(RegistryError::InvalidUrl { .. })
        ));
        assert!(matches!(
            HttpRegistry::new(" , "),
            Err(RegistryError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn statuses() {
        assert_eq!(
            status_of("HTTP request to schema registry failed with status 409 Conflict"),
            Some(409)
        );
        assert_eq!(status_of("nothing"), None);
        assert_eq!(status_of_code(40401), 404);
        assert_eq!(status_of_code(409), 409);
        assert_eq!(status_of_code(50001), 500);
    }
}
