//! A Confluent-compatible Schema Registry REST server over any [`SchemaRegistry`] (cargo
//! feature `server`, on by default).
//!
//! It makes an in-process registry — a `mock://` scope, or one persisted in a directory as the
//! `ow-registry` binary serves — reachable by other processes and by the usual tools
//! (`schema_registry_converter`, Confluent's serializers, `curl`), with the endpoints they call:
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/schemas/ids/{id}` (`?deleted=true` is ignored) | `{"schema": "…"}` |
//! | `GET` | `/schemas/ids/{id}/schema` | the schema itself |
//! | `GET` | `/schemas/types` | `["AVRO"]` |
//! | `GET` | `/subjects` | `["subject", …]` |
//! | `GET` | `/subjects/{subject}/versions` | `[1, 2, …]` |
//! | `POST` | `/subjects/{subject}/versions` | register: `{"id": n}` |
//! | `GET` | `/subjects/{subject}/versions/{version or latest}` | `{"subject", "id", "version", "schema"}` |
//! | `GET` | `/subjects/{subject}/versions/{version or latest}/schema` | the schema itself |
//! | `POST` | `/subjects/{subject}` | is this schema registered? `{"subject", "id", "version", "schema"}` |
//! | `POST` | `/compatibility/subjects/{subject}/versions[/{version or latest}]` | `{"is_compatible": bool}` |
//! | `GET`, `PUT` | `/config`, `/config/{subject}` | `{"compatibilityLevel": "…"}` / `{"compatibility": "…"}` |
//!
//! Answers are `application/vnd.schemaregistry.v1+json`; request bodies are read as JSON
//! whatever their content type. Errors are Confluent's `{"error_code": …, "message": …}` with
//! Confluent's codes: 40401 subject not found, 40402 version not found, 40403 schema not found,
//! 409 incompatible schema, 42201 invalid schema, 42202 invalid version, 42203 invalid
//! compatibility level, 40408 no subject-level compatibility, 50001 store error. Subjects in
//! paths may be percent-encoded (`%2F`).
//!
//! Compatibility checks follow the subject's level (against the latest version, or every
//! version for `*_TRANSITIVE` levels) whichever version the path names; the version only has to
//! exist. Only Avro schemas without references are accepted.
//!
//! ```no_run
//! use ow_stream_registry::{SchemaRegistry, server::RegistryServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let registry = SchemaRegistry::open_dir("./.ow-state/schema-registry").unwrap();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! let server = RegistryServer::spawn(listener, registry)?;
//! println!("schema registry at {}", server.url());
//! // … later:
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use apache_avro::Schema;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{CompatibilityLevel, RegistryError, SchemaRegistry, SubjectVersion, VersionSpec};

/// The content type of every answer.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The routes of the registry API over `registry`, to serve or to nest in another router.
pub fn router(registry: SchemaRegistry) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_any),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_version),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .with_state(registry)
}

/// Serves the registry API over `registry` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: SchemaRegistry) -> io::Result<()> {
    axum::serve(listener, router(registry)).await
}

/// A registry server running on a task of the current tokio runtime.
///
/// Dropping the handle stops the server (as [`shutdown`](Self::shutdown) does, without waiting).
#[derive(Debug)]
pub struct RegistryServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RegistryServer {
    /// Starts serving `registry` on `listener` (bind it to port 0 for a free port).
    ///
    /// Must be called inside a tokio runtime.
    pub fn spawn(listener: TcpListener, registry: SchemaRegistry) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, router(registry)).with_graceful_shutdown(async move {
            // Resolves on a send and when the handle is dropped.
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        Ok(RegistryServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the server, such as `http://127.0.0.1:40123`, for
    /// [`SchemaRegistry::from_url`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the server.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// A Confluent error answer.
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, 400, message)
    }

    fn invalid_version(version: &str) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!("invalid version {version:?}: expected a version from 1, \"latest\" or -1"),
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let (status, code) = match &e {
            RegistryError::SubjectNotFound { .. } => (StatusCode::NOT_FOUND, 40401),
            RegistryError::VersionNotFound { .. } => (StatusCode::NOT_FOUND, 40402),
            RegistryError::SchemaNotFound { .. } => (StatusCode::NOT_FOUND, 40403),
            RegistryError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            RegistryError::InvalidSchema { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            RegistryError::InvalidCompatibility { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            RegistryError::Unreachable { .. } => (StatusCode::INTERNAL_SERVER_ERROR, 50003),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error_code": self.code, "message": self.message });
        (
            self.status,
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn ok(body: Json) -> Answer {
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response())
}

fn version_json(v: &SubjectVersion) -> Json {
    json!({
        "subject": v.subject,
        "id": v.id(),
        "version": v.version,
        "schema": v.schema.text(),
    })
}

fn parse_id(id: &str) -> Result<u32, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("schema id {id:?} not found"),
        )
    })
}

