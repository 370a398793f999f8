//! WHEP (RFC 9725 style): sub-second viewing of a room's Program over
//! WebRTC. A viewer POSTs its SDP offer (complete, no trickle: the server is
//! ICE-lite with one host candidate) and gets the answer with 201 and a
//! `Location` naming its session; DELETE there ends it. Public, like the
//! watch page: no account needed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::conference::WhepError;
use crate::error::{ApiError, ErrorBody, Path};
use crate::sdp_http::{created, read_offer};
use crate::state::AppState;


/// Watch the room's broadcast over WebRTC: send an SDP offer that receives
/// audio and video; the answer comes back with the session's URL in
/// `Location`.
#[utoipa::path(post, path = "/rooms/{id}/whep", tag = "live",
    params(("id" = String, Path, description = "Room id")),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer (audio and video, receive)"),
    responses(
        (status = 201, description = "SDP answer; `Location` names the session", content_type = "application/sdp"),
        (status = 400, description = "Not an SDP offer, or one that cannot receive the broadcast", body = ErrorBody),
        (status = 404, description = "No such room on air", body = ErrorBody),
        (status = 413, description = "Offer too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/sdp", body = ErrorBody),
        (status = 503, description = "No more WebRTC viewers for now, or media unavailable", body = ErrorBody)))]
pub async fn offer(State(state): State<AppState>, Path(room): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let sdp = match read_offer(&headers, &body) {
        Ok(sdp) => sdp,
        Err(error) => return with_cors(error.into_response()),
    };
    let Some(conference) = &state.conference else {
        return with_cors(not_on_air());
    };
    match conference.whep_offer(&room, sdp).await {
        Ok(session) => {
            let mut response = created(session.answer, &format!("/api/v1/rooms/{room}/whep/{}", session.token));
            response.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location"));
            with_cors(response)
        }
        Err(WhepError::NotOnAir) => with_cors(not_on_air()),
        Err(WhepError::BadOffer(why)) => with_cors(ApiError::new(StatusCode::BAD_REQUEST, "invalid_sdp", why).into_response()),
        Err(WhepError::Full) => with_cors(
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "full", "no more low-latency viewers for now; the regular stream still plays").into_response(),
        ),
        Err(WhepError::Unavailable) => with_cors(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the media service is not running").into_response()),
    }
}

/// End a WebRTC viewing session.
#[utoipa::path(delete, path = "/rooms/{id}/whep/{session}", tag = "live",
    params(("id" = String, Path, description = "Room id"), ("session" = String, Path, description = "From the offer's Location")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session", body = ErrorBody)))]
pub async fn end(State(state): State<AppState>, Path((room, session)): Path<(String, String)>) -> Response {
    let ended = match &state.conference {
        Some(conference) => conference.whep_end(&room, &session).await,
        None => false,
    };
    if ended {
        with_cors(StatusCode::NO_CONTENT.into_response())
    } else {
        with_cors(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such viewing session").into_response())
    }
}

fn not_on_air() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_on_air", "this room is not on air").into_response()
}

/// Any site may embed the low-latency player too.
fn with_cors(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
