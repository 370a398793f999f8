//! The JSON API under `/api/v1`. Every route is registered through
//! `utoipa_axum::routes!`, so the OpenAPI document cannot miss one.

pub mod auth;
pub mod events;
pub mod ice_servers;
pub mod invitations;
pub mod ingest_keys;
pub mod invite_links;
pub mod me;
pub mod operator;
pub mod rooms;
pub mod users;
pub mod views;

use confcast_policy::{allows, Action, Role};
use confcast_store::UserId;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller's role in a room, if it allows `action`; otherwise 403 (or 404
/// when the room does not exist). Every room-scoped handler goes through here.
pub async fn authorize(state: &AppState, room_id: &str, user: UserId, action: Action) -> Result<Role, ApiError> {
    let role = state.store.role_in_room(room_id, user).await?;
    if allows(role, action) {
        Ok(role)
    } else if role == Role::Stranger {
        Err(ApiError::forbidden("you are not a member of this room"))
    } else {
        Err(ApiError::forbidden(format!("a {role} of this room may not do that")))
    }
}

/// Validation errors from the store's rules become 400s.
pub fn invalid(message: String) -> ApiError {
    ApiError::bad_request(message)
}
