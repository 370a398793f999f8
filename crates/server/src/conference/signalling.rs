//! The room's WebSocket (docs/protocol.md) and the REST video lock.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use confcast_media::ParticipantId;
use confcast_policy::Action;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;

use super::protocol::{self, ClientMessage, ProtocolError, ServerMessage, MAX_MESSAGE_BYTES};
use super::{Conference, LockError, Member, Outgoing};
use crate::api::authorize;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::state::AppState;
use crate::streaming::on_air;
use confcast_store::UserId;

/// Messages a participant's socket may queue before the room drops some.
const OUTBOX: usize = 256;
/// A client may send this many messages in a burst...
const BURST: f64 = 40.0;
/// ...refilled at this rate per second.
const REFILL_PER_SEC: f64 = 20.0;
/// A client refused this many times in a row for flooding is disconnected.
const FLOOD_LIMIT: u32 = 200;

/// The conference socket of a room (members only; upgrade to WebSocket).
///
/// Strangers get 403 and anonymous clients 401 before any upgrade, so no
/// media state exists for them.
#[utoipa::path(get, path = "/rooms/{id}/ws", tag = "conference",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 101, description = "Switching to the signalling protocol of docs/protocol.md"),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "The media service is not running", body = ErrorBody)))]
pub async fn socket(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room): Path<String>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let role = authorize(&state, &room, me.user.id, Action::Join).await?;
    let conference = state.conference.clone().ok_or_else(unavailable)?;
    let upgrade = upgrade.map_err(|_| ApiError::bad_request("this address expects a WebSocket upgrade"))?;
    let member = Member { username: me.user.username.clone(), display_name: me.user.display_name.clone(), role };
    let user = me.user.id;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| Session::new(state, conference, room, member, user).run(socket)))
}

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the media service is not running")
}

/// One participant's signalling connection.
struct Session {
    state: AppState,
    user: UserId,
    conference: Conference,
    room: String,
    member: Member,
    participant: Option<ParticipantId>,
    tokens: f64,
    refilled: Instant,
    refused_in_a_row: u32,
    /// The roster of a join just accepted, until the loop takes it over.
    joined_roster: Option<watch::Receiver<Arc<str>>>,
}

