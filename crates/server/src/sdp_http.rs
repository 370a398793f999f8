//! What WHIP and WHEP share over HTTP: an SDP offer in the request body,
//! an SDP answer with a `Location` in the 201 response.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub const SDP: &str = "application/sdp";
/// A browser's or an encoder's SDP offer is a few kilobytes.
const MAX_OFFER: usize = 64 * 1024;

/// The offer in a request: `application/sdp`, at most 64 KiB, UTF-8.
pub fn read_offer(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(SDP)));
    if !is_sdp {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the offer as application/sdp"));
    }
    if body.len() > MAX_OFFER {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the offer is too large"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the offer is not UTF-8 text"))
}

/// 201 with the answer, naming the session's resource in `Location`.
pub fn created(answer: String, location: &str) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// 401 with `WWW-Authenticate: Bearer`, for the endpoints an encoder or a
/// node reaches with a bearer secret.
pub fn bearer_refused(code: &'static str, message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
