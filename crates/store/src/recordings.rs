//! Recordings of broadcasts: their state and size. The media itself is in
//! object storage; the server's recording module writes it.

use crate::broadcasts::Broadcast;
use crate::{Result, Store, StoreError, Timestamp, UserRef};

/// Where a recording is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingState {
    /// Being written while on air (or left so by a crash, until the next
    /// start finishes it).
    Recording,
    /// Finished: its playlist is stored and it can be played.
    Ready,
    /// Finished without anything playable.
    Failed,
}

impl RecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<RecordingState> {
        match s {
            "recording" => Ok(RecordingState::Recording),
            "ready" => Ok(RecordingState::Ready),
            "failed" => Ok(RecordingState::Failed),
            _ => Err(StoreError::Database(sqlx::Error::Decode(format!("unknown recording state {s:?}").into()))),
        }
    }
}

/// A broadcast's recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub broadcast: Broadcast,
    /// The folder (prefix) of its objects in storage.
    pub storage_key: String,
    pub state: RecordingState,
    pub duration_ms: i64,
    pub bytes: i64,
    /// The last storage problem, if any.
    pub error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct FlatRow {
    id: String,
    room_id: String,
    title: String,
    description: String,
    username: String,
    display_name: String,
    started_at: i64,
    ended_at: Option<i64>,
    storage_key: String,
    state: String,
    duration_ms: i64,
    bytes: i64,
    error: Option<String>,
    finished_at: Option<i64>,
}

fn from_row(r: FlatRow) -> Result<Recording> {
    Ok(Recording {
        broadcast: Broadcast {
            id: r.id,
            room_id: r.room_id,
            title: r.title,
            description: r.description,
            host: UserRef { username: r.username, display_name: r.display_name },
            started_at: r.started_at,
            ended_at: r.ended_at,
        },
        storage_key: r.storage_key,
        state: RecordingState::parse(&r.state)?,
        duration_ms: r.duration_ms,
        bytes: r.bytes,
        error: r.error,
        finished_at: r.finished_at,
    })
}

/// The recording query with a `WHERE ...` tail, kept a compile-time constant.
macro_rules! select_recordings {
    ($tail:literal) => {
        concat!(
            "SELECT b.id, b.room_id, b.title, b.description, h.username, h.display_name, b.started_at, b.ended_at,
                    rec.storage_key, rec.state, rec.duration_ms, rec.bytes, rec.error, rec.finished_at
             FROM recordings rec JOIN broadcasts b ON b.id = rec.broadcast_id
             JOIN rooms r ON r.id = b.room_id JOIN users h ON h.id = r.owner_id ",
            $tail
        )
    };
}

impl Store {
    /// Starts the recording of a live broadcast; its objects go under the
    /// broadcast's id.
    pub async fn start_recording(&self, broadcast_id: &str, now: Timestamp) -> Result<Recording> {
        sqlx::query("INSERT INTO recordings (broadcast_id, storage_key, state, created_at) VALUES (?, ?, 'recording', ?)")
            .bind(broadcast_id)
            .bind(broadcast_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.recording(broadcast_id).await
    }

    pub async fn recording(&self, broadcast_id: &str) -> Result<Recording> {
        let row = sqlx::query_as::<_, FlatRow>(select_recordings!("WHERE rec.broadcast_id = ?"))
            .bind(broadcast_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("recording"))?;
        from_row(row)
    }

    /// Totals so far of a recording still being made.
    pub async fn recording_progress(&self, broadcast_id: &str, duration_ms: i64, bytes: i64) -> Result<()> {
        sqlx::query("UPDATE recordings SET duration_ms = ?, bytes = ? WHERE broadcast_id = ? AND state = 'recording'")
            .bind(duration_ms)
            .bind(bytes)
            .bind(broadcast_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notes a storage problem (the recording goes on as far as it can).
    pub async fn recording_error(&self, broadcast_id: &str, message: &str) -> Result<()> {
        sqlx::query("UPDATE recordings SET error = ? WHERE broadcast_id = ?")
            .bind(message)
            .bind(broadcast_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a recording finished (`Ready` or `Failed`) with what it holds.
    pub async fn finish_recording(
        &self,
        broadcast_id: &str,
        state: RecordingState,
        duration_ms: i64,
        bytes: i64,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE recordings SET state = ?, duration_ms = ?, bytes = ?, finished_at = ? WHERE broadcast_id = ?")
            .bind(state.as_str())
            .bind(duration_ms)
            .bind(bytes)
            .bind(now)
            .bind(broadcast_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A room's recordings, newest first.
    pub async fn room_recordings(&self, room_id: &str) -> Result<Vec<Recording>> {
        let rows = sqlx::query_as::<_, FlatRow>(select_recordings!("WHERE b.room_id = ? ORDER BY b.started_at DESC, b.id"))
            .bind(room_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Ready recordings of every room, newest first (the public "recent" list).
    pub async fn recent_recordings(&self, limit: i64, offset: i64) -> Result<Vec<Recording>> {
        let rows = sqlx::query_as::<_, FlatRow>(select_recordings!(
            "WHERE rec.state = 'ready' ORDER BY b.started_at DESC, b.id LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Recordings still marked as being made whose broadcast has ended:
    /// left so by a crash (at start-up every broadcast has ended).
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>> {
        let rows = sqlx::query_as::<_, FlatRow>(select_recordings!(
            "WHERE rec.state = 'recording' AND b.ended_at IS NOT NULL ORDER BY b.started_at, b.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Finished recordings, oldest first (for retention).
    pub async fn finished_recordings(&self) -> Result<Vec<Recording>> {
        let rows = sqlx::query_as::<_, FlatRow>(select_recordings!(
            "WHERE rec.state <> 'recording' ORDER BY COALESCE(rec.finished_at, b.started_at), b.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Storage keys of every recording the database knows (anything else in
    /// storage is left over from deleted rooms or recordings).
    pub async fn recording_keys(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT storage_key FROM recordings").fetch_all(&self.pool).await?)
    }

    /// Forgets a recording (its objects are deleted by the caller).
    pub async fn delete_recording(&self, broadcast_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM recordings WHERE broadcast_id = ?").bind(broadcast_id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("recording"));
        }
        Ok(())
    }
}
