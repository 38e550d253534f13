//! The in-process registry: schemas, subjects and compatibility levels in memory, optionally
//! persisted in a directory.
//!
//! Everything here is synchronous: an in-process registry never waits on a network, so serdes
//! over it need no `prepare`. A directory-backed store rewrites its one file atomically (temp
//! file, fsync, rename, fsync of the directory) on every change, under its lock, before the
//! change becomes visible; changes are rare (a registration per new schema), reads are not.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

use apache_avro::Schema;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::registered::{RegisteredSchema, SubjectVersion, registry_form, schema_text};
use super::{CompatibilityLevel, RegistryError};

/// The file a directory-backed registry keeps its schemas in.
const FILE_NAME: &str = "schema-registry.json";
/// The lock file that keeps a second process from opening the same directory.
const LOCK_NAME: &str = "schema-registry.lock";
/// Version of the file layout.
const FORMAT: u32 = 1;

/// Which version of a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    Latest,
    Number(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    version: u32,
    id: u32,
}

#[derive(Clone, Default)]
struct State {
    schemas: HashMap<u32, Arc<RegisteredSchema>>,
    by_form: HashMap<String, u32>,
    subjects: BTreeMap<String, Vec<Version>>,
    global: CompatibilityLevel,
    subject_levels: BTreeMap<String, CompatibilityLevel>,
    next_id: u32,
}

impl State {
    fn empty() -> Self {
        State {
            next_id: 1,
            ..State::default()
        }
    }

    fn level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_levels
            .get(subject)
            .copied()
            .unwrap_or(self.global)
    }

    fn subject_version(&self, subject: &str, v: Version) -> Option<SubjectVersion> {
        let schema = self.schemas.get(&v.id)?.clone();
        Some(SubjectVersion::new(subject, v.version, schema))
    }

    fn check(&self, subject: &str, schema: &Schema) -> Result<(), RegistryError> {
        let Some(versions) = self.subjects.get(subject) else {
            return Ok(());
        };
        let earlier = versions
            .iter()
            .filter_map(|v| Some((v.version, self.schemas.get(&v.id)?.schema())));
        self.level(subject)
            .check(schema, earlier)
            .map_err(|reason| RegistryError::Incompatible {
                subject: subject.to_string(),
                reason,
            })
    }
}

/// An in-process registry.
pub(crate) struct Store {
    state: RwLock<State>,
    location: String,
    persist: Option<Persist>,
}

impl Store {
    fn in_memory(location: String) -> Self {
        Store {
            state: RwLock::new(State::empty()),
            location,
            persist: None,
        }
    }

