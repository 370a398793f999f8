//! Recording every broadcast as it airs, and replaying it.
//!
//! The sans-IO [`confcast_live::Recorder`] turns the packager's events into
//! "store this" actions; the feeder hands them to a [`RecordingSink`], whose
//! bounded queue feeds one writer task per broadcast (`writer.rs`). A slow or
//! failing store makes the queue overflow: actions are dropped and counted,
//! and the live channel never waits. Storage is any `object_store` (a local
//! folder by default, or an S3-compatible bucket).
//!
//! When the broadcast ends, or on the next start after a crash, the
//! recording is finished from what storage holds
//! ([`confcast_live::recording::plan`]): missing segments are rebuilt from
//! their parts and the VOD playlist is written last.

pub mod api;
pub mod problems;
pub mod retention;
pub mod storage;
mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use confcast_live::recording::{plan, Plan, Rebuild};
use confcast_live::{Event, LivePackager, RecordedName, Recorder, RecorderConfig, RecordingAction};
use confcast_store::{Broadcast, Recording, RecordingState, Store, UserId};
use futures_util::TryStreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::notify::Hub;

/// Tuning of recording (from the command line).
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// Finished recordings older than this are deleted (None: kept).
    pub max_age: Option<Duration>,
    /// Past this many bytes in all, the oldest finished recordings are
    /// deleted (None: no limit).
    pub max_bytes: Option<u64>,
    /// Actions one broadcast may have waiting for storage before new ones
    /// are dropped (about 200 ms each: 512 is well over a minute).
    pub queue: usize,
    /// How often retention runs (it also runs at start-up).
    pub sweep_every: Duration,
}

impl Default for RecordingConfig {
    fn default() -> RecordingConfig {
        RecordingConfig { max_age: None, max_bytes: None, queue: 512, sweep_every: Duration::from_secs(3600) }
    }
}

/// Recording and replay: the storage, and what every broadcast's writer shares.
pub struct Recordings {
    storage: Arc<dyn ObjectStore>,
    store: Store,
    hub: Arc<Hub>,
    clock: Clock,
    pub config: RecordingConfig,
    /// What was reported, for a conference node to fetch (split nodes).
    pub problems: problems::ProblemLog,
}

/// The feeder's end of one broadcast's recording.
pub struct RecordingSink {
    recorder: Recorder,
    queue: mpsc::Sender<RecordingAction>,
    dropped: Arc<AtomicU64>,
}

impl RecordingSink {
    /// Passes one packager event to the recorder (call right after
    /// `poll_event`, with the packager still locked).
    pub fn observe(&mut self, event: Event, packager: &LivePackager, now_ms: i64) {
        self.recorder.observe(event, packager, now_ms);
    }

    /// Queues what the recorder decided, never waiting: what does not fit
    /// is dropped and counted (the finishing step rebuilds what it can).
    pub fn flush(&mut self) {
        while let Some(action) = self.recorder.poll_action() {
            if self.queue.try_send(action).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("recording_actions_dropped_total").increment(1);
            }
        }
    }

    /// After the broadcast ended: queues the rest, waiting for room (nobody
    /// is watching live any more), the last action being the finishing.
    pub async fn finish(mut self) {
        self.recorder.end();
        while let Some(action) = self.recorder.poll_action() {
            if self.queue.send(action).await.is_err() {
                break;
            }
        }
    }
}

/// Who a recording's problems are reported to, and where it is stored.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub broadcast_id: String,
    pub room_id: String,
    pub key: String,
    /// The host and whoever started the broadcast.
    pub notify: Vec<UserId>,
}

/// Tells `users`' open pages about a recording problem (`recording_error`).
pub(crate) fn report_to(hub: &Hub, users: &[UserId], room_id: &str, broadcast_id: &str, message: &str) {
    let data = serde_json::json!({ "room_id": room_id, "broadcast_id": broadcast_id, "message": message });
    for user in users {
        hub.publish(*user, crate::notify::Notification::new("recording_error", &data));
    }
}

/// What finishing a recording came to.
#[derive(Debug)]
pub struct Finished {
    pub state: RecordingState,
    pub plan: Plan,
}

impl Recordings {
    pub fn new(storage: Arc<dyn ObjectStore>, store: Store, hub: Arc<Hub>, clock: Clock, config: RecordingConfig) -> Arc<Recordings> {
        Arc::new(Recordings { storage, store, hub, clock, config, problems: Default::default() })
    }