fn parse_version(version: &str) -> Result<VersionSpec, ApiError> {
    if version == "latest" || version == "-1" {
        return Ok(VersionSpec::Latest);
    }
    match version.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
        _ => Err(ApiError::invalid_version(version)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Json>,
}

/// The schema of a registration, lookup or compatibility request.
fn parse_schema(body: &[u8]) -> Result<Schema, ApiError> {
    let request: SchemaRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let invalid = |reason: String| ApiError::from(RegistryError::InvalidSchema { reason });
    if let Some(kind) = &request.schema_type
        && !kind.eq_ignore_ascii_case("AVRO")
    {
        return Err(invalid(format!(
            "schema type {kind} is not supported: this registry holds avro schemas"
        )));
    }
    if !request.references.is_empty() {
        return Err(invalid(
            "schema references are not supported by this registry".to_string(),
        ));
    }
    Schema::parse_str(&request.schema).map_err(|e| RegistryError::invalid_schema(e).into())
}

async fn version_of(
    registry: &SchemaRegistry,
    subject: &str,
    version: &str,
) -> Result<SubjectVersion, ApiError> {
    let spec = parse_version(version)?;
    Ok(registry.version_spec(subject, spec).await?)
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn root() -> Answer {
    ok(json!({}))
}

async fn schema_types() -> Answer {
    ok(json!(["AVRO"]))
}

async fn schema_by_id(State(registry): State<SchemaRegistry>, Path(id): Path<String>) -> Answer {
    let schema = registry.schema(parse_id(&id)?).await?;
    ok(json!({ "schema": schema.text() }))
}

async fn raw_schema_by_id(
    State(registry): State<SchemaRegistry>,
    Path(id): Path<String>,
) -> Answer {
    let schema = registry.schema(parse_id(&id)?).await?;
    raw(schema.text())
}

fn raw(text: &str) -> Answer {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, e.to_string()))?;
    ok(json)
}

async fn subjects(State(registry): State<SchemaRegistry>) -> Answer {
    ok(json!(registry.subjects().await?))
}

async fn versions(State(registry): State<SchemaRegistry>, Path(subject): Path<String>) -> Answer {
    ok(json!(registry.versions(&subject).await?))
}

