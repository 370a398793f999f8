//! Stopping gracefully (SIGTERM, SIGINT): participants are told, every
//! broadcast on air is ended the usual way and its recording finished,
//! within `--drain-timeout`; whatever is left then is finished at the next
//! start, as after a crash.

use std::time::{Duration, Instant};

use crate::state::AppState;
use crate::streaming::on_air;

/// How often the recordings are looked at while waiting for them.
const POLL: Duration = Duration::from_millis(100);

/// What a drain came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Participants told the server is stopping.
    pub participants: usize,
    /// Broadcasts ended.
    pub broadcasts: usize,
    /// Recordings still unfinished when the time ran out.
    pub unfinished: usize,
}

/// Drains this node, taking at most about `timeout`.
pub async fn drain(state: &AppState, timeout: Duration) -> Drained {
    let deadline = Instant::now() + timeout;
    let mut drained = Drained::default();
    if let Some(conference) = &state.conference {
        drained.participants = conference.stopping(false).await;
    }
    let live = match state.store.live_broadcasts().await {
        Ok(live) => live,
        Err(error) => {
            tracing::error!(%error, "draining: cannot list the broadcasts on air; they end at the next start");
            Vec::new()
        }
    };
    for broadcast in live {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, on_air::end(state, &broadcast.room_id)).await {
            Ok(Ok(_)) => drained.broadcasts += 1,
            Ok(Err(error)) => tracing::warn!(room = %broadcast.room_id, error = %error.code(), "draining: cannot end a broadcast"),
            Err(_) => break,
        }
    }
    // Each ended broadcast's recording is finished by its writer task: wait
    // for the records to say so.
    loop {
        match state.store.unfinished_recordings().await {
            Ok(open) if open.is_empty() => break,
            Ok(open) => drained.unfinished = open.len(),
            Err(error) => {
                tracing::warn!(%error, "draining: cannot look at the recordings");
                break;
            }
        }
        if Instant::now() + POLL > deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
        drained.unfinished = 0;
    }
    if let Some(conference) = &state.conference {
        conference.stopping(true).await;
    }
    if drained.unfinished > 0 {
        tracing::warn!(unfinished = drained.unfinished, "drain time is up; the rest of the recordings are finished at the next start");
    }
    tracing::info!(participants = drained.participants, broadcasts = drained.broadcasts, "drained");
    drained
}