    /// Where the store lives: `mock://<scope>` or its directory.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// Registers `schema` under `subject`, or returns its id if the subject already has it.
    pub(crate) fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let form = registry_form(schema);
        {
            let state = self.state.read();
            if let Some(id) = already_registered(&state, subject, &form) {
                return Ok(id);
            }
        }
        let mut state = self.state.write();
        // Someone may have registered it between the two locks.
        if let Some(id) = already_registered(&state, subject, &form) {
            return Ok(id);
        }
        state.check(subject, schema)?;
        let known = state.by_form.get(&form).copied();
        let id = known.unwrap_or(state.next_id);
        self.commit(&mut state, |state| {
            if known.is_none() {
                let text = schema_text(schema);
                let entry = RegisteredSchema::new(id, schema.clone(), text);
                state.schemas.insert(id, Arc::new(entry));
                state.by_form.insert(form, id);
                state.next_id = id + 1;
            }
            let versions = state.subjects.entry(subject.to_string()).or_default();
            let version = versions.last().map_or(1, |v| v.version + 1);
            versions.push(Version { version, id });
        })?;
        Ok(id)
    }

    pub(crate) fn schema(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        self.state.read().schemas.get(&id).cloned()
    }

    pub(crate) fn subjects(&self) -> Vec<String> {
        self.state.read().subjects.keys().cloned().collect()
    }

    pub(crate) fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let state = self.state.read();
        let versions = state
            .subjects
            .get(subject)
            .ok_or_else(|| subject_not_found(subject))?;
        Ok(versions.iter().map(|v| v.version).collect())
    }

    pub(crate) fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<SubjectVersion, RegistryError> {
        let state = self.state.read();
        let versions = state
            .subjects
            .get(subject)
            .ok_or_else(|| subject_not_found(subject))?;
        let found = match spec {
            VersionSpec::Latest => versions.last(),
            VersionSpec::Number(n) => versions.iter().find(|v| v.version == n),
        };
        let missing = || RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: match spec {
                VersionSpec::Latest => 0,
                VersionSpec::Number(n) => n,
            },
        };
        let v = found.copied().ok_or_else(missing)?;
        state.subject_version(subject, v).ok_or_else(missing)
    }

    /// The version of `subject` that is `schema`, if any.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let form = registry_form(schema);
        let state = self.state.read();
        let versions = state
            .subjects
            .get(subject)
            .ok_or_else(|| subject_not_found(subject))?;
        let Some(&id) = state.by_form.get(&form) else {
            return Ok(None);
        };
        Ok(versions
            .iter()
            .find(|v| v.id == id)
            .and_then(|v| state.subject_version(subject, *v)))
    }

    /// Whether registering `schema` under `subject` would pass the compatibility check.
    pub(crate) fn check(&self, subject: &str, schema: &Schema) -> Result<(), RegistryError> {
        self.state.read().check(subject, schema)
    }

    /// The level set for `subject`, or the global level for `None`.
    pub(crate) fn level(&self, subject: Option<&str>) -> Option<CompatibilityLevel> {
        let state = self.state.read();
        match subject {
            None => Some(state.global),
            Some(s) => state.subject_levels.get(s).copied(),
        }
    }

    pub(crate) fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let mut state = self.state.write();
        self.commit(&mut state, |state| match subject {
            None => state.global = level,
            Some(s) => {
                state.subject_levels.insert(s.to_string(), level);
            }
        })
    }

    /// Applies `change` to the state, writing it to disk first for a directory-backed store.
    /// On a write error the state is left as it was.
    fn commit(
        &self,
        state: &mut State,
        change: impl FnOnce(&mut State),
    ) -> Result<(), RegistryError> {
        match &self.persist {
            None => {
                change(state);
                Ok(())
            }
            Some(persist) => {
                let mut next = state.clone();
                change(&mut next);
                persist.write(&next)?;
                *state = next;
                Ok(())
            }
        }
    }
}

