//! Server-side login sessions. The client holds a random token; the database
//! holds only its hash, so logging out or expiring really ends the session.

use crate::secret::{hash_token, new_token};
use crate::{Result, Store, Timestamp, User, UserId};

/// A freshly created session: the token is shown to the client once.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub expires_at: Timestamp,
}

impl Store {
    pub async fn create_session(&self, user: UserId, now: Timestamp, lifetime_secs: i64) -> Result<Session> {
        let token = new_token();
        let expires_at = now.saturating_add(lifetime_secs);
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(hash_token(&token))
            .bind(user.0)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(Session { token, expires_at })
    }

    /// The user a token belongs to, if the session exists and has not expired.
    pub async fn session_user(&self, token: &str, now: Timestamp) -> Result<Option<User>> {
        let row = sqlx::query_as::<_, (i64, String, String, i64)>(
            "SELECT u.id, u.username, u.display_name, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?",
        )
        .bind(hash_token(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, username, display_name, created_at)| User {
            id: UserId(id),
            username,
            display_name,
            created_at,
        }))
    }

    /// Ends a session. Ending an unknown session is not an error.
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(hash_token(token)).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes expired sessions and invite links; returns how many rows went.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        let links = sqlx::query("DELETE FROM invite_links WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        Ok(sessions.rows_affected() + links.rows_affected())
    }
}
