//! WHIP ingest (RFC 9725 style): an encoder publishes into a room as a
//! participant. It POSTs its SDP offer with the bearer secret of one of the
//! room's ingest keys and gets the answer with 201 and a `Location` naming
//! its session; DELETE there ends it. It then is in the room like anyone
//! else: its audio goes into the mix, its video can be watched, designated
//! and put on air. One publisher per key: publishing again with the same key
//! replaces the earlier one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confcast_policy::Role;
use tokio::sync::mpsc;

use super::{Member, Outgoing};
use crate::error::{ApiError, ErrorBody, Path};
use crate::auth::session::bearer_token;
use crate::sdp_http::{bearer_refused, created, read_offer};
use crate::state::AppState;


/// The participant name an ingest key publishes under. The colon never
/// appears in a user's name, so it cannot be mistaken for one.
pub fn ingest_username(key_id: &str) -> String {
    format!("ingest:{key_id}")
}

/// Publish into the room with an encoder: an SDP offer that sends audio
/// and/or video, authorised by an ingest key's secret.
#[utoipa::path(post, path = "/rooms/{id}/whip", tag = "ingest",
    params(("id" = String, Path, description = "Room id")),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer (sending H.264 and/or Opus)"),
    responses(
        (status = 201, description = "SDP answer; `Location` names the session", content_type = "application/sdp"),
        (status = 400, description = "Not an SDP offer the room can take", body = ErrorBody),
        (status = 401, description = "No ingest key of this room in `Authorization: Bearer`", body = ErrorBody),
        (status = 413, description = "Offer too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/sdp", body = ErrorBody),
        (status = 503, description = "Media unavailable", body = ErrorBody)))]
pub async fn publish(State(state): State<AppState>, Path(room): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = bearer_token(&headers).filter(|t| t.len() <= 256);
    let Some(token) = bearer else {
        return unauthorised("send an ingest key's secret as Authorization: Bearer <token>");
    };
    let key = match state.store.ingest_key_by_token(&room, token).await {
        Ok(key) => key,
        Err(confcast_store::StoreError::NotFound(_)) => return unauthorised("that is not an ingest key of this room"),
        Err(other) => return ApiError::from(other).into_response(),
    };
    let sdp = match read_offer(&headers, &body) {
        Ok(sdp) => sdp,
        Err(error) => return error.into_response(),
    };
    let Some(conference) = &state.conference else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the media service is not running").into_response();
    };
    let member = Member { username: ingest_username(&key.id), display_name: key.name.clone(), role: Role::Member };
    // The encoder has no signalling channel: what the room would tell it is
    // dropped, and the room closing its session ends it here too.
    let (outbox, mut messages) = mpsc::channel(64);
    let joined = match conference.join(&room, member, sdp, outbox).await {
        Ok(joined) => joined,
        Err(error) if error.code == "invalid_sdp" => {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_sdp", error.message).into_response();
        }
        Err(error) => return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error.message).into_response(),
    };
    let session = confcast_store::new_token();
    conference.ingests_lock().insert(session.clone(), (room.clone(), joined.participant));
    let ingests = conference.ingests.clone();
    let ended = session.clone();
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            if matches!(message, Outgoing::Close) {
                break;
            }
        }
        ingests.lock().unwrap_or_else(|p| p.into_inner()).remove(&ended);
    });
    tracing::info!(%room, key = %key.id, "ingest publishing");
    created(joined.answer, &format!("/api/v1/rooms/{room}/whip/{session}"))
}

/// End an encoder's session: it leaves the room.
#[utoipa::path(delete, path = "/rooms/{id}/whip/{session}", tag = "ingest",
    params(("id" = String, Path, description = "Room id"), ("session" = String, Path, description = "From the offer's Location")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session", body = ErrorBody)))]
pub async fn end(State(state): State<AppState>, Path((room, session)): Path<(String, String)>) -> Response {
    let Some(conference) = &state.conference else {
        return not_found();
    };
    let found = {
        let mut ingests = conference.ingests_lock();
        match ingests.get(&session) {
            Some((r, participant)) if *r == room => {
                let participant = *participant;
                ingests.remove(&session);
                Some(participant)
            }
            _ => None,
        }
    };
    match found {
        Some(participant) => {
            conference.leave(&room, participant).await;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

fn unauthorised(message: &str) -> Response {
    bearer_refused("unauthenticated", message)
}

fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such publishing session").into_response()
}

/// Publishing sessions by their secret: the room and the participant.
pub type Ingests = Arc<std::sync::Mutex<std::collections::HashMap<String, (String, confcast_media::ParticipantId)>>>;
