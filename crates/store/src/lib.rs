//! Accounts, sessions, rooms and invitations, persisted in SQLite.
//!
//! [`Store`] is the boundary the server talks to: it speaks in domain types
//! and never hands out SQL rows, so a PostgreSQL implementation can follow
//! without touching the HTTP layer. Every function that depends on the time
//! takes `now` (Unix seconds) as an argument.

mod broadcasts;
mod error;
mod ingest_keys;
mod invitations;
mod invite_links;
mod mirror;
mod operators;
mod recordings;
mod rooms;
mod secret;
mod sessions;
mod users;
pub mod validate;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use broadcasts::Broadcast;
pub use confcast_policy::Role;
pub use error::StoreError;
pub use ingest_keys::{IngestKey, MAX_INGEST_KEYS_PER_ROOM};
pub use invitations::{Invitation, InvitationStatus};
pub use invite_links::InviteLink;
pub use mirror::NO_LOGIN;
pub use recordings::{Recording, RecordingState};
pub use rooms::{Member, Room, RoomSummary};
pub use secret::{hash_token, new_token};
pub use sessions::Session;
pub use users::{Credentials, User, UserId, UserRef};

/// Unix time in seconds.
pub type Timestamp = i64;

/// Result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database of accounts, rooms and invitations.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its
    /// schema up to date.
    ///
    /// WAL mode lets readers proceed while one request writes; foreign keys
    /// are on so deleting a room takes its members and invitations with it.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options).await
    }

    /// An in-memory database for tests and benchmarks; it is gone on drop.
    pub async fn open_in_memory() -> Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(StoreError::Database)?
            .foreign_keys(true);
        Self::connect_with(SqlitePoolOptions::new().max_connections(1).min_connections(1), options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Store> {
        Self::connect_with(SqlitePoolOptions::new().max_connections(8), options).await
    }

    async fn connect_with(pool: SqlitePoolOptions, options: SqliteConnectOptions) -> Result<Store> {
        let pool = pool
            // An in-memory database lives as long as its one connection.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Store { pool })
    }

    /// Closes every connection, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers; used by the health endpoint.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
