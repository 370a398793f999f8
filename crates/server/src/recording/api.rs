//! Past broadcasts over HTTP: a room's recordings (members), the public
//! "recent" list and one recording (anyone: every broadcast was public while
//! on air), deleting one (the host), and the replay media under
//! `/recordings/{broadcast}/{name}` (anyone).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confcast_live::RecordedName;
use confcast_policy::Action;
use confcast_store::{Recording, RecordingState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::authorize;
use crate::api::views::UserView;
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::nodes::Node;
use crate::state::AppState;

/// How a finished recording is played.
#[derive(Serialize, ToSchema, Clone, Debug, PartialEq)]
pub struct Replay {
    /// The VOD playlist (HLS).
    pub hls: String,
    /// The public replay page.
    pub page: String,
}

#[derive(Serialize, ToSchema, Clone, Debug, PartialEq)]
pub struct RecordingView {
    /// The broadcast's id, which is also the recording's.
    pub id: String,
    pub room_id: String,
    pub title: String,
    pub description: String,
    pub host: UserView,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `recording` (on air, or being finished), `ready` or `failed`.
    pub state: String,
    pub duration_seconds: f64,
    pub bytes: i64,
    /// The last storage problem (shown to the room's members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Present once the recording is ready.
    pub replay: Option<Replay>,
}

impl RecordingView {
    pub(crate) fn new(r: Recording, for_members: bool) -> RecordingView {
        let replay = (r.state == RecordingState::Ready).then(|| Replay {
            hls: format!("/recordings/{}/{}", r.broadcast.id, confcast_live::RECORDING_PLAYLIST),
            page: format!("/replay/{}", r.broadcast.id),
        });
        RecordingView {
            id: r.broadcast.id,
            room_id: r.broadcast.room_id,
            title: r.broadcast.title,
            description: r.broadcast.description,
            host: r.broadcast.host.into(),
            started_at: rfc3339(r.broadcast.started_at),
            ended_at: r.broadcast.ended_at.map(rfc3339),
            state: r.state.as_str().to_owned(),
            duration_seconds: r.duration_ms as f64 / 1000.0,
            bytes: r.bytes,
            problem: if for_members { r.error } else { None },
            replay,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordingList {
    pub recordings: Vec<RecordingView>,
    /// The `offset` for the next page, or null when this is the last one.
    pub next_offset: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
pub struct RecentParams {
    /// Page size, 1-50 (default 12).
    pub limit: Option<u32>,
    /// How many to skip (default 0).
    pub offset: Option<u32>,
}

/// Broadcast ids are 16 characters of lower-case base32; anything else is
/// no recording (and never reaches the database or storage).
fn valid_id(id: &str) -> bool {
    crate::recording::retention::looks_like_key(id)
}

pub(crate) async fn find(state: &AppState, id: &str) -> Result<Recording, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::not_found("recording"));
    }
    state.store.recording(id).await.map_err(|e| match e {
        confcast_store::StoreError::NotFound(_) => ApiError::not_found("recording"),
        other => other.into(),
    })
}

/// A room's recordings, newest first, in every state (members only).
#[utoipa::path(get, path = "/rooms/{id}/recordings", tag = "recordings",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room's recordings", body = RecordingList),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
pub async fn room_list(State(state): State<AppState>, me: CurrentUser, Path(id): Path<String>) -> Result<Response, ApiError> {
    authorize(&state, &id, me.user.id, Action::ViewRoom).await?;
    // Split nodes: the stream node keeps the recordings.
    if let Node::Conference(link) = &state.node {
        return link.room_recordings(&id).await;
    }
    let recordings = state.store.room_recordings(&id).await?;
    Ok(Json(RecordingList { recordings: recordings.into_iter().map(|r| RecordingView::new(r, true)).collect(), next_offset: None }).into_response())
}

/// Recent past broadcasts that can be replayed, newest first (public).
#[utoipa::path(get, path = "/recordings", tag = "recordings", params(RecentParams),
    responses(
        (status = 200, description = "Ready recordings", body = RecordingList),
        (status = 400, description = "Invalid parameters", body = ErrorBody)))]
pub async fn recent(State(state): State<AppState>, Query(params): Query<RecentParams>) -> Result<Json<RecordingList>, ApiError> {
    let limit = params.limit.unwrap_or(12);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 50"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(ApiError::bad_request("offset must be at most 100000"));
    }
    let mut recordings = state.store.recent_recordings(i64::from(limit) + 1, i64::from(offset)).await?;
    let next_offset = (recordings.len() > limit as usize).then(|| offset + limit);
    recordings.truncate(limit as usize);
    Ok(Json(RecordingList { recordings: recordings.into_iter().map(|r| RecordingView::new(r, false)).collect(), next_offset }))
}

