//! The public live directory: who is on air now, as JSON and as a live
//! Server-Sent Events stream. No account needed.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::views::UserView;
use crate::clock::rfc3339;
use crate::error::Json;
use crate::state::AppState;

/// How often viewer counts are refreshed on the live stream.
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct Playback {
    /// LL-HLS multivariant playlist.
    pub hls: String,
    /// The public watch page.
    pub page: String,
    /// WHEP endpoint: sub-second viewing over WebRTC (POST an SDP offer).
    pub whep: String,
}

#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct LiveEntry {
    pub room_id: String,
    pub broadcast_id: String,
    pub title: String,
    pub description: String,
    pub host: UserView,
    pub started_at: String,
    /// Players watching now.
    pub viewers: usize,
    pub playback: Playback,
}

#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct LiveDirectory {
    pub broadcasts: Vec<LiveEntry>,
}

/// What is on air now.
pub fn snapshot(state: &AppState) -> LiveDirectory {
    let now = Instant::now();
    let broadcasts = state
        .streaming
        .live()
        .into_iter()
        .map(|c| LiveEntry {
            room_id: c.info.room_id.clone(),
            broadcast_id: c.info.broadcast_id.clone(),
            title: c.info.title.clone(),
            description: c.info.description.clone(),
            host: c.info.host.clone().into(),
            started_at: rfc3339(c.info.started_at),
            viewers: c.viewer_count(now),
            playback: Playback {
                hls: format!("/hls/{}/{}", c.info.room_id, confcast_live::MULTIVARIANT_PLAYLIST),
                page: format!("/watch/{}", c.info.room_id),
                whep: format!("/api/v1/rooms/{}/whep", c.info.room_id),
            },
        })
        .collect();
    LiveDirectory { broadcasts }
}

/// Rooms on air now, newest first (public).
#[utoipa::path(get, path = "/live", tag = "live",
    responses((status = 200, description = "The live directory", body = LiveDirectory)))]
pub async fn list(State(state): State<AppState>) -> Json<LiveDirectory> {
    Json(snapshot(&state))
}

/// The live directory as a stream (public): a `directory` event with the
/// whole list on connect and whenever it changes (rooms going on or off air,
/// viewer counts).
#[utoipa::path(get, path = "/live/events", tag = "live",
    responses((status = 200, description = "An event stream of `directory` events", content_type = "text/event-stream")))]
pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = state.streaming.subscribe();
    let stream = futures_util::stream::unfold((state, changes, None::<LiveDirectory>, true), |(state, mut changes, last, first)| async move {
        loop {
            if !first {
                tokio::select! {
                    _ = changes.recv() => {},
                    () = tokio::time::sleep(REFRESH) => {},
                }
            }
            let now = snapshot(&state);
            if last.as_ref() != Some(&now) {
                let data = serde_json::to_string(&now).unwrap_or_else(|_| "{}".to_owned());
                let event = Event::default().event("directory").data(data);
                return Some((Ok(event), (state, changes, Some(now), false)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
