//! Who may do what in a room: the one place every permission is decided.
//!
//! The HTTP API, the room's signalling and the broadcast controls all ask
//! [`allows`]; the web client only mirrors these answers for display. Keeping the
//! rules in one pure table means a single test can cover every action for every
//! role.

use std::fmt;

/// A person's standing towards one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The room's owner.
    Host,
    /// A co-host named by the host.
    Admin,
    /// Invited (or joined by link) and accepted.
    Member,
    /// Logged in but not a member of this room.
    Stranger,
    /// Not logged in at all.
    Anonymous,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Host, Role::Admin, Role::Member, Role::Stranger, Role::Anonymous];

    /// The role stored for a room membership, if the person is a member.
    pub fn from_membership(stored: &str) -> Option<Role> {
        match stored {
            "host" => Some(Role::Host),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Stranger => "stranger",
            Role::Anonymous => "anonymous",
        }
    }

    pub fn is_member(self) -> bool {
        matches!(self, Role::Host | Role::Admin | Role::Member)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a person can try to do to a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// See the room's title, host and members.
    ViewRoom,
    /// Enter the conference with camera and microphone.
    Join,
    /// Invite a user by name.
    Invite,
    /// Create a shareable invite link.
    CreateInviteLink,
    /// Remove another member from the room.
    RemoveMember,
    /// Leave the room oneself.
    Leave,
    /// Rename the room.
    Rename,
    /// Delete the room (never the personal room, see the store).
    DeleteRoom,
    /// Promote a member to admin or demote an admin.
    NameAdmins,
    /// Lock everyone's video to a designated participant, or unlock.
    LockVideo,
    /// Change the designated participant.
    DesignateVideo,
    /// Put the room on air or take it off.
    Broadcast,
    /// Delete a past broadcast's recording.
    DeleteRecording,
    /// Create, list and delete the keys encoders publish into the room with
    /// (WHIP ingest).
    ManageIngest,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::ViewRoom,
        Action::Join,
        Action::Invite,
        Action::CreateInviteLink,
        Action::RemoveMember,
        Action::Leave,
        Action::Rename,
        Action::DeleteRoom,
        Action::NameAdmins,
        Action::LockVideo,
        Action::DesignateVideo,
        Action::Broadcast,
        Action::DeleteRecording,
        Action::ManageIngest,
    ];
}

/// Whether `role` may perform `action` on a room.
///
/// Rules that depend on a second person (an admin may not remove the host or
/// another admin) are in [`may_remove`].
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ViewRoom | Join => role.is_member(),
        Leave => matches!(role, Admin | Member),
        Invite | CreateInviteLink | RemoveMember | LockVideo | DesignateVideo | Broadcast | ManageIngest => {
            matches!(role, Host | Admin)
        }
        Rename | DeleteRoom | NameAdmins | DeleteRecording => role == Host,
    }
}

/// Whether `actor` may remove a member whose role is `target`.
///
/// The host is never removed; only the host removes admins; anyone but the
/// host may remove themselves (that is leaving, see [`Action::Leave`]).
pub fn may_remove(actor: Role, target: Role) -> bool {
    allows(actor, Action::RemoveMember)
        && match target {
            Role::Host => false,
            Role::Admin => actor == Role::Host,
            Role::Member => true,
            Role::Stranger | Role::Anonymous => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole permission table, written out so that a change to any cell is
    /// a deliberate edit of this test.
    #[test]
    fn every_action_for_every_role() {
        // Columns: Host, Admin, Member, Stranger, Anonymous.
        let table: [(Action, [bool; 5]); 14] = [
            (Action::ViewRoom, [true, true, true, false, false]),
            (Action::Join, [true, true, true, false, false]),
            (Action::Invite, [true, true, false, false, false]),
            (Action::CreateInviteLink, [true, true, false, false, false]),
            (Action::RemoveMember, [true, true, false, false, false]),
            (Action::Leave, [false, true, true, false, false]),
            (Action::Rename, [true, false, false, false, false]),
            (Action::DeleteRoom, [true, false, false, false, false]),
            (Action::NameAdmins, [true, false, false, false, false]),
            (Action::LockVideo, [true, true, false, false, false]),
            (Action::DesignateVideo, [true, true, false, false, false]),
            (Action::Broadcast, [true, true, false, false, false]),
            (Action::DeleteRecording, [true, false, false, false, false]),
            (Action::ManageIngest, [true, true, false, false, false]),
        ];
        assert_eq!(
            table.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            Action::ALL.to_vec(),
            "the table must list every action once, in order"
        );
        for (action, expected) in table {
            for (role, allowed) in Role::ALL.into_iter().zip(expected) {
                assert_eq!(allows(role, action), allowed, "{role} / {action:?}");
            }
        }
    }

    #[test]
    fn removal_respects_rank() {
        assert!(may_remove(Role::Host, Role::Admin));
        assert!(may_remove(Role::Host, Role::Member));
        assert!(!may_remove(Role::Host, Role::Host));
        assert!(may_remove(Role::Admin, Role::Member));
        assert!(!may_remove(Role::Admin, Role::Admin));
        assert!(!may_remove(Role::Admin, Role::Host));
        for target in Role::ALL {
            assert!(!may_remove(Role::Member, target));
            assert!(!may_remove(Role::Stranger, target));
            assert!(!may_remove(Role::Anonymous, target));
        }
    }

    #[test]
    fn stored_roles_round_trip() {
        for role in [Role::Host, Role::Admin, Role::Member] {
            assert_eq!(Role::from_membership(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_membership("stranger"), None);
        assert_eq!(Role::from_membership("owner"), None);
    }
}
