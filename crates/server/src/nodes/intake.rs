//! The stream node's side of the push: a conference node POSTs a
//! broadcast's Program as a WHIP offer (the node secret as bearer token, the
//! broadcast's public details as query parameters); the broadcast opens here
//! (directory, LL-HLS, WebRTC viewing, recording) and ends on DELETE or when
//! the Program stops arriving.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confcast_store::validate;
use serde::Deserialize;
use tokio::sync::oneshot;
use utoipa::IntoParams;

use super::{secret_matches, Node};
use crate::error::{ApiError, ErrorBody, Path};
use crate::auth::session::bearer_token;
use crate::sdp_http::{bearer_refused, created, read_offer};
use crate::state::AppState;
use crate::streaming::on_air;

/// A broadcast's public details, sent by the conference node.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProgramParams {
    /// The broadcast's title (1-100 characters).
    pub title: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: String,
    /// The room's title.
    pub room_title: String,
    /// The room host's username.
    pub host: String,
    /// The room host's display name.
    pub host_name: String,
}

/// Push a room's Program from a conference node (WHIP; stream nodes only).
#[utoipa::path(post, path = "/nodes/programs/{room}", tag = "live",
    params(("room" = String, Path, description = "Room id on the conference node"), ProgramParams),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer (H.264 and Opus, send only)"),
    responses(
        (status = 201, description = "SDP answer; `Location` names the session", content_type = "application/sdp"),
        (status = 400, description = "Bad offer or details", body = ErrorBody),
        (status = 401, description = "No node secret in `Authorization: Bearer`", body = ErrorBody),
        (status = 404, description = "Not a stream node", body = ErrorBody),
        (status = 413, description = "Offer too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/sdp", body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    Path(room): Path<String>,
    params: Result<Query<ProgramParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorise(&state, &headers) {
        return response;
    }
    let Ok(Query(params)) = params else {
        return ApiError::bad_request("the broadcast's details (title, room_title, host, host_name) are missing or malformed").into_response();
    };
    match open(&state, &room, params, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// End a pushed Program (stream nodes only): its broadcast ends here.
#[utoipa::path(delete, path = "/nodes/programs/{room}/{broadcast}", tag = "live",
    params(("room" = String, Path, description = "Room id"), ("broadcast" = String, Path, description = "From the push's Location")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No node secret", body = ErrorBody),
        (status = 404, description = "No such live broadcast here", body = ErrorBody)))]
pub async fn end(State(state): State<AppState>, Path((room, broadcast)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(response) = authorise(&state, &headers) {
        return response;
    }
    let live = state.store.live_broadcast(&room).await.ok().flatten();
    if !live.is_some_and(|b| b.id == broadcast) {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such live broadcast on this node").into_response();
    }
    match on_air::end(&state, &room).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

/// A pushed broadcast's recording problems so far (stream nodes only), for
/// the conference node to pass on to its host.
#[utoipa::path(get, path = "/nodes/programs/{room}/{broadcast}/problems", tag = "live",
    params(("room" = String, Path, description = "Room id"), ("broadcast" = String, Path, description = "From the push's Location")),
    responses(
        (status = 200, description = "`{\"problems\": [message, ...]}`, oldest first"),
        (status = 401, description = "No node secret", body = ErrorBody),
        (status = 404, description = "Not a stream node, or no such broadcast of this room", body = ErrorBody)))]
pub async fn problems(State(state): State<AppState>, Path((room, broadcast)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(response) = authorise(&state, &headers) {
        return response;
    }
    match state.store.broadcast(&broadcast).await {
        Ok(found) if found.room_id == room => {}
        _ => return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such broadcast of this room on this node").into_response(),
    }
    let problems = state.recordings.as_ref().map(|r| r.problems.of(&broadcast)).unwrap_or_default();
    axum::Json(serde_json::json!({ "problems": problems })).into_response()
}

async fn open(state: &AppState, room: &str, params: ProgramParams, headers: &HeaderMap, body: &Bytes) -> Result<Response, ApiError> {
    let sdp = read_offer(headers, body)?;
    let Some(conference) = &state.conference else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the media service is not running"));
    };
    if room.is_empty() || room.len() > 64 || !room.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::bad_request("the room id is not valid"));
    }
    let title = validate::room_title(&params.title).map_err(|e| ApiError::bad_request(e.replace("title", "broadcast title")))?;
    let room_title = validate::room_title(&params.room_title).map_err(ApiError::bad_request)?;
    let host = validate::username(&params.host).map_err(ApiError::bad_request)?;
    let host_name = validate::display_name(&params.host_name).map_err(ApiError::bad_request)?;
    let description = params.description.trim().to_owned();
    if description.chars().count() > 500 || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request("description must be at most 500 characters, without control characters"));
    }
    let now = state.clock.now();
    let host_id = state.store.mirror_room(room, &room_title, &host, &host_name, now).await?;
    // A conference node that restarted mid-broadcast pushes again: the new
    // Program replaces the old broadcast.
    if state.store.live_broadcast(room).await?.is_some() {
        let _ = on_air::end(state, room).await;
    }
    let broadcast = state.store.start_broadcast(room, &title, &description, host_id, now).await?;
    let feed = on_air::open_channel(state, &broadcast, description, host_id).await?;
    let (gone, stopped) = oneshot::channel();
    let answer = match conference.ingest_offer(room, sdp, feed, gone).await {
        Ok(answer) => answer,
        Err(why) => {
            let _ = on_air::end(state, room).await;
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_sdp", why));
        }
    };
    metrics::gauge!("live_broadcasts").increment(1.0);
    tracing::info!(%room, broadcast = %broadcast.id, "on air (pushed by a conference node)");
    let watcher = state.clone();
    let (room_id, broadcast_id) = (room.to_owned(), broadcast.id.clone());
    tokio::spawn(async move {
        // Fires only when the Program stops arriving; a normal end drops it.
        if stopped.await.is_ok() && watcher.store.live_broadcast(&room_id).await.ok().flatten().is_some_and(|b| b.id == broadcast_id) {
            tracing::warn!(room = %room_id, "the conference node's Program stopped; the broadcast ends");
            let _ = on_air::end(&watcher, &room_id).await;
        }
    });
    Ok(created(answer, &format!("/api/v1/nodes/programs/{room}/{}", broadcast.id)))
}

/// Only a stream node takes pushes, and only with the node secret.
pub(super) fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Node::Stream { secret } = &state.node else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_a_stream_node", "this server does not take pushed broadcasts").into_response());
    };
    if bearer_token(headers).is_some_and(|presented| secret_matches(presented, secret)) {
        return Ok(());
    }
    tracing::warn!("a broadcast push without the node secret was refused");
    Err(bearer_refused("unauthorized", "send the node secret as Authorization: Bearer <secret>"))
}
