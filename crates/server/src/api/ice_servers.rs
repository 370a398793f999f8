//! The ICE servers a logged-in client gives its `RTCPeerConnection`: the
//! TURN relays, with credentials made for this user that expire.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json};
use crate::ice::IceServer;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct IceServersResponse {
    /// For `new RTCPeerConnection({iceServers})`; empty when the server
    /// has no TURN relay configured (media then needs UDP or ICE-TCP).
    pub ice_servers: Vec<IceServer>,
    /// When the credentials stop working (RFC 3339); absent without TURN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// TURN relays and time-limited credentials for the caller (coturn's
/// shared-secret scheme). Only for logged-in users: anonymous viewers get
/// no relay. Not cached: each call makes fresh credentials.
#[utoipa::path(get, path = "/ice-servers", tag = "conference",
    responses(
        (status = 200, description = "The ICE servers to use", body = IceServersResponse),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn ice_servers(State(state): State<AppState>, me: CurrentUser) -> Result<Response, ApiError> {
    let body = match &state.settings.turn {
        Some(turn) => {
            let (server, expires_at) = turn.credentials(&me.user.username, state.clock.now());
            IceServersResponse { ice_servers: vec![server], expires_at: Some(rfc3339(expires_at)) }
        }
        None => IceServersResponse { ice_servers: Vec::new(), expires_at: None },
    };
    Ok(([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(body)).into_response())
}
