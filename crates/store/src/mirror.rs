//! A stream node's copies of the rooms whose broadcasts it carries. The
//! rooms live on a conference node; here each needs a row (same id, title)
//! and a host, so broadcasts and recordings can refer to them. The host is
//! an account that cannot log in (its password hash is no hash), and a
//! stream node serves no login anyway.

use crate::{Result, Store, Timestamp, UserId};

/// What `password_hash` holds for an account nobody can log in to.
pub const NO_LOGIN: &str = "!";

impl Store {
    /// Creates or refreshes the room `room_id` and its host `host_username`;
    /// returns the host's id. Names must already be validated.
    pub async fn mirror_room(
        &self,
        room_id: &str,
        room_title: &str,
        host_username: &str,
        host_display_name: &str,
        now: Timestamp,
    ) -> Result<UserId> {
        let mut tx = self.pool.begin().await?;
        let host: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name RETURNING id",
        )
        .bind(host_username)
        .bind(host_display_name)
        .bind(NO_LOGIN)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO rooms (id, title, owner_id, personal, created_at) VALUES (?, ?, ?, 0, ?)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, owner_id = excluded.owner_id",
        )
        .bind(room_id)
        .bind(room_title)
        .bind(host)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT OR IGNORE INTO room_members (room_id, user_id, role, joined_at) VALUES (?, ?, 'host', ?)")
            .bind(room_id)
            .bind(host)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(UserId(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mirrored_room_can_go_on_air_and_be_refreshed() {
        let store = Store::open_in_memory().await.expect("store");
        let host = store.mirror_room("abcdefghij", "Hana's room", "hana", "Hana", 10).await.expect("mirror");
        let again = store.mirror_room("abcdefghij", "Renamed", "hana", "Hana H.", 20).await.expect("again");
        assert_eq!(host, again);
        let room = store.room("abcdefghij").await.expect("room");
        assert_eq!(room.title, "Renamed");
        let broadcast = store.start_broadcast("abcdefghij", "Live", "", host, 30).await.expect("on air");
        assert_eq!(broadcast.host.display_name, "Hana H.");
        let credentials = store.credentials("hana").await.expect("credentials").expect("exists");
        assert_eq!(credentials.password_hash, NO_LOGIN);
    }
}
