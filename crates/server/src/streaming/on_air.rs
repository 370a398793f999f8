//! Putting a room on air and taking it off: the one place that does it, for
//! the REST API and the room's WebSocket alike.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::{Action, Role};
use confcast_store::{validate, Broadcast, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::channel::ChannelInfo;
use crate::api::{authorize, invalid};
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::nodes::uplink::{PushInfo, StreamLink};
use crate::nodes::Node;
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
        let ended = end(state, room).await?;
        return Ok(BroadcastState { on: false, broadcast_id: Some(ended.id), title: Some(ended.title), started_at: None, watch_page: None });
    }
    let title = validate::room_title(title.unwrap_or_default()).map_err(|e| invalid(e.replace("title", "broadcast title")))?;
    let description = description.unwrap_or_default().trim().to_owned();
    if description.chars().count() > 500 || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request("description must be at most 500 characters, without control characters"));
    }
    let broadcast = state.store.start_broadcast(room, &title, &description, user, now).await?;
    if let Node::Conference(link) = &state.node {
        return push(state, link, room, broadcast, description, user).await;
    }
    let feed = open_channel(state, &broadcast, description, user).await?;
    if let Some(conference) = &state.conference {
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

/// Opens the live channel (packager, recording, directory entry) of a
/// broadcast that has started; returns where its Program goes.
pub(crate) async fn open_channel(
    state: &AppState,
    broadcast: &Broadcast,
    description: String,
    user: UserId,
) -> Result<crate::conference::ProgramFeed, ApiError> {
    let room = broadcast.room_id.clone();
    let info = ChannelInfo {
        broadcast_id: broadcast.id.clone(),
        room_id: room.clone(),
        title: broadcast.title.clone(),
        description,
        host: broadcast.host.clone(),
        started_at: broadcast.started_at,
    };
    let keyframes = state.conference.clone();
    let room_for_keyframes = room.clone();
    let recording = match &state.recordings {
        Some(recordings) => recordings.begin(broadcast, user).await,
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
    let webrtc_viewers = state.streaming.get(&room).map(|channel| channel.webrtc_viewers.clone()).unwrap_or_default();
    Ok(crate::conference::ProgramFeed { sink: Some(sink), title: broadcast.title.clone(), webrtc_viewers })
}

/// Takes the room off air, whoever asks (a host, the stream node's Program
/// stopping): the live channel ends, the recording is finished,
/// participants are told.
pub async fn end(state: &AppState, room: &str) -> Result<Broadcast, ApiError> {
    let ended = state.store.end_broadcast(room, state.clock.now()).await.map_err(|e| match e {
        confcast_store::StoreError::NotFound(_) => ApiError::new(StatusCode::CONFLICT, "not_live", "the room is not on air"),
        other => other.into(),
    })?;
    state.streaming.stop(room);
    if let Some(conference) = &state.conference {
        conference.program(room, None).await;
    }
    if let Node::Conference(link) = &state.node {
        link.stop(room).await;
    }
    tracing::info!(%room, broadcast = %ended.id, "off air");
    metrics::gauge!("live_broadcasts").decrement(1.0);
    Ok(ended)
}

/// A conference node goes on air by pushing the room's Program to the
/// stream node, which serves it; if the stream node does not take it, the
/// broadcast does not start. When the push fails later, it ends.
async fn push(
    state: &AppState,
    link: &StreamLink,
    room: &str,
    broadcast: Broadcast,
    description: String,
    started_by: UserId,
) -> Result<BroadcastState, ApiError> {
    let unavailable = |why: String| ApiError::new(StatusCode::BAD_GATEWAY, "stream_node_unavailable", why);
    let Some(conference) = &state.conference else {
        let _ = end(state, room).await;
        return Err(unavailable("the media service is not running".to_owned()));
    };
    let room_title = state.store.room(room).await.map(|r| r.title).unwrap_or_else(|_| room.to_owned());
    let feed = crate::conference::ProgramFeed { sink: None, title: broadcast.title.clone(), webrtc_viewers: Default::default() };
    conference.program(room, Some(feed)).await;
    let info = PushInfo {
        room_id: room.to_owned(),
        room_title,
        title: broadcast.title.clone(),
        description,
        host_username: broadcast.host.username.clone(),
        host_display_name: broadcast.host.display_name.clone(),
    };
    let failed = match link.start(conference, &info).await {
        Ok(failed) => failed,
        Err(why) => {
            tracing::warn!(%room, %why, "the stream node did not take the broadcast");
            let _ = end(state, room).await;
            return Err(unavailable(format!("the broadcast could not start: {why}")));
        }
    };
    let watcher = state.clone();
    let (room_id, broadcast_id) = (room.to_owned(), broadcast.id.clone());
    tokio::spawn(async move {
        // Fires only on failure; a normal end drops the sender.
        if failed.await.is_ok() && watcher.store.live_broadcast(&room_id).await.ok().flatten().is_some_and(|b| b.id == broadcast_id) {
            tracing::warn!(room = %room_id, "the connection to the stream node failed; the broadcast ends");
            let _ = end(&watcher, &room_id).await;
        }
    });
    tokio::spawn(pass_on_recording_problems(state.clone(), link.clone(), room.to_owned(), broadcast.clone(), started_by));
    tracing::info!(%room, broadcast = %broadcast.id, stream_node = %link.public_url(), "on air (pushed to the stream node)");
    metrics::gauge!("live_broadcasts").increment(1.0);
    Ok(BroadcastState {
        on: true,
        broadcast_id: Some(broadcast.id),
        title: Some(broadcast.title),
        started_at: Some(rfc3339(broadcast.started_at)),
        watch_page: Some(format!("{}/watch/{room}", link.public_url())),
    })
}

/// How often a conference node asks the stream node about the recording.
const PROBLEMS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// While a pushed broadcast is on air, asks the stream node that records it
/// for recording problems and tells the host (and whoever started it) on
/// their pages, as a single node does.
async fn pass_on_recording_problems(state: AppState, link: StreamLink, room: String, broadcast: Broadcast, started_by: UserId) {
    let mut notify = vec![started_by];
    if let Ok(host) = state.store.user_by_username(&broadcast.host.username).await
        && host.id != started_by
    {
        notify.push(host.id);
    }
    let mut told = 0;
    loop {
        tokio::time::sleep(PROBLEMS_EVERY).await;
        let live = state.store.live_broadcast(&room).await.ok().flatten();
        if !live.is_some_and(|b| b.id == broadcast.id) {
            return;
        }
        match link.problems(&room).await {
            Ok(problems) => {
                for message in problems.iter().skip(told) {
                    tracing::warn!(%room, broadcast = %broadcast.id, %message, "the stream node reports a recording problem");
                    crate::recording::report_to(&state.hub, &notify, &room, &broadcast.id, message);
                }
                told = told.max(problems.len());
            }
            Err(why) => tracing::debug!(%room, %why, "cannot ask the stream node about the recording"),
        }
    }
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
