//! Putting a room on air and taking it off: the one place that does it, for
//! the REST API and the room's WebSocket alike.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::{Action, Role};
use confcast_store::{validate, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::channel::ChannelInfo;
use crate::api::{authorize, invalid};
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// true: go on air; false: stop.
    pub on: bool,
    /// Required to go on air: 1-100 characters.
    pub title: Option<String>,
    /// Optional, up to 500 characters.
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, Debug, PartialEq)]
pub struct BroadcastState {
    pub on: bool,
    pub broadcast_id: Option<String>,
    pub title: Option<String>,
    pub started_at: Option<String>,
    /// The public watch page while on air.
    pub watch_page: Option<String>,
}

/// Starts or stops the room's broadcast on behalf of `user`, whose `role`
/// the caller looked up. Only the host or an admin may.
pub async fn set(
    state: &AppState,
    room: &str,
    user: UserId,
    role: Role,
    on: bool,
    title: Option<&str>,
    description: Option<&str>,
) -> Result<BroadcastState, ApiError> {
    if !confcast_policy::allows(role, Action::Broadcast) {
        return Err(ApiError::forbidden("only the host or an admin may broadcast"));
    }
    let now = state.clock.now();
    if !on {
        let ended = state.store.end_broadcast(room, now).await.map_err(|e| match e {
            confcast_store::StoreError::NotFound(_) => ApiError::new(StatusCode::CONFLICT, "not_live", "the room is not on air"),
            other => other.into(),
        })?;
        state.streaming.stop(room);
        if let Some(conference) = &state.conference {
            conference.program(room, None).await;
        }
        tracing::info!(%room, broadcast = %ended.id, "off air");
        metrics::gauge!("live_broadcasts").decrement(1.0);
        return Ok(BroadcastState { on: false, broadcast_id: Some(ended.id), title: Some(ended.title), started_at: None, watch_page: None });
    }
    let title = validate::room_title(title.unwrap_or_default()).map_err(|e| invalid(e.replace("title", "broadcast title")))?;
    let description = description.unwrap_or_default().trim().to_owned();
    if description.chars().count() > 500 || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request("description must be at most 500 characters, without control characters"));
    }
    let broadcast = state.store.start_broadcast(room, &title, &description, user, now).await?;
    let info = ChannelInfo {
        broadcast_id: broadcast.id.clone(),
        room_id: room.to_owned(),
        title: title.clone(),
        description,
        host: broadcast.host.clone(),
        started_at: broadcast.started_at,
    };
    let keyframes = state.conference.clone();
    let room_for_keyframes = room.to_owned();
    let recording = match &state.recordings {
        Some(recordings) => recordings.begin(&broadcast, user).await,
        None => None,
    };
    let sink = state
        .streaming
        .start_recorded(
            info,
            move || {
                if let Some(conference) = &keyframes {
                    conference.program_keyframe(&room_for_keyframes);
                }
            },
            recording,
        )
        .map_err(ApiError::internal)?;
    if let Some(conference) = &state.conference {
        let webrtc_viewers = state.streaming.get(room).map(|channel| channel.webrtc_viewers.clone()).unwrap_or_default();
        let feed = crate::conference::ProgramFeed { sink, title: title.clone(), webrtc_viewers };
        conference.program(room, Some(feed)).await;
    }
    tracing::info!(%room, broadcast = %broadcast.id, "on air");
    metrics::gauge!("live_broadcasts").increment(1.0);
    Ok(BroadcastState {
        on: true,
        broadcast_id: Some(broadcast.id),
        title: Some(title),
        started_at: Some(rfc3339(broadcast.started_at)),
        watch_page: Some(format!("/watch/{room}")),
    })
}

/// Put the room on air, or take it off (host or admin). While on air the
/// room's program — the full audio mix and the video the host receives — is
/// listed in the public directory and served as LL-HLS.
#[utoipa::path(put, path = "/rooms/{id}/broadcast", tag = "live", request_body = BroadcastRequest,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The new broadcast state", body = BroadcastState),
        (status = 400, description = "Invalid title or description", body = ErrorBody),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Already on air, or not on air", body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room): Path<String>,
    Json(req): Json<BroadcastRequest>,
) -> Result<Json<BroadcastState>, ApiError> {
    let role = authorize(&state, &room, me.user.id, Action::Broadcast).await?;
    let result = set(&state, &room, me.user.id, role, req.on, req.title.as_deref(), req.description.as_deref()).await?;
    Ok(Json(result))
}