    /// Starts recording a broadcast that just went on air. If even its
    /// record cannot be made, the broadcast goes on unrecorded (logged and
    /// reported).
    pub async fn begin(self: &Arc<Self>, broadcast: &Broadcast, started_by: UserId) -> Option<RecordingSink> {
        let mut notify = vec![started_by];
        if let Ok(host) = self.store.user_by_username(&broadcast.host.username).await
            && host.id != started_by
        {
            notify.push(host.id);
        }
        let recording = match self.store.start_recording(&broadcast.id, self.clock.now()).await {
            Ok(r) => r,
            Err(error) => {
                tracing::error!(%error, broadcast = %broadcast.id, "cannot start the recording; the broadcast goes on unrecorded");
                self.report(&notify, &broadcast.room_id, &broadcast.id, "the broadcast cannot be recorded (the server could not keep a record of it)");
                return None;
            }
        };
        let job = Job { broadcast_id: broadcast.id.clone(), room_id: broadcast.room_id.clone(), key: recording.storage_key, notify };
        let (queue, receiver) = mpsc::channel(self.config.queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer::run(self.clone(), job, receiver, dropped.clone()));
        Some(RecordingSink { recorder: Recorder::new(RecorderConfig::default()), queue, dropped })
    }

    /// Tells the host (and whoever started the broadcast) about a storage
    /// problem on their open pages (`recording_error` event).
    pub(crate) fn report(&self, users: &[UserId], room_id: &str, broadcast_id: &str, message: &str) {
        self.problems.record(broadcast_id, message);
        report_to(&self.hub, users, room_id, broadcast_id, message);
    }

    fn path(key: &str, name: &RecordedName) -> ObjectPath {
        ObjectPath::from(format!("{key}/{name}"))
    }

    pub(crate) async fn put(&self, key: &str, name: &RecordedName, bytes: Bytes) -> object_store::Result<()> {
        let len = bytes.len() as u64;
        self.storage.put(&Self::path(key, name), PutPayload::from_bytes(bytes)).await?;
        metrics::counter!("recording_bytes_written_total").increment(len);
        Ok(())
    }

