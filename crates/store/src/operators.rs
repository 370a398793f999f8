//! Site operators: a flag on the account, set from the server's command
//! line (`confcast operator grant`), never through the API.

use crate::{Result, Store, StoreError, UserId, UserRef};

impl Store {
    /// Makes `username` an operator or not; `Ok(false)` when it already was
    /// so. `NotFound` when there is no such user.
    pub async fn set_operator(&self, username: &str, operator: bool) -> Result<bool> {
        let user = self.user_by_username(username).await?;
        let changed = sqlx::query("UPDATE users SET operator = ? WHERE id = ? AND operator <> ?")
            .bind(i64::from(operator))
            .bind(user.id.0)
            .bind(i64::from(operator))
            .execute(&self.pool)
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    /// Whether the user is an operator.
    pub async fn is_operator(&self, user: UserId) -> Result<bool> {
        let flag: Option<i64> = sqlx::query_scalar("SELECT operator FROM users WHERE id = ?").bind(user.0).fetch_optional(&self.pool).await?;
        flag.map(|f| f == 1).ok_or(StoreError::NotFound("user"))
    }

    /// Every operator, by username.
    pub async fn operators(&self) -> Result<Vec<UserRef>> {
        Ok(sqlx::query_as::<_, UserRef>("SELECT username, display_name FROM users WHERE operator = 1 ORDER BY username")
            .fetch_all(&self.pool)
            .await?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{Store, StoreError};

    #[tokio::test]
    async fn operators_are_granted_and_revoked_by_username() {
        let store = Store::open_in_memory().await.expect("store");
        let (user, _) = store.register("ada", "Ada", "hash", 0).await.unwrap();
        assert!(!store.is_operator(user.id).await.unwrap());
        assert!(store.set_operator("ADA", true).await.unwrap());
        assert!(!store.set_operator("ada", true).await.unwrap(), "already an operator");
        assert!(store.is_operator(user.id).await.unwrap());
        assert_eq!(store.operators().await.unwrap().iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["ada"]);
        assert!(store.set_operator("ada", false).await.unwrap());
        assert!(!store.is_operator(user.id).await.unwrap());
        assert!(store.operators().await.unwrap().is_empty());
        assert!(matches!(store.set_operator("nobody", true).await, Err(StoreError::NotFound("user"))));
    }
}
