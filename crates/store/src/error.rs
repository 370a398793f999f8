use thiserror::Error;

/// What can go wrong in the store. Every variant but [`StoreError::Database`]
/// and [`StoreError::Migration`] is the caller's mistake and maps to a 4xx.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the user is already a member of this room")]
    AlreadyMember,
    #[error("the user already has a pending invitation to this room")]
    AlreadyInvited,
    #[error("a personal room cannot be deleted")]
    PersonalRoom,
    #[error("the host cannot be removed from their room")]
    HostIsPermanent,
    #[error("the host's role cannot be changed")]
    HostRoleFixed,
    #[error("the invitation is no longer pending")]
    NotPending,
    #[error("the invite link has expired")]
    Expired,
    #[error("the room is already on air")]
    AlreadyLive,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// Whether `error` is SQLite refusing a row because of a UNIQUE constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