    pub(crate) async fn delete_object(&self, key: &str, name: &RecordedName) -> object_store::Result<()> {
        match self.storage.delete(&Self::path(key, name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Names and sizes stored under `key`.
    async fn listing(&self, key: &str) -> object_store::Result<Vec<(String, u64)>> {
        let prefix = ObjectPath::from(key);
        let objects: Vec<_> = self.storage.list(Some(&prefix)).try_collect().await?;
        Ok(objects.into_iter().filter_map(|o| Some((o.location.filename()?.to_owned(), o.size))).collect())
    }

    /// Finishes a recording from what storage holds: rebuilds segments from
    /// their parts where needed, stores the VOD playlist, removes the parts,
    /// and records the outcome.
    pub async fn finish(&self, key: &str, broadcast_id: &str) -> object_store::Result<Finished> {
        let listing = self.listing(key).await?;
        let first = plan(listing.iter().map(|(n, s)| (n.as_str(), *s)), Rebuild::FromParts);
        let mut rebuilt = true;
        for assembly in &first.assemble {
            if let Err(error) = self.assemble(key, assembly).await {
                tracing::warn!(%error, recording = %key, segment = %assembly.target, "cannot rebuild a segment from its parts");
                rebuilt = false;
            }
        }
        let done = if rebuilt {
            first
        } else {
            let listing = self.listing(key).await?;
            plan(listing.iter().map(|(n, s)| (n.as_str(), *s)), Rebuild::No)
        };
        if let Some(text) = &done.playlist {
            self.put(key, &RecordedName::Playlist, Bytes::from(text.clone())).await?;
        }
        for name in &done.delete {
            if let Err(error) = self.delete_object(key, name).await {
                tracing::debug!(%error, recording = %key, %name, "cannot delete a part");
            }
        }
        let state = if done.playlist.is_some() { RecordingState::Ready } else { RecordingState::Failed };
        let duration_ms = i64::try_from(done.duration.as_millis()).unwrap_or(i64::MAX);
        if let Err(error) = self
            .store
            .finish_recording(broadcast_id, state, duration_ms, i64::try_from(done.bytes).unwrap_or(i64::MAX), self.clock.now())
            .await
        {
            tracing::error!(%error, recording = %key, "cannot record that the recording is finished");
        }
        Ok(Finished { state, plan: done })
    }

    async fn assemble(&self, key: &str, assembly: &confcast_live::recording::Assembly) -> object_store::Result<()> {
        let mut bytes = Vec::new();
        for part in &assembly.parts {
            let data = self.storage.get(&Self::path(key, part)).await?.bytes().await?;
            bytes.extend_from_slice(&data);
        }
        self.put(key, &assembly.target, Bytes::from(bytes)).await
    }

    /// Finishes the recordings a crash left unfinished (their broadcasts
    /// were ended at start-up).
    pub async fn finish_unfinished(&self) {
        let unfinished = match self.store.unfinished_recordings().await {
            Ok(list) => list,
            Err(error) => {
                tracing::error!(%error, "cannot look for unfinished recordings");
                return;
            }
        };
        for recording in unfinished {
            let id = &recording.broadcast.id;
            match self.finish(&recording.storage_key, id).await {
                Ok(done) => tracing::info!(
                    recording = %id,
                    state = done.state.as_str(),
                    segments = done.plan.segments,
                    rebuilt = done.plan.assemble.len(),
                    seconds = done.plan.duration.as_secs_f64(),
                    "finished a recording left unfinished by the last run"
                ),
                Err(error) => tracing::error!(%error, recording = %id, "cannot finish a recording left by the last run; trying again at the next start"),
            }
        }
    }

    /// Deletes a recording: first its record (so it is gone at once), then
    /// its objects (what fails there is retried by the next sweep).
    pub async fn delete(&self, recording: &Recording) -> Result<(), confcast_store::StoreError> {
        self.store.delete_recording(&recording.broadcast.id).await?;
        if let Err(error) = self.delete_objects(&recording.storage_key).await {
            tracing::warn!(%error, recording = %recording.broadcast.id, "cannot delete every object of a deleted recording; the next sweep tries again");
        }
        Ok(())
    }

    /// Deletes every object of a recording (only names a recording uses).
    async fn delete_objects(&self, key: &str) -> object_store::Result<u64> {
        let mut deleted = 0;
        for (name, _) in self.listing(key).await? {
            if let Some(name) = RecordedName::parse(&name) {
                self.delete_object(key, &name).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Applies retention (age, total size) and removes what deleted rooms
    /// or recordings left in storage.
    pub async fn sweep(&self) {
        let finished = match self.store.finished_recordings().await {
            Ok(list) => list,
            Err(error) => {
                tracing::warn!(%error, "retention: cannot list recordings");
                return;
            }
        };
        let expired = retention::expired(&finished, self.clock.now(), self.config.max_age, self.config.max_bytes);
        for id in expired {
            if let Some(recording) = finished.iter().find(|r| r.broadcast.id == id) {
                match self.delete(recording).await {
                    Ok(()) => tracing::info!(recording = %id, "retention: deleted"),
                    Err(error) => tracing::warn!(%error, recording = %id, "retention: cannot delete"),
                }
            }
        }
        if let Err(error) = self.sweep_orphans().await {
            tracing::warn!(%error, "retention: cannot look for left-over objects");
        }
    }

    async fn sweep_orphans(&self) -> anyhow::Result<()> {
        let known: HashSet<String> = self.store.recording_keys().await?.into_iter().collect();
        let top = self.storage.list_with_delimiter(None).await?;
        for prefix in top.common_prefixes {
            let Some(key) = prefix.filename() else { continue };
            if known.contains(key) || !retention::looks_like_key(key) {
                continue;
            }
            let deleted = self.delete_objects(key).await?;
            tracing::info!(key, deleted, "retention: removed a recording no longer in the database");
        }
        Ok(())
    }

    /// Fetches a stored object (all of it, or `range`).
    pub async fn get(&self, key: &str, name: &RecordedName, range: Option<object_store::GetRange>) -> object_store::Result<object_store::GetResult> {
        let options = object_store::GetOptions::new().with_range(range);
        self.storage.get_opts(&Self::path(key, name), options).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Runs retention at start-up and then every `sweep_every`.
pub async fn retention_loop(recordings: Arc<Recordings>) {
    let mut every = tokio::time::interval(recordings.config.sweep_every);
    loop {
        every.tick().await;
        recordings.sweep().await;
    }
}
