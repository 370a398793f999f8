//! Accounts: registration (with the personal room), look-up and search.

use serde::Serialize;
use sqlx::FromRow;

use crate::error::is_unique_violation;
use crate::rooms::{insert_room, RoomSummary};
use crate::{Result, Role, Store, StoreError, Timestamp};

/// A user's database id. Never shown to clients: the API names users by
/// username.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// An account as the rest of the server sees it (no password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at: Timestamp,
}

impl User {
    pub fn as_ref(&self) -> UserRef {
        UserRef { username: self.username.clone(), display_name: self.display_name.clone() }
    }
}

/// How a user is shown to other users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromRow)]
pub struct UserRef {
    pub username: String,
    pub display_name: String,
}

/// A user with the password hash, for checking a login.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> User {
        User { id: UserId(row.id), username: row.username, display_name: row.display_name, created_at: row.created_at }
    }
}

impl Store {
    /// Creates an account and its personal room, with the user as host, in
    /// one transaction. `username` must already be validated (lower-case).
    pub async fn register(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(User, RoomSummary)> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(username)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => UserId(id),
            Err(e) if is_unique_violation(&e) => return Err(StoreError::UsernameTaken),
            Err(e) => return Err(e.into()),
        };
        let title = format!("{display_name}'s room");
        let room_id = insert_room(&mut tx, id, &title, true, now).await?;
        tx.commit().await?;
        let user = User { id, username: username.to_owned(), display_name: display_name.to_owned(), created_at: now };
        let room = RoomSummary { id: room_id, title, personal: true, role: Role::Host, host: user.as_ref() };
        Ok((user, room))
    }

    /// The account and password hash for a login attempt, if the username exists.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query_as::<_, (i64, String, String, i64, String)>(
            "SELECT id, username, display_name, created_at, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, username, display_name, created_at, password_hash)| Credentials {
            user: User { id: UserId(id), username, display_name, created_at },
            password_hash,
        }))
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<User> {
        sqlx::query_as::<_, UserRow>("SELECT id, username, display_name, created_at FROM users WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .map(User::from)
            .ok_or(StoreError::NotFound("user"))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<User> {
        sqlx::query_as::<_, UserRow>("SELECT id, username, display_name, created_at FROM users WHERE username = ?")
            .bind(username.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .map(User::from)
            .ok_or(StoreError::NotFound("user"))
    }

    /// Users whose username or display name starts with `prefix`
    /// (case-insensitive for ASCII), ordered by username.
    pub async fn search_users(&self, prefix: &str, limit: u32, offset: u32) -> Result<Vec<UserRef>> {
        let pattern = format!("{}%", escape_like(prefix));
        let rows = sqlx::query_as::<_, UserRef>(
            "SELECT username, display_name FROM users
             WHERE username LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\'
             ORDER BY username LIMIT ?2 OFFSET ?3",
        )
        .bind(pattern)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

/// Makes `%`, `_` and `\` in user input match themselves in a LIKE pattern.
fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