fn already_registered(state: &State, subject: &str, form: &str) -> Option<u32> {
    let id = *state.by_form.get(form)?;
    state
        .subjects
        .get(subject)?
        .iter()
        .any(|v| v.id == id)
        .then_some(id)
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::SubjectNotFound {
        subject: subject.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// mock:// scopes

static MOCK_SCOPES: LazyLock<Mutex<HashMap<String, Arc<Store>>>> = LazyLock::new(Default::default);

/// The store of a `mock://` scope, created on first use. Scopes live until dropped with
/// [`drop_mock_scope`] (as in Confluent's `MockSchemaRegistry`).
pub(crate) fn mock_scope(scope: &str) -> Arc<Store> {
    MOCK_SCOPES
        .lock()
        .entry(scope.to_string())
        .or_insert_with(|| Arc::new(Store::in_memory(format!("mock://{scope}"))))
        .clone()
}

/// Forgets a `mock://` scope; handles still open keep their store.
pub(crate) fn drop_mock_scope(scope: &str) {
    MOCK_SCOPES.lock().remove(scope);
}

// ---------------------------------------------------------------------------------------------
// Directory-backed stores

/// Directory stores open in this process, so that every handle on a directory shares one store.
static OPEN_DIRS: LazyLock<Mutex<HashMap<PathBuf, Weak<Store>>>> = LazyLock::new(Default::default);

struct Persist {
    dir: PathBuf,
    file: PathBuf,
    /// Held (with an exclusive lock) for as long as the store is open.
    _lock: File,
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    format: u32,
    compatibility: CompatibilityLevel,
    #[serde(default)]
    subject_compatibility: BTreeMap<String, CompatibilityLevel>,
    schemas: Vec<PersistedSchema>,
    subjects: BTreeMap<String, Vec<Version>>,
}

#[derive(Serialize, Deserialize)]
struct PersistedSchema {
    id: u32,
    schema: String,
}

/// Opens (creating it if needed) the registry kept in `dir`; a directory already open in this
/// process gives the same store.
pub(crate) fn open_dir(dir: &Path) -> Result<Arc<Store>, RegistryError> {
    fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    let dir = fs::canonicalize(dir).map_err(|e| RegistryError::io(dir, e))?;
    let mut open = OPEN_DIRS.lock();
    if let Some(store) = open.get(&dir).and_then(Weak::upgrade) {
        return Ok(store);
    }
    let lock_path = dir.join(LOCK_NAME);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| RegistryError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(RegistryError::Locked { path: dir }),
        Err(fs::TryLockError::Error(e)) => return Err(RegistryError::io(&lock_path, e)),
    }
    let file = dir.join(FILE_NAME);
    let state = load(&file)?;
    let store = Arc::new(Store {
        state: RwLock::new(state),
        location: dir.display().to_string(),
        persist: Some(Persist {
            dir: dir.clone(),
            file,
            _lock: lock,
        }),
    });
    open.retain(|_, weak| weak.strong_count() > 0);
    open.insert(dir, Arc::downgrade(&store));
    Ok(store)
}

fn load(file: &Path) -> Result<State, RegistryError> {
    let bytes = match fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::empty()),
        Err(e) => return Err(RegistryError::io(file, e)),
    };
    let corrupt = |reason: String| RegistryError::Corrupt {
        path: file.to_path_buf(),
        reason,
    };
    let persisted: Persisted =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if persisted.format != FORMAT {
        return Err(corrupt(format!(
            "unknown format {} (this build reads format {FORMAT})",
            persisted.format
        )));
    }
    let mut state = State::empty();
    state.global = persisted.compatibility;
    state.subject_levels = persisted.subject_compatibility;
    for entry in persisted.schemas {
        let schema = RegisteredSchema::parse(entry.id, entry.schema)
            .map_err(|e| corrupt(format!("schema id {}: {e}", entry.id)))?;
        if entry.id == 0 || state.schemas.contains_key(&entry.id) {
            return Err(corrupt(format!(
                "schema id {} is invalid or repeated",
                entry.id
            )));
        }
        state
            .by_form
            .entry(schema.form().to_string())
            .or_insert(entry.id);
        state.next_id = state.next_id.max(entry.id + 1);
        state.schemas.insert(entry.id, Arc::new(schema));
    }
    for (subject, versions) in &persisted.subjects {
        for v in versions {
            if !state.schemas.contains_key(&v.id) {
                return Err(corrupt(format!(
                    "subject {subject} version {} names unknown schema id {}",
                    v.version, v.id
                )));
            }
        }
        if versions.windows(2).any(|w| w[0].version >= w[1].version) {
            return Err(corrupt(format!(
                "versions of subject {subject} are not increasing"
            )));
        }
    }
    state.subjects = persisted.subjects;
    Ok(state)
}

