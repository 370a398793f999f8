//! The JSON shapes the API answers with, built from store types.

use confcast_store::{Invitation, Member, Room, RoomSummary, User, UserRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;

/// How a user is shown to others.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
}

impl From<UserRef> for UserView {
    fn from(u: UserRef) -> UserView {
        UserView { username: u.username, display_name: u.display_name }
    }
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView { username: u.username.clone(), display_name: u.display_name.clone() }
    }
}

/// A room in someone's list, with their role in it.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RoomSummaryView {
    pub id: String,
    pub title: String,
    /// Whether this is the host's personal room (made at registration).
    pub personal: bool,
    /// `host`, `admin` or `member`.
    pub role: String,
    pub host: UserView,
}

impl From<RoomSummary> for RoomSummaryView {
    fn from(r: RoomSummary) -> RoomSummaryView {
        RoomSummaryView { id: r.id, title: r.title, personal: r.personal, role: r.role.as_str().to_owned(), host: r.host.into() }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct MemberView {
    pub username: String,
    pub display_name: String,
    /// `host`, `admin` or `member`.
    pub role: String,
    pub joined_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> MemberView {
        MemberView {
            username: m.user.username,
            display_name: m.user.display_name,
            role: m.role.as_str().to_owned(),
            joined_at: rfc3339(m.joined_at),
        }
    }
}

/// A room with its members, as a member sees it.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RoomView {
    pub id: String,
    pub title: String,
    pub personal: bool,
    pub host: UserView,
    /// The caller's role: `host`, `admin` or `member`.
    pub your_role: String,
    pub members: Vec<MemberView>,
    pub created_at: String,
}

impl RoomView {
    pub fn new(room: Room, your_role: confcast_store::Role) -> RoomView {
        RoomView {
            id: room.id,
            title: room.title,
            personal: room.personal,
            host: room.host.into(),
            your_role: your_role.as_str().to_owned(),
            members: room.members.into_iter().map(MemberView::from).collect(),
            created_at: rfc3339(room.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RoomRef {
    pub id: String,
    pub title: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct InvitationView {
    pub id: String,
    pub room: RoomRef,
    pub inviter: UserView,
    pub invitee: UserView,
    /// `pending`, `accepted`, `declined` or `cancelled`.
    pub status: String,
    pub created_at: String,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> InvitationView {
        InvitationView {
            id: i.id,
            room: RoomRef { id: i.room_id, title: i.room_title },
            inviter: i.inviter.into(),
            invitee: i.invitee.into(),
            status: i.status.as_str().to_owned(),
            created_at: rfc3339(i.created_at),
        }
    }
}