async fn register(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Answer {
    let schema = parse_schema(&body)?;
    let id = registry.register(&subject, &schema).await?;
    ok(json!({ "id": id }))
}

async fn version(
    State(registry): State<SchemaRegistry>,
    Path((subject, version)): Path<(String, String)>,
) -> Answer {
    let found = version_of(&registry, &subject, &version).await?;
    ok(version_json(&found))
}

async fn raw_version(
    State(registry): State<SchemaRegistry>,
    Path((subject, version)): Path<(String, String)>,
) -> Answer {
    let found = version_of(&registry, &subject, &version).await?;
    raw(found.schema.text())
}

async fn lookup(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Answer {
    let schema = parse_schema(&body)?;
    match registry.lookup(&subject, &schema).await? {
        Some(found) => ok(version_json(&found)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("schema not found under subject {subject}"),
        )),
    }
}

async fn compatibility_any(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Answer {
    let schema = parse_schema(&body)?;
    compatibility_answer(registry.check_compatibility(&subject, &schema).await)
}

async fn compatibility_version(
    State(registry): State<SchemaRegistry>,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let schema = parse_schema(&body)?;
    version_of(&registry, &subject, &version).await?;
    compatibility_answer(registry.check_compatibility(&subject, &schema).await)
}

fn compatibility_answer(result: Result<(), RegistryError>) -> Answer {
    match result {
        Ok(()) => ok(json!({ "is_compatible": true })),
        Err(RegistryError::Incompatible { reason, .. }) => {
            ok(json!({ "is_compatible": false, "messages": [reason] }))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

fn parse_level(body: &[u8]) -> Result<CompatibilityLevel, ApiError> {
    let request: ConfigRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    Ok(request.compatibility.parse::<CompatibilityLevel>()?)
}

async fn global_config(State(registry): State<SchemaRegistry>) -> Answer {
    let level = registry.compatibility(None).await?.unwrap_or_default();
    ok(json!({ "compatibilityLevel": level.as_str() }))
}

async fn set_global_config(State(registry): State<SchemaRegistry>, body: Bytes) -> Answer {
    let level = parse_level(&body)?;
    registry.set_compatibility(None, level).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

async fn subject_config(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let default_to_global = query
        .get("defaultToGlobal")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let level = match registry.compatibility(Some(&subject)).await? {
        Some(level) => level,
        None if default_to_global => registry.compatibility(None).await?.unwrap_or_default(),
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                40408,
                format!("subject {subject} does not have subject-level compatibility configured"),
            ));
        }
    };
    ok(json!({ "compatibilityLevel": level.as_str() }))
}

async fn set_subject_config(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Answer {
    let level = parse_level(&body)?;
    registry.set_compatibility(Some(&subject), level).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Json) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            CONTENT_TYPE
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn body(schema: &str) -> String {
        json!({ "schema": schema }).to_string()
    }

    const V1: &str = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"}]}"#;
    const V2: &str = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#;

    #[tokio::test]
    async fn config_endpoints() {
        let app = router(SchemaRegistry::mock("server-tests-config"));
        assert_eq!(
            call(&app, "GET", "/config", "").await,
            (StatusCode::OK, json!({"compatibilityLevel": "BACKWARD"}))
        );
        assert_eq!(
            call(&app, "PUT", "/config", r#"{"compatibility":"FULL"}"#).await,
            (StatusCode::OK, json!({"compatibility": "FULL"}))
        );
        assert_eq!(
            call(&app, "GET", "/config", "").await.1,
            json!({"compatibilityLevel": "FULL"})
        );
        let (status, err) = call(&app, "PUT", "/config", r#"{"compatibility":"SIDEWAYS"}"#).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error_code"], 42203);
        let (status, err) = call(&app, "GET", "/config/a%2Fb-value", "").await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40408))
        );
        assert_eq!(
            call(&app, "GET", "/config/a%2Fb-value?defaultToGlobal=true", "")
                .await
                .1,
            json!({"compatibilityLevel": "FULL"})
        );
        call(
            &app,
            "PUT",
            "/config/a%2Fb-value",
            r#"{"compatibility":"none"}"#,
        )
        .await;
        assert_eq!(
            call(&app, "GET", "/config/a%2Fb-value", "").await.1,
            json!({"compatibilityLevel": "NONE"})
        );
        SchemaRegistry::drop_mock_scope("server-tests-config");
    }

    #[tokio::test]
    async fn compatibility_endpoints_and_versions() {
        let app = router(SchemaRegistry::mock("server-tests-compat"));
        // Nothing to be incompatible with.
        assert_eq!(
            call(
                &app,
                "POST",
                "/compatibility/subjects/s/versions",
                &body(V2)
            )
            .await
            .1,
            json!({"is_compatible": true})
        );
        let (status, err) = call(
            &app,
            "POST",
            "/compatibility/subjects/s/versions/latest",
            &body(V2),
        )
        .await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40401))
        );
        assert_eq!(
            call(&app, "POST", "/subjects/s/versions", &body(V1)).await,
            (StatusCode::OK, json!({"id": 1}))
        );
        let (status, answer) = call(
            &app,
            "POST",
            "/compatibility/subjects/s/versions/latest",
            &body(V2),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["is_compatible"], false);
        assert_eq!(
            call(
                &app,
                "POST",
                "/compatibility/subjects/s/versions/1",
                &body(V1)
            )
            .await
            .1,
            json!({"is_compatible": true})
        );
        let (status, err) = call(
            &app,
            "POST",
            "/compatibility/subjects/s/versions/9",
            &body(V1),
        )
        .await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40402))
        );
        let (status, err) = call(&app, "GET", "/subjects/s/versions/zero", "").await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(42202))
        );
        assert_eq!(
            call(&app, "GET", "/subjects/s/versions/-1/schema", "")
                .await
                .1,
            serde_json::from_str::<Json>(V1).unwrap()
        );
        assert_eq!(
            call(&app, "GET", "/schemas/types", "").await.1,
            json!(["AVRO"])
        );
        let (status, err) = call(&app, "POST", "/subjects/s/versions", "{nope").await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::BAD_REQUEST, json!(400))
        );
        let protobuf = json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"});
        let (status, err) = call(&app, "POST", "/subjects/s/versions", &protobuf.to_string()).await;
        assert_eq!(
            (status, err["error_code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(42201))
        );
        SchemaRegistry::drop_mock_scope("server-tests-compat");
    }
}