impl Session {
    fn new(state: AppState, conference: Conference, room: String, member: Member, user: UserId) -> Session {
        Session {
            state,
            user,
            conference,
            room,
            member,
            participant: None,
            tokens: BURST,
            refilled: Instant::now(),
            refused_in_a_row: 0,
            joined_roster: None,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let (outbox, mut inbox) = mpsc::channel::<Outgoing>(OUTBOX);
        // The roster is watched, not queued; it is sent only after `joined`
        // has gone out, so clients see the answer first.
        let mut roster: Option<watch::Receiver<Arc<str>>> = None;
        let mut roster_live = false;
        loop {
            if let Some(fresh) = self.joined_roster.take() {
                roster = Some(fresh);
                roster_live = false;
            }
            let roster_changed = async {
                match roster.as_mut() {
                    Some(r) if roster_live => r.changed().await.is_ok(),
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                alive = roster_changed => {
                    if !alive {
                        roster = None;
                        continue;
                    }
                    let text = roster.as_mut().map(|r| r.borrow_and_update().clone());
                    if let Some(text) = text.filter(|t| !t.is_empty()) {
                        if socket.send(Message::Text(text.as_ref().into())).await.is_err() { break }
                    }
                }
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => {
                            let error = ProtocolError::new("invalid_message", "messages are JSON text frames", None);
                            if send(&mut socket, &error.into()).await.is_err() { break }
                            continue;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "signalling socket error");
                            break;
                        }
                    };
                    if !self.take_token() {
                        self.refused_in_a_row += 1;
                        if self.refused_in_a_row >= FLOOD_LIMIT {
                            tracing::info!(room = %self.room, user = %self.member.username, "closing a flooding socket");
                            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1008, reason: "too many messages".into() }))).await;
                            break;
                        }
                        let error = ProtocolError::new("rate_limited", "too many messages; slow down", None);
                        if send(&mut socket, &error.into()).await.is_err() { break }
                        continue;
                    }
                    self.refused_in_a_row = 0;
                    let reply = match protocol::parse(&text) {
                        Ok(message) => self.handle(message, &outbox).await,
                        Err(error) => Some(error.into()),
                    };
                    if let Some(reply) = reply {
                        if send(&mut socket, &reply).await.is_err() { break }
                    }
                }
                outgoing = inbox.recv() => match outgoing {
                    Some(Outgoing::Message(message)) => {
                        let joined = matches!(message, ServerMessage::Joined { .. });
                        if send(&mut socket, &message).await.is_err() { break }
                        if joined && let Some(r) = roster.as_mut() {
                            roster_live = true;
                            r.mark_changed();
                        }
                    }
                    Some(Outgoing::Close) => {
                        // The media loop already removed this participant.
                        self.participant = None;
                        let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "conference ended".into() }))).await;
                        break;
                    }
                    None => break,
                },
            }
        }
        if let Some(participant) = self.participant.take() {
            self.conference.leave(&self.room, participant).await;
        }
    }

    /// Acts on one message; returns an immediate answer when there is one
    /// (the rest arrive through the outbox).
    async fn handle(&mut self, message: ClientMessage, outbox: &mpsc::Sender<Outgoing>) -> Option<ServerMessage> {
        match (&message, self.participant) {
            (ClientMessage::Broadcast { on, title, description }, _) => {
                // The role is looked up again: it may have changed since the
                // socket opened.
                let result = match self.state.store.role_in_room(&self.room, self.user).await {
                    Ok(role) => {
                        on_air::set(&self.state, &self.room, self.user, role, *on, title.as_deref(), description.as_deref()).await
                    }
                    Err(e) => Err(e.into()),
                };
                // Success is announced to everyone (`on_air`) by the room.
                result.err().map(|e| ProtocolError::new(e.code(), e.message().to_owned(), Some("broadcast")).into())
            }
            (ClientMessage::Join { sdp }, None) => {
                match self.conference.join(&self.room, self.member.clone(), sdp.clone(), outbox.clone()).await {
                    Ok(joined) => {
                        // The answer itself arrives as `joined` through the outbox;
                        // the roster follows it.
                        self.participant = Some(joined.participant);
                        self.joined_roster = Some(joined.roster);
                        None
                    }
                    Err(error) => Some(error.into()),
                }
            }
            (ClientMessage::Ping, None) => Some(ServerMessage::Pong),
            (ClientMessage::Leave, None) => None,
            (_, None) => Some(ProtocolError::new("not_joined", "send join first", Some(message.kind())).into()),
            (ClientMessage::Leave, Some(participant)) => {
                self.participant = None;
                self.conference.leave(&self.room, participant).await;
                None
            }
            (_, Some(participant)) => {
                self.conference.request(&self.room, participant, message).await;
                None
            }
        }
    }

    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * REFILL_PER_SEC).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), axum::Error> {
    tokio::time::timeout(Duration::from_secs(10), socket.send(Message::Text(message.to_json().into())))
        .await
        .map_err(axum::Error::new)?
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoLockRequest {
    /// true: everyone receives the designated participant's video.
    pub locked: bool,
    /// The participant to show (required when locking).
    pub designated: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VideoLockState {
    pub locked: bool,
    /// Whose video everyone receives while locked.
    pub designated: Option<String>,
}

/// Lock everyone's video to a designated participant, change the designated
/// one, or unlock (host or admin). The room's conference must be running.
#[utoipa::path(put, path = "/rooms/{id}/video-lock", tag = "conference", request_body = VideoLockRequest,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The new lock state", body = VideoLockState),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room, or the designated user is not in the conference", body = ErrorBody),
        (status = 409, description = "Nobody is in the conference", body = ErrorBody)))]
pub async fn video_lock(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room): Path<String>,
    Json(req): Json<VideoLockRequest>,
) -> Result<Json<VideoLockState>, ApiError> {
    let role = authorize(&state, &room, me.user.id, Action::LockVideo).await?;
    if req.locked && req.designated.is_none() {
        return Err(ApiError::bad_request("locking needs \"designated\": the username everyone will see"));
    }
    let conference = state.conference.clone().ok_or_else(unavailable)?;
    let actor = Member { username: me.user.username.clone(), display_name: me.user.display_name.clone(), role };
    match conference.video_lock(&room, actor, req.locked, req.designated).await {
        Ok(lock) => Ok(Json(VideoLockState { locked: lock.locked, designated: lock.designated })),
        Err(LockError::NoConference) => {
            Err(ApiError::new(StatusCode::CONFLICT, "no_conference", "nobody is in this room's conference"))
        }
        Err(LockError::NotPresent(name)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_participant", format!("{name} is not in the conference")))
        }
        Err(LockError::Refused(error)) => {
            let status = if error.code == "rate_limited" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::CONFLICT };
            Err(ApiError::new(status, error.code, error.message))
        }
    }
}
