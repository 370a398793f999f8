//! What each role answers. A stream node serves only the viewers' side and
//! the pushes; a conference node sends viewers to the stream node, so their
//! traffic never reaches it.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Node;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    match &state.node {
        Node::All => next.run(request).await,
        Node::Stream { .. } => {
            if path == "/" {
                return redirect("/live");
            }
            // `/me` answers 401 here (nobody has an account on a stream
            // node), which the client takes as "not logged in".
            if is_viewer_side(path) || is_shared(path) || path.starts_with("/api/v1/nodes/") || path == "/api/v1/me" {
                return next.run(request).await;
            }
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_on_this_node",
                "this is a stream node: meetings and accounts are on the conference node",
            )
            .into_response()
        }
        Node::Conference(link) => {
            // A host deletes a recording here: this node checks who may.
            let host_action = request.method() == axum::http::Method::DELETE && path.starts_with("/api/v1/recordings/");
            if !is_viewer_side(path) || host_action {
                return next.run(request).await;
            }
            let target = request.uri().path_and_query().map_or(path, |p| p.as_str());
            redirect(&format!("{}{target}", link.public_url()))
        }
    }
}

/// What viewers use: the directory, watch and replay pages, LL-HLS, WHEP,
/// and the public lists and media of recordings.
fn is_viewer_side(path: &str) -> bool {
    let api_recordings = path.strip_prefix("/api/v1/recordings").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let whep = path.strip_prefix("/api/v1/rooms/").is_some_and(|rest| {
        let mut parts = rest.split('/');
        parts.next().is_some() && parts.next() == Some("whep")
    });
    path == "/live"
        || path.starts_with("/watch/")
        || path.starts_with("/replay/")
        || path.starts_with("/hls/")
        || path.starts_with("/recordings/")
        || path == "/api/v1/live"
        || path.starts_with("/api/v1/live/")
        || api_recordings
        || whep
}

/// What every node serves: the client's files, health, metrics, the API
/// description.
fn is_shared(path: &str) -> bool {
    path.starts_with("/static/")
        || path == "/sw.js"
        || path == "/healthz"
        || path == "/metrics"
        || path == "/api/v1/openapi.json"
}

/// 307, so a POST (a WHEP offer) is repeated at the new address.
fn redirect(location: &str) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_paths_are_told_apart() {
        for path in ["/live", "/watch/abc", "/replay/x", "/hls/abc/index.m3u8", "/api/v1/live", "/api/v1/live/events",
            "/api/v1/recordings", "/api/v1/recordings/x/vod.m3u8", "/api/v1/rooms/abc/whep", "/api/v1/rooms/abc/whep/t", "/recordings/x/y"]
        {
            assert!(is_viewer_side(path), "{path}");
        }
        for path in ["/", "/rooms/abc", "/api/v1/rooms/abc", "/api/v1/rooms/abc/ws", "/api/v1/rooms/abc/recordings",
            "/api/v1/recordingsx", "/livex", "/api/v1/me"]
        {
            assert!(!is_viewer_side(path), "{path}");
        }
    }
}
