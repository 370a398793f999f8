//! The site operator's overview: what this node is doing now. Only users
//! with the operator flag (granted with `confcast operator grant`) may look.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::views::UserView;
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json};
use crate::nodes::Node;
use crate::state::AppState;

/// Disk figures are worked out at most this often (walking a large
/// recordings folder is not free).
const DISK_EVERY: Duration = Duration::from_secs(30);

#[derive(Serialize, ToSchema)]
pub struct Overview {
    /// The server's version.
    pub version: String,
    /// What this process runs: `all`, `conference` or `stream`.
    pub role: String,
    pub started_at: String,
    pub uptime_seconds: u64,
    /// Rooms with a conference now, busiest first.
    pub rooms: Vec<RoomNow>,
    /// Broadcasts on air, newest first.
    pub broadcasts: Vec<BroadcastNow>,
    pub disk: Disk,
}

#[derive(Serialize, ToSchema)]
pub struct RoomNow {
    pub id: String,
    pub title: String,
    /// Usernames of the participants present.
    pub participants: Vec<String>,
    pub on_air: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BroadcastNow {
    pub room_id: String,
    pub broadcast_id: String,
    pub title: String,
    pub host: UserView,
    pub started_at: String,
    /// LL-HLS players seen in the last 15 seconds.
    pub hls_viewers: usize,
    /// WebRTC (WHEP) viewers connected.
    pub webrtc_viewers: usize,
}

#[derive(Serialize, ToSchema, Clone, Default)]
pub struct Disk {
    /// Bytes of every file in the data folder (database, local recordings,
    /// certificates); null when unknown.
    pub data_folder_bytes: Option<u64>,
    /// Bytes free for this server on the data folder's filesystem.
    pub available_bytes: Option<u64>,
    /// Bytes of all recordings, wherever they are stored (as recorded in
    /// the database).
    pub recordings_bytes: u64,
    pub recordings: usize,
}

/// What this node is doing: rooms in conference with their participants,
/// broadcasts on air with their viewers, disk use, uptime and version.
/// Operators only.
#[utoipa::path(get, path = "/operator/overview", tag = "operations",
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody)))]
pub async fn overview(State(state): State<AppState>, me: CurrentUser) -> Result<Json<Overview>, ApiError> {
    if !state.store.is_operator(me.user.id).await? {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_operator", "only the site's operators may see this (confcast operator grant)"));
    }
    let (started, started_wall) = crate::metrics::started();
    let now = Instant::now();
    let live = state.store.live_broadcasts().await?;
    let loads = match &state.conference {
        Some(conference) => conference.overview().await,
        None => Vec::new(),
    };
    let mut rooms = Vec::new();
    for load in &loads {
        let title = state.store.room(&load.room).await.map(|r| r.title).unwrap_or_default();
        let on_air = live.iter().any(|b| b.room_id == load.room);
        rooms.push(RoomNow { id: load.room.clone(), title, participants: load.participants.clone(), on_air });
    }
    rooms.sort_by(|a, b| b.participants.len().cmp(&a.participants.len()).then(a.id.cmp(&b.id)));
    let broadcasts = live
        .into_iter()
        .map(|b| {
            let channel = state.streaming.get(&b.room_id).filter(|c| !c.is_stopping());
            let webrtc = channel.as_ref().map_or_else(
                || loads.iter().find(|l| l.room == b.room_id).map_or(0, |l| l.webrtc_viewers),
                |c| c.webrtc_viewers.load(Ordering::Relaxed),
            );
            let all = channel.as_ref().map_or(webrtc, |c| c.viewer_count(now));
            BroadcastNow {
                room_id: b.room_id,
                broadcast_id: b.id,
                title: b.title,
                host: UserView { username: b.host.username, display_name: b.host.display_name },
                started_at: rfc3339(b.started_at),
                hls_viewers: all.saturating_sub(webrtc),
                webrtc_viewers: webrtc,
            }
        })
        .collect();
    let mut disk = disk_use(state.settings.data_dir.clone()).await;
    let finished = state.store.finished_recordings().await?;
    let unfinished = state.store.unfinished_recordings().await?;
    disk.recordings = finished.len() + unfinished.len();
    disk.recordings_bytes = finished.iter().chain(&unfinished).map(|r| u64::try_from(r.bytes).unwrap_or(0)).sum();
    let role = match &state.node {
        Node::All => "all",
        Node::Conference(_) => "conference",
        Node::Stream { .. } => "stream",
    };
    Ok(Json(Overview {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        role: role.to_owned(),
        started_at: rfc3339(started_wall.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))),
        uptime_seconds: now.duration_since(started).as_secs(),
        rooms,
        broadcasts,
        disk,
    }))
}

/// The data folder's size and the space left, from a cache refreshed every
/// [`DISK_EVERY`].
async fn disk_use(folder: Option<PathBuf>) -> Disk {
    static CACHE: Mutex<Option<(Instant, Disk)>> = Mutex::new(None);
    let Some(folder) = folder else { return Disk::default() };
    if let Some((at, disk)) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && at.elapsed() < DISK_EVERY
    {
        return disk.clone();
    }
    let disk = tokio::task::spawn_blocking(move || Disk {
        data_folder_bytes: Some(folder_bytes(&folder)),
        available_bytes: nix::sys::statvfs::statvfs(&folder).ok().map(|s| s.blocks_available() as u64 * s.fragment_size() as u64),
        ..Disk::default()
    })
    .await
    .unwrap_or_default();
    *CACHE.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), disk.clone()));
    disk
}

/// Bytes of every file under `folder` (links not followed).
fn folder_bytes(folder: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
