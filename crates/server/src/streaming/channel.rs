//! One live broadcast on the streaming side: its packager, the signal that
//! wakes held playlist requests, and who is watching.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use confcast_live::{BadRequest, Directives, LiveConfig, LivePackager, Reload};
use confcast_store::UserRef;
use tokio::sync::watch;

/// What the directory shows about a broadcast.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    pub broadcast_id: String,
    pub room_id: String,
    pub title: String,
    pub description: String,
    pub host: UserRef,
    /// Unix seconds.
    pub started_at: i64,
}

/// A viewer counts while their player has asked for the playlist this recently.
const VIEWER_TTL: Duration = Duration::from_secs(15);
/// Above this many remembered sessions, stale ones are swept on insert.
const SWEEP_VIEWERS_ABOVE: usize = 1024;

pub struct LiveChannel {
    pub info: ChannelInfo,
    packager: Mutex<LivePackager>,
    /// The media playlist rendered at a packager version: a new part wakes
    /// every held playlist request at once, and they all get these bytes.
    /// Locked only inside the packager's lock.
    rendered: Mutex<Option<(u64, Bytes)>>,
    /// Bumped on every packager event; held requests wait for a change.
    version: watch::Sender<u64>,
    viewers: Mutex<HashMap<u64, Instant>>,
    /// WebRTC (WHEP) viewers, kept by the media loop.
    pub webrtc_viewers: Arc<AtomicUsize>,
    next_session: AtomicU64,
    /// Program units the feeder could not take in time.
    pub dropped: AtomicU64,
    /// Set when the broadcast is stopped: off the directory at once, while
    /// the feeder finishes the playlist.
    stopping: AtomicBool,
}

impl LiveChannel {
    pub fn new(info: ChannelInfo, config: LiveConfig) -> Result<LiveChannel, String> {
        let packager = LivePackager::new(config).map_err(|e| e.0.to_owned())?;
        Ok(LiveChannel {
            info,
            packager: Mutex::new(packager),
            rendered: Mutex::new(None),
            version: watch::channel(0).0,
            viewers: Mutex::new(HashMap::new()),
            webrtc_viewers: Arc::new(AtomicUsize::new(0)),
            next_session: AtomicU64::new(seed()),
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the packager. Keep it short: requests and the feeder share it.
    pub fn with_packager<T>(&self, f: impl FnOnce(&mut LivePackager) -> T) -> T {
        let mut packager = self.packager.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut packager)
    }

    /// The media playlist if it answers `directives` now (`Ok(None)`: wait
    /// for the next change).
    pub fn media_playlist(&self, directives: Directives) -> Result<Option<Bytes>, BadRequest> {
        self.with_packager(|p| {
            if p.reload(directives)? != Reload::Ready {
                return Ok(None);
            }
            let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((version, bytes)) = rendered.as_ref()
                && *version == p.version()
            {
                return Ok(Some(bytes.clone()));
            }
            let Some(text) = p.media_playlist() else { return Ok(None) };
            let bytes = Bytes::from(text);
            *rendered = Some((p.version(), bytes.clone()));
            Ok(Some(bytes))
        })
    }

    /// Wakes every held request to look again.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Whether the broadcast was stopped (its playlist ends, or soon will).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// A new playback session (one per player that loaded the multivariant
    /// playlist).
    pub fn new_session(&self) -> u64 {
        // Spread ids so they are not trivially guessable or sequential.
        self.next_session.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
    }

    /// Notes that `session` is still playing.
    pub fn seen(&self, session: u64, now: Instant) {
        let mut viewers = self.viewers.lock().unwrap_or_else(|p| p.into_inner());
        if viewers.len() >= SWEEP_VIEWERS_ABOVE && !viewers.contains_key(&session) {
            viewers.retain(|_, at| now.duration_since(*at) < VIEWER_TTL);
        }
        viewers.insert(session, now);
    }

    /// Players that asked for the playlist within the last 15 seconds, and
    /// WebRTC viewers.
    pub fn viewer_count(&self, now: Instant) -> usize {
        let mut viewers = self.viewers.lock().unwrap_or_else(|p| p.into_inner());
        viewers.retain(|_, at| now.duration_since(*at) < VIEWER_TTL);
        viewers.len() + self.webrtc_viewers.load(Ordering::Relaxed)
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}
