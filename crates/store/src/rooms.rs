//! Rooms and who belongs to them.

use sqlx::{Sqlite, Transaction};

use crate::secret::new_id;
use crate::{Result, Role, Store, StoreError, Timestamp, UserId, UserRef};

/// A room as listed on someone's home page: with their role in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    pub id: String,
    pub title: String,
    pub personal: bool,
    pub role: Role,
    pub host: UserRef,
}

/// A room with its full member list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub title: String,
    pub personal: bool,
    pub host: UserRef,
    pub created_at: Timestamp,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: UserRef,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// Length of room ids: 60 random bits, so ids cannot be guessed.
const ROOM_ID_LEN: usize = 12;

/// Inserts a room with `owner` as its host, inside the caller's transaction.
pub(crate) async fn insert_room(
    tx: &mut Transaction<'_, Sqlite>,
    owner: UserId,
    title: &str,
    personal: bool,
    now: Timestamp,
) -> Result<String> {
    let id = new_id(ROOM_ID_LEN);
    sqlx::query("INSERT INTO rooms (id, title, owner_id, personal, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&id)
        .bind(title)
        .bind(owner.0)
        .bind(personal)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?, ?, 'host', ?)")
        .bind(&id)
        .bind(owner.0)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

fn parse_role(stored: &str) -> Result<Role> {
    Role::from_membership(stored)
        .ok_or_else(|| StoreError::Database(sqlx::Error::Decode(format!("unknown role {stored:?}").into())))
}

impl Store {
    pub async fn create_room(&self, owner: UserId, title: &str, now: Timestamp) -> Result<RoomSummary> {
        let mut tx = self.pool.begin().await?;
        let id = insert_room(&mut tx, owner, title, false, now).await?;
        tx.commit().await?;
        self.room_summary(&id, owner).await
    }

    /// The role `user` has in the room: [`Role::Stranger`] when not a member.
    /// Fails with `NotFound` when the room does not exist.
    pub async fn role_in_room(&self, room_id: &str, user: UserId) -> Result<Role> {
        let row = sqlx::query_as::<_, (Option<String>,)>(
            "SELECT m.role FROM rooms r
             LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ?
             WHERE r.id = ?",
        )
        .bind(user.0)
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::NotFound("room")),
            Some((None,)) => Ok(Role::Stranger),
            Some((Some(role),)) => parse_role(&role),
        }
    }

    /// One room as `user` sees it in a list. `user` must be a member.
    pub async fn room_summary(&self, room_id: &str, user: UserId) -> Result<RoomSummary> {
        let row = sqlx::query_as::<_, (String, String, bool, String, String, String)>(
            "SELECT r.id, r.title, r.personal, m.role, h.username, h.display_name
             FROM rooms r
             JOIN room_members m ON m.room_id = r.id AND m.user_id = ?
             JOIN users h ON h.id = r.owner_id
             WHERE r.id = ?",
        )
        .bind(user.0)
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("room"))?;
        summary_from_row(row)
    }

    /// Every room `user` belongs to: the personal room first, then by title.
    pub async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomSummary>> {
        let rows = sqlx::query_as::<_, (String, String, bool, String, String, String)>(
            "SELECT r.id, r.title, r.personal, m.role, h.username, h.display_name
             FROM room_members m
             JOIN rooms r ON r.id = m.room_id
             JOIN users h ON h.id = r.owner_id
             WHERE m.user_id = ?
             ORDER BY (r.owner_id = m.user_id AND r.personal) DESC, r.title COLLATE NOCASE, r.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(summary_from_row).collect()
    }

    /// A room with all its members (host first, then admins, then members).
    pub async fn room(&self, room_id: &str) -> Result<Room> {
        let (id, title, personal, created_at, host_username, host_display) =
            sqlx::query_as::<_, (String, String, bool, i64, String, String)>(
                "SELECT r.id, r.title, r.personal, r.created_at, h.username, h.display_name
                 FROM rooms r JOIN users h ON h.id = r.owner_id WHERE r.id = ?",
            )
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("room"))?;
        let rows = sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT u.username, u.display_name, m.role, m.joined_at
             FROM room_members m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?
             ORDER BY CASE m.role WHEN 'host' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.username",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        let members = rows
            .into_iter()
            .map(|(username, display_name, role, joined_at)| {
                Ok(Member { user: UserRef { username, display_name }, role: parse_role(&role)?, joined_at })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Room {
            id,
            title,
            personal,
            host: UserRef { username: host_username, display_name: host_display },
            created_at,
            members,
        })
    }

    pub async fn rename_room(&self, room_id: &str, title: &str) -> Result<()> {
        let done = sqlx::query("UPDATE rooms SET title = ? WHERE id = ?").bind(title).bind(room_id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("room"));
        }
        Ok(())
    }

    /// Deletes a room with its memberships, invitations and links. The
    /// personal room stays as long as the account does.
    pub async fn delete_room(&self, room_id: &str) -> Result<()> {
        let personal: Option<bool> = sqlx::query_scalar("SELECT personal FROM rooms WHERE id = ?")
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?;
        match personal {
            None => Err(StoreError::NotFound("room")),
            Some(true) => Err(StoreError::PersonalRoom),
            Some(false) => {
                sqlx::query("DELETE FROM rooms WHERE id = ? AND personal = 0").bind(room_id).execute(&self.pool).await?;
                Ok(())
            }
        }
    }

    /// Makes `user` a member if they are not one already (idempotent).
    /// Returns whether they were newly added.
    pub async fn add_member(&self, room_id: &str, user: UserId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room_id)
        .bind(user.0)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Promotes a member to admin or demotes an admin to member.
    pub async fn set_member_role(&self, room_id: &str, user: UserId, role: Role) -> Result<()> {
        if !matches!(role, Role::Admin | Role::Member) {
            return Err(StoreError::HostRoleFixed);
        }
        match self.role_in_room(room_id, user).await? {
            Role::Host => Err(StoreError::HostRoleFixed),
            Role::Stranger | Role::Anonymous => Err(StoreError::NotFound("member")),
            Role::Admin | Role::Member => {
                sqlx::query("UPDATE room_members SET role = ? WHERE room_id = ? AND user_id = ? AND role != 'host'")
                    .bind(role.as_str())
                    .bind(room_id)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Removes a member (or lets one leave). The host stays.
    pub async fn remove_member(&self, room_id: &str, user: UserId) -> Result<()> {
        match self.role_in_room(room_id, user).await? {
            Role::Host => Err(StoreError::HostIsPermanent),
            Role::Stranger | Role::Anonymous => Err(StoreError::NotFound("member")),
            Role::Admin | Role::Member => {
                sqlx::query("DELETE FROM room_members WHERE room_id = ? AND user_id = ? AND role != 'host'")
                    .bind(room_id)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Ids of every member, for notifying them of changes.
    pub async fn member_ids(&self, room_id: &str) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM room_members WHERE room_id = ?")
            .bind(room_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}

fn summary_from_row(row: (String, String, bool, String, String, String)) -> Result<RoomSummary> {
    let (id, title, personal, role, username, display_name) = row;
    Ok(RoomSummary { id, title, personal, role: parse_role(&role)?, host: UserRef { username, display_name } })
}
