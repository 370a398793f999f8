//! Shareable invite links: an expiring secret that makes any logged-in user
//! who opens it a member of the room.

use crate::secret::{hash_token, new_token};
use crate::{Result, RoomSummary, Store, StoreError, Timestamp, UserId};

/// A link just created; the token is shown once and stored only as a hash.
#[derive(Clone, Debug)]
pub struct InviteLink {
    pub token: String,
    pub room_id: String,
    pub expires_at: Timestamp,
}

impl Store {
    pub async fn create_invite_link(
        &self,
        room_id: &str,
        creator: UserId,
        now: Timestamp,
        lifetime_secs: i64,
    ) -> Result<InviteLink> {
        let token = new_token();
        let expires_at = now.saturating_add(lifetime_secs);
        sqlx::query("INSERT INTO invite_links (token_hash, room_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(hash_token(&token))
            .bind(room_id)
            .bind(creator.0)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(InviteLink { token, room_id: room_id.to_owned(), expires_at })
    }

    /// Makes `user` a member of the link's room. Returns the room and whether
    /// the user was newly added (opening a link twice is harmless).
    pub async fn accept_invite_link(&self, token: &str, user: UserId, now: Timestamp) -> Result<(RoomSummary, bool)> {
        let row = sqlx::query_as::<_, (String, i64)>("SELECT room_id, expires_at FROM invite_links WHERE token_hash = ?")
            .bind(hash_token(token))
            .fetch_optional(&self.pool)
            .await?;
        let Some((room_id, expires_at)) = row else {
            return Err(StoreError::NotFound("invite link"));
        };
        if expires_at <= now {
            return Err(StoreError::Expired);
        }
        let added = self.add_member(&room_id, user, now).await?;
        Ok((self.room_summary(&room_id, user).await?, added))
    }
}
