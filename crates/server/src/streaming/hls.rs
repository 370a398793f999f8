//! LL-HLS over HTTP: `/hls/{room}/index.m3u8` is a room's stable address;
//! `/hls/{room}/{broadcast}/...` serves one broadcast's media playlist, init
//! segments, segments and parts. Playlist requests with `_HLS_msn` /
//! `_HLS_part` are held until the playlist has what they ask for; a request
//! for the part named by the preload hint is held until the part exists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confcast_live::{Directives, Lookup, ResourceName};

use super::channel::LiveChannel;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a multivariant request waits for a channel's first keyframe.
const START_WAIT: Duration = Duration::from_secs(10);

/// A room's live stream, at a URL that stays the same across broadcasts
/// (public, no account needed). The media playlist it names lives under the
/// broadcast's id, so parts and segments of different broadcasts never share
/// a URL and caches may keep them forever.
#[utoipa::path(get, path = "/hls/{room}/index.m3u8", tag = "live",
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The multivariant playlist"),
        (status = 404, description = "Unknown room or not on air"),
        (status = 503, description = "On air, but no video yet; try again")))]
pub async fn multivariant(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    let Some(channel) = state.streaming.get(&room).filter(|c| !c.is_stopping()) else {
        return not_found();
    };
    // Players give up on a media playlist without a complete segment, so a
    // new broadcast is announced once its first segment is done.
    let ready = |c: &LiveChannel| c.with_packager(|p| if p.counters().segments > 0 { p.multivariant_playlist() } else { None });
    let Some(text) = wait_for(&channel, START_WAIT, ready).await else {
        return unavailable();
    };
    // Each player gets its own session in the media playlist's URL, which
    // is how viewers are counted; parts and segments stay shared (cacheable).
    let session = channel.new_session();
    let media = format!("{}/{}?session={session:x}", channel.info.broadcast_id, confcast_live::MEDIA_PLAYLIST);
    playlist(text.replace(confcast_live::MEDIA_PLAYLIST, &media).into())
}

/// One resource of one broadcast: its media playlist (blocking reload with
/// `_HLS_msn`/`_HLS_part`), init segments, segments and parts (public).
#[utoipa::path(get, path = "/hls/{room}/{broadcast}/{name}", tag = "live",
    params(
        ("room" = String, Path, description = "Room id"),
        ("broadcast" = String, Path, description = "Broadcast id"),
        ("name" = String, Path, description = "live.m3u8, init{n}.mp4, seg{msn}.m4s or part{msn}.{i}.m4s"),
        ("_HLS_msn" = Option<u64>, Query, description = "Blocking reload: the media sequence number wanted"),
        ("_HLS_part" = Option<u64>, Query, description = "Blocking reload: the part wanted (needs _HLS_msn)")),
    responses(
        (status = 200, description = "The resource"),
        (status = 400, description = "Delivery directives the spec does not allow"),
        (status = 404, description = "Unknown room or broadcast, or no such resource"),
        (status = 503, description = "Not available in time; try again")))]
pub async fn resource(
    State(state): State<AppState>,
    Path((room, broadcast, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(name) = ResourceName::parse(&name) else {
        return not_found();
    };
    let Some(channel) = state.streaming.get(&room).filter(|c| c.info.broadcast_id == broadcast) else {
        return not_found();
    };
    match name {
        ResourceName::MultivariantPlaylist => not_found(),
        ResourceName::MediaPlaylist => media_playlist(&channel, &query.unwrap_or_default()).await,
        _ => media(&channel, name).await,
    }
}

fn not_found() -> Response {
    with_cors(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such live stream").into_response())
}

fn unavailable() -> Response {
    let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "not ready yet; try again").into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    with_cors(response)
}

/// Any site may embed the player.
fn with_cors(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

fn playlist(text: Bytes) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl")),
        // A playlist changes every part: caches must revalidate, never serve stale.
        (header::CACHE_CONTROL, HeaderValue::from_static(confcast_live::CACHE_PLAYLIST)),
    ];
    with_cors((headers, text).into_response())
}

/// Waits until `ready` gives an answer or `within` passes.
async fn wait_for<T>(channel: &LiveChannel, within: Duration, mut ready: impl FnMut(&LiveChannel) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    let mut changes = channel.watch();
    loop {
        // Mark the current version seen before looking, so no change is missed.
        changes.borrow_and_update();
        if let Some(answer) = ready(channel) {
            return Some(answer);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, changes.changed()).await {
            Ok(Ok(())) => {}
            // Timed out, or the channel is gone.
            _ => return ready(channel),
        }
    }
}

async fn media_playlist(channel: &Arc<LiveChannel>, query: &str) -> Response {
    let directives = match Directives::from_query(query) {
        Ok(d) => d,
        Err(bad) => return with_cors(ApiError::bad_request(bad.to_string()).into_response()),
    };
    if let Some(session) = query.split('&').find_map(|p| p.strip_prefix("session=")).and_then(|s| u64::from_str_radix(s, 16).ok()) {
        channel.seen(session, Instant::now());
    }
    let timeout = channel.with_packager(|p| p.blocking_timeout());
    let mut bad = None;
    let answer = wait_for(channel, timeout, |c| match c.media_playlist(directives) {
        Ok(text) => text,
        Err(e) => {
            bad = Some(e);
            Some(Bytes::new())
        }
    })
    .await;
    if let Some(bad) = bad {
        return with_cors(ApiError::bad_request(bad.to_string()).into_response());
    }
    match answer {
        Some(text) => playlist(text),
        None => unavailable(),
    }
}

async fn media(channel: &Arc<LiveChannel>, name: ResourceName) -> Response {
    let timeout = channel.with_packager(|p| p.blocking_timeout());
    let mut missing = false;
    let found = wait_for(channel, timeout, |c| match c.with_packager(|p| p.resource(name)) {
        Lookup::Found(resource) => Some(resource),
        Lookup::Pending { .. } => None,
        Lookup::NotFound => {
            missing = true;
            Some(confcast_live::Resource { bytes: Default::default(), content_type: "", cache_control: "" })
        }
    })
    .await;
    match found {
        _ if missing => not_found(),
        Some(resource) => {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static(resource.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(resource.cache_control)),
            ];
            with_cors((headers, resource.bytes).into_response())
        }
        None => unavailable(),
    }
}
