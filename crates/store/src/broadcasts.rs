//! Broadcasts: when a room went on air, under what title, and when it ended.

use crate::error::is_unique_violation;
use crate::secret::new_id;
use crate::{Result, Store, StoreError, Timestamp, UserId, UserRef};

/// One broadcast of a room, live or past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub room_id: String,
    pub title: String,
    pub description: String,
    /// The room's host (shown in the directory).
    pub host: UserRef,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

type Row = (String, String, String, String, String, String, i64, Option<i64>);

fn from_row(row: Row) -> Broadcast {
    let (id, room_id, title, description, username, display_name, started_at, ended_at) = row;
    Broadcast { id, room_id, title, description, host: UserRef { username, display_name }, started_at, ended_at }
}

/// The broadcast query with a `WHERE ...` tail, kept a compile-time constant.
macro_rules! select_broadcasts {
    ($tail:literal) => {
        concat!(
            "SELECT b.id, b.room_id, b.title, b.description, h.username, h.display_name, b.started_at, b.ended_at
             FROM broadcasts b JOIN rooms r ON r.id = b.room_id JOIN users h ON h.id = r.owner_id ",
            $tail
        )
    };
}

impl Store {
    /// Puts a room on air. Fails with `AlreadyLive` if it already is.
    pub async fn start_broadcast(
        &self,
        room_id: &str,
        title: &str,
        description: &str,
        started_by: UserId,
        now: Timestamp,
    ) -> Result<Broadcast> {
        let id = new_id(16);
        let inserted = sqlx::query(
            "INSERT INTO broadcasts (id, room_id, title, description, started_by, started_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(room_id)
        .bind(title)
        .bind(description)
        .bind(started_by.0)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.broadcast(&id).await,
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyLive),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes a room off air; returns the ended broadcast, or `NotFound` when
    /// it was not live.
    pub async fn end_broadcast(&self, room_id: &str, now: Timestamp) -> Result<Broadcast> {
        let id: Option<String> =
            sqlx::query_scalar("UPDATE broadcasts SET ended_at = ? WHERE room_id = ? AND ended_at IS NULL RETURNING id")
                .bind(now)
                .bind(room_id)
                .fetch_optional(&self.pool)
                .await?;
        let id = id.ok_or(StoreError::NotFound("live broadcast"))?;
        self.broadcast(&id).await
    }

    pub async fn broadcast(&self, id: &str) -> Result<Broadcast> {
        sqlx::query_as::<_, Row>(select_broadcasts!("WHERE b.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(from_row)
            .ok_or(StoreError::NotFound("broadcast"))
    }

    /// The room's live broadcast, if it is on air.
    pub async fn live_broadcast(&self, room_id: &str) -> Result<Option<Broadcast>> {
        Ok(sqlx::query_as::<_, Row>(select_broadcasts!("WHERE b.room_id = ? AND b.ended_at IS NULL"))
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?
            .map(from_row))
    }

    /// Every room on air, newest first.
    pub async fn live_broadcasts(&self) -> Result<Vec<Broadcast>> {
        let rows = sqlx::query_as::<_, Row>(select_broadcasts!("WHERE b.ended_at IS NULL ORDER BY b.started_at DESC, b.id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Ends every broadcast still marked live: after a restart no program is
    /// running, so none of them is on air any more. Returns how many ended.
    pub async fn end_stale_broadcasts(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("UPDATE broadcasts SET ended_at = ? WHERE ended_at IS NULL").bind(now).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