impl Persist {
    /// Writes `state` atomically: a reader of the directory sees the old file or the new one.
    fn write(&self, state: &State) -> Result<(), RegistryError> {
        let mut schemas: Vec<PersistedSchema> = state
            .schemas
            .values()
            .map(|s| PersistedSchema {
                id: s.id(),
                schema: s.text().to_string(),
            })
            .collect();
        schemas.sort_by_key(|s| s.id);
        let persisted = Persisted {
            format: FORMAT,
            compatibility: state.global,
            subject_compatibility: state.subject_levels.clone(),
            schemas,
            subjects: state.subjects.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&persisted)
            .map_err(|e| RegistryError::io(&self.file, std::io::Error::other(e)))?;
        let tmp = self.file.with_extension("json.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| RegistryError::io(path, e)
        };
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &self.file).map_err(io(&self.file))?;
        // Make the rename itself durable.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(s: &str) -> Schema {
        Schema::parse_str(s).unwrap()
    }

    const V1: &str =
        r#"{"type":"record","name":"P","namespace":"ow","fields":[{"name":"a","type":"string"}]}"#;
    const V1_DOCS: &str = r#"{
        "type": "record", "name": "P", "namespace": "ow", "doc": "a player",
        "fields": [{"name": "a", "type": "string", "doc": "the a field"}]
    }"#;
    const V2: &str = r#"{"type":"record","name":"P","namespace":"ow","fields":[{"name":"a","type":"string"},{"name":"b","type":"long","default":0}]}"#;
    const V3_BAD: &str = r#"{"type":"record","name":"P","namespace":"ow","fields":[{"name":"a","type":"string"},{"name":"b","type":"long","default":0},{"name":"c","type":"long"}]}"#;

    fn memory() -> Store {
        Store::in_memory("mock://test".into())
    }

    #[test]
    fn same_schema_same_id_across_spelling_and_subjects() {
        let store = memory();
        let id = store.register("t-value", &schema(V1)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(store.register("t-value", &schema(V1)).unwrap(), 1);
        assert_eq!(store.register("t-value", &schema(V1_DOCS)).unwrap(), 1);
        assert_eq!(store.versions("t-value").unwrap(), [1]);
        // Another subject: same global id, its own version 1.
        assert_eq!(store.register("u-value", &schema(V1_DOCS)).unwrap(), 1);
        assert_eq!(store.versions("u-value").unwrap(), [1]);
        // A new schema: a new id and version.
        assert_eq!(store.register("t-value", &schema(V2)).unwrap(), 2);
        assert_eq!(store.versions("t-value").unwrap(), [1, 2]);
        // Registering v1 again does not create a version: it is already one.
        assert_eq!(store.register("t-value", &schema(V1)).unwrap(), 1);
        assert_eq!(store.versions("t-value").unwrap(), [1, 2]);
        let latest = store.version("t-value", VersionSpec::Latest).unwrap();
        assert_eq!((latest.version, latest.id()), (2, 2));
        assert_eq!(store.subjects(), ["t-value", "u-value"]);
    }

    #[test]
    fn incompatible_schema_is_refused_with_the_subject() {
        let store = memory();
        store.register("t-value", &schema(V1)).unwrap();
        store.register("t-value", &schema(V2)).unwrap();
        let err = store.register("t-value", &schema(V3_BAD)).unwrap_err();
        match err {
            RegistryError::Incompatible { subject, reason } => {
                assert_eq!(subject, "t-value");
                assert_eq!(
                    reason,
                    "the new schema cannot read data written with version 2: field c is new \
                     in the reader schema and has no default"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Nothing was registered.
        assert_eq!(store.versions("t-value").unwrap(), [1, 2]);
        assert!(store.schema(3).is_none());
        // Under NONE for that subject only, it goes through.
        store
            .set_level(Some("t-value"), CompatibilityLevel::None)
            .unwrap();
        assert_eq!(store.level(Some("t-value")), Some(CompatibilityLevel::None));
        assert_eq!(store.level(Some("other")), None);
        assert_eq!(store.level(None), Some(CompatibilityLevel::Backward));
        assert_eq!(store.register("t-value", &schema(V3_BAD)).unwrap(), 3);
        // The global level still refuses it elsewhere.
        store.register("u-value", &schema(V2)).unwrap();
        assert!(store.register("u-value", &schema(V3_BAD)).is_err());
    }

    #[test]
    fn forward_and_full_levels() {
        let store = memory();
        store.set_level(None, CompatibilityLevel::Forward).unwrap();
        store.register("t", &schema(V2)).unwrap();
        // Adding a required field is forward compatible…
        assert_eq!(store.register("t", &schema(V3_BAD)).unwrap(), 2);
        store.set_level(None, CompatibilityLevel::Full).unwrap();
        // …but under FULL, going back to v1 fails: v1 reads v3 data, but a v3 reader needs
        // `c`, which v1 data lacks and which has no default.
        let err = store.register("t", &schema(V1)).unwrap_err();
        assert!(matches!(err, RegistryError::Incompatible { .. }), "{err}");
    }

    #[test]
    fn lookups_and_not_found() {
        let store = memory();
        store.register("t-value", &schema(V1)).unwrap();
        let found = store.lookup("t-value", &schema(V1_DOCS)).unwrap().unwrap();
        assert_eq!((found.version, found.id()), (1, 1));
        assert!(store.lookup("t-value", &schema(V2)).unwrap().is_none());
        assert!(matches!(
            store.lookup("nope", &schema(V1)),
            Err(RegistryError::SubjectNotFound { subject }) if subject == "nope"
        ));
        assert!(matches!(
            store.version("t-value", VersionSpec::Number(7)),
            Err(RegistryError::VersionNotFound { version: 7, .. })
        ));
        assert!(matches!(
            store.versions("nope"),
            Err(RegistryError::SubjectNotFound { .. })
        ));
    }

    #[test]
    fn mock_scopes_are_shared_by_name_and_isolated_from_each_other() {
        let a1 = mock_scope("store-tests-a");
        let a2 = mock_scope("store-tests-a");
        let b = mock_scope("store-tests-b");
        let id = a1.register("t-value", &schema(V1)).unwrap();
        assert_eq!(a2.schema(id).unwrap().form(), registry_form(&schema(V1)));
        assert_eq!(a2.subjects(), ["t-value"]);
        assert!(b.schema(id).is_none());
        assert!(b.subjects().is_empty());
        drop_mock_scope("store-tests-a");
        assert!(mock_scope("store-tests-a").subjects().is_empty());
        // The old handles keep their store.
        assert_eq!(a1.subjects(), ["t-value"]);
        drop_mock_scope("store-tests-a");
        drop_mock_scope("store-tests-b");
    }

    #[test]
    fn directory_store_persists_ids_and_continues_after_the_max() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open_dir(dir.path()).unwrap();
            assert_eq!(store.register("t-value", &schema(V1)).unwrap(), 1);
            assert_eq!(store.register("t-value", &schema(V2)).unwrap(), 2);
            assert_eq!(
                store.register("u-value", &schema(r#""string""#)).unwrap(),
                3
            );
            store
                .set_level(Some("u-value"), CompatibilityLevel::Full)
                .unwrap();
            // A second handle in the same process shares the store.
            let again = open_dir(dir.path()).unwrap();
            assert!(Arc::ptr_eq(&store, &again));
        }
        let store = open_dir(dir.path()).unwrap();
        assert_eq!(store.schema(1).unwrap().form(), registry_form(&schema(V1)));
        assert_eq!(store.schema(2).unwrap().form(), registry_form(&schema(V2)));
        assert_eq!(store.versions("t-value").unwrap(), [1, 2]);
        assert_eq!(store.level(Some("u-value")), Some(CompatibilityLevel::Full));
        // Same schema, same id after the restart…
        assert_eq!(store.register("t-value", &schema(V2)).unwrap(), 2);
        assert_eq!(store.register("v-value", &schema(V1_DOCS)).unwrap(), 1);
        // …and new ids continue after the highest.
        assert_eq!(store.register("w-value", &schema(r#""long""#)).unwrap(), 4);
        // The registry refuses incompatible schemas after a restart too.
        assert!(store.register("t-value", &schema(V3_BAD)).is_err());
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = open_dir(dir.path()).err().unwrap();
        assert!(matches!(err, RegistryError::Corrupt { .. }), "{err}");
    }
}
