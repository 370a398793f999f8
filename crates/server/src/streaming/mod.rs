//! The streaming side: live channels fed by rooms' Programs, served as
//! LL-HLS, and listed in the public directory.
//!
//! The Program reaches a channel through a bounded queue: if packaging falls
//! behind, units are dropped and counted, and the room never waits.

pub mod channel;
pub mod directory;
mod feeder;
pub mod hls;
pub mod on_air;
pub mod whep;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confcast_live::LiveConfig;
use confcast_media::room::ProgramMedia;
use tokio::sync::{broadcast, mpsc};

use channel::{ChannelInfo, LiveChannel};

use crate::recording::RecordingSink;

/// Program units that may wait for the packager.
const PROGRAM_QUEUE: usize = 4096;
/// How long an ended channel keeps answering (its playlist has ENDLIST).
const ENDED_GRACE: Duration = Duration::from_secs(60);

/// All live (and just-ended) channels, by room id.
pub struct Streaming {
    channels: Mutex<HashMap<String, Arc<LiveChannel>>>,
    /// Tells directory streams that something changed.
    changes: broadcast::Sender<()>,
}

impl Streaming {
    pub fn new() -> Arc<Streaming> {
        Arc::new(Streaming { channels: Mutex::new(HashMap::new()), changes: broadcast::channel(16).0 })
    }

    /// Opens a channel for a broadcast and starts its feeder. Returns the
    /// sender the room's Program goes into.
    pub fn start(
        self: &Arc<Self>,
        info: ChannelInfo,
        want_keyframe: impl Fn() + Send + 'static,
    ) -> Result<mpsc::Sender<ProgramMedia>, String> {
        self.start_recorded(info, want_keyframe, None)
    }

    /// [`start`](Self::start), and the packager's output also goes to
    /// `recording` (never waiting for it).
    pub fn start_recorded(
        self: &Arc<Self>,
        info: ChannelInfo,
        want_keyframe: impl Fn() + Send + 'static,
        recording: Option<RecordingSink>,
    ) -> Result<mpsc::Sender<ProgramMedia>, String> {
        let channel = Arc::new(LiveChannel::new(info, LiveConfig::default())?);
        let (sender, receiver) = mpsc::channel(PROGRAM_QUEUE);
        self.lock().insert(channel.info.room_id.clone(), channel.clone());
        tokio::spawn(feeder::run(channel, receiver, want_keyframe, recording));
        self.announce();
        Ok(sender)
    }

    /// Marks the room's channel as ending (its feeder stops when the Program
    /// sender is dropped) and forgets it after a grace period, so players
    /// still fetch the final playlist.
    pub fn stop(self: &Arc<Self>, room_id: &str) {
        let Some(channel) = self.get(room_id) else { return };
        channel.mark_stopping();
        self.announce();
        let this = Arc::downgrade(self);
        let room = room_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(ENDED_GRACE).await;
            if let Some(this) = this.upgrade() {
                let mut channels = this.lock();
                if channels.get(&room).is_some_and(|c| Arc::ptr_eq(c, &channel)) {
                    channels.remove(&room);
                }
            }
        });
    }

    pub fn get(&self, room_id: &str) -> Option<Arc<LiveChannel>> {
        self.lock().get(room_id).cloned()
    }

    /// Channels on air now (ended ones excluded), newest first.
    pub fn live(&self) -> Vec<Arc<LiveChannel>> {
        let mut live: Vec<_> = self.lock().values().filter(|c| !c.is_stopping()).cloned().collect();
        live.sort_by(|a, b| b.info.started_at.cmp(&a.info.started_at).then(a.info.room_id.cmp(&b.info.room_id)));
        live
    }

    /// A signal for every start and stop (for the directory's live stream).
    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    fn announce(&self) {
        let _ = self.changes.send(());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveChannel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}
