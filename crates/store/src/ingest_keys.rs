//! Ingest keys: a bearer secret per encoder, made by the room's host, with
//! which the encoder publishes into the room over WHIP. The secret is shown
//! once and stored only as a hash.

use crate::secret::{hash_token, new_id, new_token};
use crate::{Result, Store, StoreError, Timestamp, UserId};

/// An ingest key as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestKey {
    pub id: String,
    pub room_id: String,
    /// What the encoder is called in the room (its display name there).
    pub name: String,
    pub created_at: Timestamp,
}

/// Keys per room, so a room cannot fill the database.
pub const MAX_INGEST_KEYS_PER_ROOM: i64 = 50;

impl Store {
    /// Creates a key; returns it and its secret (shown once).
    pub async fn create_ingest_key(&self, room_id: &str, name: &str, creator: UserId, now: Timestamp) -> Result<(IngestKey, String)> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ingest_keys WHERE room_id = ?").bind(room_id).fetch_one(&self.pool).await?;
        if count >= MAX_INGEST_KEYS_PER_ROOM {
            return Err(StoreError::Conflict("this room has as many ingest keys as it may; delete one first"));
        }
        let token = new_token();
        let key = IngestKey { id: new_id(12), room_id: room_id.to_owned(), name: name.to_owned(), created_at: now };
        sqlx::query("INSERT INTO ingest_keys (id, room_id, name, token_hash, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&key.id)
            .bind(room_id)
            .bind(name)
            .bind(hash_token(&token))
            .bind(creator.0)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok((key, token))
    }

    /// The room's keys, oldest first.
    pub async fn ingest_keys(&self, room_id: &str) -> Result<Vec<IngestKey>> {
        let rows = sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT id, room_id, name, created_at FROM ingest_keys WHERE room_id = ? ORDER BY created_at, id",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, room_id, name, created_at)| IngestKey { id, room_id, name, created_at }).collect())
    }

    /// The key a secret belongs to, if it is one of `room_id`'s.
    pub async fn ingest_key_by_token(&self, room_id: &str, token: &str) -> Result<IngestKey> {
        let row = sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT id, room_id, name, created_at FROM ingest_keys WHERE token_hash = ? AND room_id = ?",
        )
        .bind(hash_token(token))
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?;
        let (id, room_id, name, created_at) = row.ok_or(StoreError::NotFound("ingest key"))?;
        Ok(IngestKey { id, room_id, name, created_at })
    }

    pub async fn delete_ingest_key(&self, room_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM ingest_keys WHERE id = ? AND room_id = ?").bind(id).bind(room_id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("ingest key"));
        }
        Ok(())
    }
}
