//! Pipeline routes: the teaching page, its JSON, the topic browser and the stage buttons.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use ow_stream_core::topic::is_valid_topic_name;
use serde::Deserialize;

use super::error::{ApiError, AppError};
use crate::pipeline::{BrowsedRecord, PipelineView};
use crate::views::pipeline::Features;
use crate::{AppState, views};

/// Records shown by default, and at most, by the topic browser.
const DEFAULT_RECORDS: usize = 10;
const MAX_RECORDS: usize = 100;

impl AppState {
    /// A snapshot of the pipeline with rates filled in.
    async fn pipeline_view(&self) -> Result<PipelineView, AppError> {
        let source = self
            .inner
            .pipeline
            .clone()
            .ok_or(AppError::Unavailable("pipeline introspection"))?;
        let mut view = source.snapshot().await?;
        self.inner.rates.fill(&mut view);
        Ok(view)
    }

    fn features(&self) -> Features {
        Features {
            control: self.inner.control.is_some(),
            browser: self.inner.browser.is_some(),
        }
    }
}

/// `GET /pipeline`. While the brokers are unreachable, the page says so at once instead of
/// waiting for a snapshot that cannot come.
pub(crate) async fn page(State(state): State<AppState>) -> Result<Markup, AppError> {
    let features = state.features();
    if let Some(outage) = state.broker_outage() {
        return Ok(views::pipeline::page(Err(&outage.text), features));
    }
    match state.pipeline_view().await {
        Ok(view) => Ok(views::pipeline::page(Ok(&view), features)),
        Err(AppError::Unavailable(_)) => Ok(views::pipeline::page(
            Err("this deployment has no pipeline source wired in"),
            features,
        )),
        Err(AppError::Internal(e)) => {
            tracing::warn!(error = %e, "pipeline snapshot failed");
            Ok(views::pipeline::page(
                Err("the snapshot failed (the problem is logged)"),
                features,
            ))
        }
        Err(other) => Err(other),
    }
}

/// `GET /api/pipeline`.
pub(crate) async fn json(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.pipeline_view().await?).into_response())
}

/// Query of the record browser.
#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    limit: Option<usize>,
}

fn topic_name(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let Path(name) = path?;
    if is_valid_topic_name(&name) {
        Ok(name)
    } else {
        Err(AppError::BadRequest(
            "a topic name is 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'".into(),
        ))
    }
}

async fn records(
    state: &AppState,
    topic: &str,
    limit: usize,
) -> Result<Vec<BrowsedRecord>, AppError> {
    let browser = state
        .inner
        .browser
        .clone()
        .ok_or(AppError::Unavailable("the topic browser"))?;
    Ok(browser
        .last_records(topic, limit.clamp(1, MAX_RECORDS))
        .await?)
}

/// `GET /api/topics/{name}/records?limit=10`.
pub(crate) async fn records_json(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let topic = topic_name(path)?;
    let Query(query) = query?;
    let records = records(&state, &topic, query.limit.unwrap_or(DEFAULT_RECORDS)).await?;
    Ok(Json(serde_json::json!({ "topic": topic, "records": records })).into_response())
}

/// `GET /pipeline/topics/{name}`.
pub(crate) async fn records_page(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Markup, AppError> {
    let topic = topic_name(path)?;
    let Query(query) = query?;
    let records = records(&state, &topic, query.limit.unwrap_or(DEFAULT_RECORDS)).await?;
    Ok(views::topic_records::page(&topic, &records))
}

fn stage_name(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let Path(stage) = path?;
    let ok = !stage.is_empty()
        && stage.len() <= 64
        && stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(stage)
    } else {
        Err(AppError::BadRequest("not a stage name".into()))
    }
}

/// `POST /pipeline/stages/{stage}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Redirect, AppError> {
    let stage = stage_name(path)?;
    let control = state
        .inner
        .control
        .clone()
        .ok_or(AppError::Unavailable("stage control"))?;
    control.pause(&stage).await?;
    tracing::info!(stage, "stage paused from the dashboard");
    Ok(Redirect::to("/pipeline"))
}

/// `POST /pipeline/stages/{stage}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Redirect, AppError> {
    let stage = stage_name(path)?;
    let control = state
        .inner
        .control
        .clone()
        .ok_or(AppError::Unavailable("stage control"))?;
    control.resume(&stage).await?;
    tracing::info!(stage, "stage resumed from the dashboard");
    Ok(Redirect::to("/pipeline"))
}