/// One recording (public).
#[utoipa::path(get, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path, description = "Recording (broadcast) id")),
    responses(
        (status = 200, description = "The recording", body = RecordingView),
        (status = 404, description = "No such recording", body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<RecordingView>, ApiError> {
    Ok(Json(RecordingView::new(find(&state, &id).await?, false)))
}

/// Delete a recording (the room's host). Its media goes too.
#[utoipa::path(delete, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path, description = "Recording (broadcast) id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not the room's host", body = ErrorBody),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 409, description = "Still on air", body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, me: CurrentUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if let Node::Conference(link) = &state.node {
        if !valid_id(&id) {
            return Err(ApiError::not_found("recording"));
        }
        let room = link.recording_room(&id).await?;
        authorize(&state, &room, me.user.id, Action::DeleteRecording).await?;
        link.delete_recording(&id).await?;
        tracing::info!(recording = %id, "recording deleted on the stream node");
        return Ok(StatusCode::NO_CONTENT);
    }
    let recording = find(&state, &id).await?;
    authorize(&state, &recording.broadcast.room_id, me.user.id, Action::DeleteRecording).await?;
    delete_permitted(&state, recording).await?;
    tracing::info!(recording = %id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a finished recording and its media, once the caller has checked
/// who may (409 while it is still recording).
pub(crate) async fn delete_permitted(state: &AppState, recording: Recording) -> Result<(), ApiError> {
    if recording.state == RecordingState::Recording {
        return Err(ApiError::new(StatusCode::CONFLICT, "still_recording", "the broadcast is still being recorded; take it off air first"));
    }
    match &state.recordings {
        Some(recordings) => recordings.delete(&recording).await?,
        None => state.store.delete_recording(&recording.broadcast.id).await?,
    }
    Ok(())
}

/// A finished recording's VOD playlist, init segments and segments
/// (public; `Range` requests are answered with 206).
#[utoipa::path(get, path = "/recordings/{broadcast}/{name}", tag = "recordings",
    params(
        ("broadcast" = String, Path, description = "Recording (broadcast) id"),
        ("name" = String, Path, description = "index.m3u8, init{n}.mp4 or a segment named by the playlist")),
    responses(
        (status = 200, description = "The resource"),
        (status = 206, description = "Part of it (Range)"),
        (status = 404, description = "No such recording or resource"),
        (status = 416, description = "Range outside the resource")))]
pub async fn media(State(state): State<AppState>, axum::extract::Path((broadcast, name)): axum::extract::Path<(String, String)>, headers: HeaderMap) -> Response {
    let not_found = || with_cors(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such recording").into_response());
    let Some(recordings) = &state.recordings else { return not_found() };
    let Some(name) = RecordedName::parse(&name).filter(|n| !matches!(n, RecordedName::Part(..))) else {
        return not_found();
    };
    let recording = match find(&state, &broadcast).await {
        Ok(r) if r.state == RecordingState::Ready => r,
        Ok(_) => return not_found(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => return not_found(),
        Err(e) => return with_cors(e.into_response()),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let result = match recordings.get(&recording.storage_key, &name, range.clone()).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return not_found(),
        Err(error) if range.is_some() => {
            tracing::debug!(%error, "unsatisfiable range");
            return with_cors(ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", "the range is outside the resource").into_response());
        }
        Err(error) => return with_cors(ApiError::internal(error).into_response()),
    };
    let size = result.meta.size;
    let span = result.range.clone();
    let bytes = match result.bytes().await {
        Ok(b) => b,
        Err(error) => return with_cors(ApiError::internal(error).into_response()),
    };
    let cache = match name {
        // Written once, when the recording is finished.
        RecordedName::Playlist => "public, max-age=300",
        _ => confcast_live::CACHE_IMMUTABLE,
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(name.content_type()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", span.start, span.end.saturating_sub(1))) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    with_cors(response)
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); anything else (several ranges,
/// other units, nonsense) is ignored and the whole resource is sent, as
/// RFC 9110 allows.
fn parse_range(value: &str) -> Option<object_store::GetRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, false) => Some(object_store::GetRange::Suffix(number(end)?)),
        (false, true) => Some(object_store::GetRange::Offset(number(start)?)),
        (false, false) => {
            let (a, b) = (number(start)?, number(end)?);
            (a <= b).then(|| object_store::GetRange::Bounded(a..b.saturating_add(1)))
        }
        (true, true) => None,
    }
}

/// Any site may embed the replay.
fn with_cors(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::GetRange;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some(GetRange::Bounded(0..100)));
        assert_eq!(parse_range("bytes=100-"), Some(GetRange::Offset(100)));
        assert_eq!(parse_range("bytes=-20"), Some(GetRange::Suffix(20)));
        for ignored in ["bytes=5-1", "bytes=0-1,4-5", "items=0-1", "bytes=-", "bytes=a-b", ""] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
    }
}
