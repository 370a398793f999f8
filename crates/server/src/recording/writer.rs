//! One broadcast's writer: carries out the recorder's actions against the
//! object store, in order, and finishes the recording at the end. Storage
//! errors never reach the live channel: they are counted, logged, noted on
//! the recording and reported to the host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confcast_live::RecordingAction;
use tokio::sync::mpsc;

use super::{Job, Recordings};

/// A storage problem is logged (and reported) at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// What the host is told (the details, which may name server paths, go to
/// the log only).
const STORAGE_FAILED: &str = "the recording cannot be written to storage; the broadcast goes on live, and the recording will miss what could not be stored";

pub(super) async fn run(recordings: Arc<Recordings>, job: Job, mut actions: mpsc::Receiver<RecordingAction>, dropped: Arc<AtomicU64>) {
    let mut failures = 0u64;
    let mut last_report: Option<Instant> = None;
    let mut problem = async |error: String, what: &str, failures: &mut u64| {
        *failures += 1;
        metrics::counter!("recording_storage_errors_total").increment(1);
        if last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            last_report = Some(Instant::now());
            tracing::warn!(%error, recording = %job.broadcast_id, room = %job.room_id, what, failures = *failures, "recording: storage error");
            if let Err(error) = recordings.store.recording_error(&job.broadcast_id, STORAGE_FAILED).await {
                tracing::warn!(%error, "cannot note the recording's storage error");
            }
            recordings.report(&job.notify, &job.room_id, &job.broadcast_id, STORAGE_FAILED);
        }
    };
    while let Some(action) = actions.recv().await {
        match action {
            RecordingAction::Put { name, bytes } => {
                if let Err(error) = recordings.put(&job.key, &name, bytes).await {
                    problem(error.to_string(), "put", &mut failures).await;
                }
            }
            RecordingAction::PutSegment { name, bytes, then_delete } => match recordings.put(&job.key, &name, bytes).await {
                Ok(()) => {
                    for part in then_delete {
                        // A part left behind is removed when the recording is finished.
                        let _ = recordings.delete_object(&job.key, &part).await;
                    }
                }
                Err(error) => problem(error.to_string(), "put segment", &mut failures).await,
            },
            RecordingAction::Progress { duration, bytes } => {
                let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
                if let Err(error) = recordings.store.recording_progress(&job.broadcast_id, ms, i64::try_from(bytes).unwrap_or(i64::MAX)).await {
                    tracing::warn!(%error, recording = %job.broadcast_id, "cannot note the recording's progress");
                }
            }
            RecordingAction::Finalise => break,
        }
    }
    // Also when the feeder went away without saying so: finish what is there.
    let dropped = dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        let message = format!("storage was too slow: {dropped} pieces of the recording were not stored in time");
        tracing::warn!(recording = %job.broadcast_id, dropped, "recording: storage too slow");
        let _ = recordings.store.recording_error(&job.broadcast_id, &message).await;
    }
    match recordings.finish(&job.key, &job.broadcast_id).await {
        Ok(done) => tracing::info!(
            recording = %job.broadcast_id,
            state = done.state.as_str(),
            segments = done.plan.segments,
            gaps = done.plan.gaps,
            seconds = done.plan.duration.as_secs_f64(),
            bytes = done.plan.bytes,
            storage_errors = failures,
            dropped,
            "recording finished"
        ),
        Err(error) => {
            // Left as "recording": the next start tries again.
            problem(error.to_string(), "finish", &mut failures).await;
            tracing::error!(%error, recording = %job.broadcast_id, "cannot finish the recording; the next start tries again");
        }
    }
}
