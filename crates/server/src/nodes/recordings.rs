//! Recordings when nodes are split: the stream node records and keeps them;
//! the conference node, which knows the rooms and their members, answers a
//! room's list and a host's delete by asking the stream node (with the node
//! secret) after checking the permission itself.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::header::AUTHORIZATION;

use super::intake::authorise;
use super::uplink::StreamLink;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::recording::api::{delete_permitted, find, RecordingList, RecordingView};
use crate::state::AppState;

/// A room's recordings in every state, with their problems (stream nodes
/// only, for the conference node).
#[utoipa::path(get, path = "/nodes/rooms/{id}/recordings", tag = "recordings",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room's recordings, newest first", body = RecordingList),
        (status = 401, description = "No node secret", body = ErrorBody),
        (status = 404, description = "Not a stream node", body = ErrorBody)))]
pub async fn room_recordings(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(response) = authorise(&state, &headers) {
        return response;
    }
    match state.store.room_recordings(&id).await {
        Ok(recordings) => {
            Json(RecordingList { recordings: recordings.into_iter().map(|r| RecordingView::new(r, true)).collect(), next_offset: None })
                .into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Delete a recording (stream nodes only, for the conference node, which
/// checked that its user is the room's host).
#[utoipa::path(delete, path = "/nodes/recordings/{id}", tag = "recordings",
    params(("id" = String, Path, description = "Recording (broadcast) id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No node secret", body = ErrorBody),
        (status = 404, description = "No such recording, or not a stream node", body = ErrorBody),
        (status = 409, description = "Still recording", body = ErrorBody)))]
pub async fn delete_recording(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(response) = authorise(&state, &headers) {
        return response;
    }
    let result = async { delete_permitted(&state, find(&state, &id).await?).await };
    match result.await {
        Ok(()) => {
            tracing::info!(recording = %id, "recording deleted for the conference node");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// Longest reply read from the stream node.
const MAX_REPLY: usize = 4 << 20;

impl StreamLink {
    /// The room's recordings as the stream node lists them (JSON, passed on).
    pub async fn room_recordings(&self, room: &str) -> Result<Response, ApiError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/api/v1/nodes/rooms/{}/recordings", segment(room))).await?;
        if status != StatusCode::OK {
            return Err(relayed(status, &body));
        }
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }

    /// Which room a recording on the stream node belongs to.
    pub async fn recording_room(&self, id: &str) -> Result<String, ApiError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/api/v1/recordings/{}", segment(id))).await?;
        if status != StatusCode::OK {
            return Err(relayed(status, &body));
        }
        let view: serde_json::Value = serde_json::from_slice(&body).map_err(|_| unavailable("the stream node's reply is not JSON"))?;
        view["room_id"].as_str().map(str::to_owned).ok_or_else(|| unavailable("the stream node's reply names no room"))
    }

    pub async fn delete_recording(&self, id: &str) -> Result<(), ApiError> {
        let (status, body) = self.call(reqwest::Method::DELETE, &format!("/api/v1/nodes/recordings/{}", segment(id))).await?;
        if status == StatusCode::NO_CONTENT {
            Ok(())
        } else {
            Err(relayed(status, &body))
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {}", self.secret))
            .send()
            .await
            .map_err(|e| unavailable(&format!("cannot reach the stream node: {e}")))?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = response.bytes().await.map_err(|e| unavailable(&format!("the stream node's reply was cut off: {e}")))?;
        if body.len() > MAX_REPLY {
            return Err(unavailable("the stream node's reply is too large"));
        }
        Ok((status, body.to_vec()))
    }
}

/// Ids are checked by the handlers; this keeps anything else out of the path.
fn segment(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

fn unavailable(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "stream_node_unavailable", why.to_owned())
}

/// The stream node's refusal, passed on (404 and 409 keep their meaning).
fn relayed(status: StatusCode, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the stream node answered {status}"));
    match status {
        StatusCode::NOT_FOUND => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
        StatusCode::CONFLICT => ApiError::new(StatusCode::CONFLICT, "still_recording", message),
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "stream_node_unavailable", message),
    }
}
