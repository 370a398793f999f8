//! Invitations ("dialling" a user into a room): pending until the invitee
//! accepts or declines, or the inviter cancels.

use crate::error::is_unique_violation;
use crate::secret::new_id;
use crate::{Result, Role, RoomSummary, Store, StoreError, Timestamp, UserId, UserRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Cancelled,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Declined => "declined",
            InvitationStatus::Cancelled => "cancelled",
        }
    }

    fn parse(stored: &str) -> Result<InvitationStatus> {
        Ok(match stored {
            "pending" => InvitationStatus::Pending,
            "accepted" => InvitationStatus::Accepted,
            "declined" => InvitationStatus::Declined,
            "cancelled" => InvitationStatus::Cancelled,
            other => {
                return Err(StoreError::Database(sqlx::Error::Decode(format!("unknown status {other:?}").into())));
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub room_id: String,
    pub room_title: String,
    pub inviter_id: UserId,
    pub inviter: UserRef,
    pub invitee_id: UserId,
    pub invitee: UserRef,
    pub status: InvitationStatus,
    pub created_at: Timestamp,
}

/// The invitation query with a `WHERE ...` tail; a macro so the SQL stays a
/// compile-time constant.
macro_rules! select_invitations {
    ($tail:literal) => {
        concat!(
            "SELECT i.id, i.room_id, r.title, i.inviter_id, a.username, a.display_name,
        i.invitee_id, b.username, b.display_name, i.status, i.created_at
    FROM invitations i
    JOIN rooms r ON r.id = i.room_id
    JOIN users a ON a.id = i.inviter_id
    JOIN users b ON b.id = i.invitee_id ",
            $tail
        )
    };
}

type Row = (String, String, String, i64, String, String, i64, String, String, String, i64);

fn from_row(row: Row) -> Result<Invitation> {
    let (id, room_id, room_title, inviter_id, a_name, a_display, invitee_id, b_name, b_display, status, created_at) = row;
    Ok(Invitation {
        id,
        room_id,
        room_title,
        inviter_id: UserId(inviter_id),
        inviter: UserRef { username: a_name, display_name: a_display },
        invitee_id: UserId(invitee_id),
        invitee: UserRef { username: b_name, display_name: b_display },
        status: InvitationStatus::parse(&status)?,
        created_at,
    })
}

impl Store {
    /// Invites `invitee` into the room. Fails if they are already a member or
    /// already have a pending invitation to it.
    pub async fn invite(&self, room_id: &str, inviter: UserId, invitee: UserId, now: Timestamp) -> Result<Invitation> {
        if self.role_in_room(room_id, invitee).await?.is_member() {
            return Err(StoreError::AlreadyMember);
        }
        let id = new_id(16);
        let inserted = sqlx::query(
            "INSERT INTO invitations (id, room_id, inviter_id, invitee_id, status, created_at)
             VALUES (?, ?, ?, ?, 'pending', ?)",
        )
        .bind(&id)
        .bind(room_id)
        .bind(inviter.0)
        .bind(invitee.0)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.invitation(&id).await,
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyInvited),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn invitation(&self, id: &str) -> Result<Invitation> {
        let row = sqlx::query_as::<_, Row>(select_invitations!("WHERE i.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("invitation"))?;
        from_row(row)
    }

    /// The invitations waiting for `user`'s answer, newest first.
    pub async fn pending_invitations(&self, user: UserId) -> Result<Vec<Invitation>> {
        let rows = sqlx::query_as::<_, Row>(select_invitations!(
            "WHERE i.invitee_id = ? AND i.status = 'pending' ORDER BY i.created_at DESC, i.id"
        ))
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The invitee accepts (becoming a member) or declines. Anyone else gets
    /// `NotFound`, so invitation ids reveal nothing.
    pub async fn answer_invitation(
        &self,
        id: &str,
        invitee: UserId,
        accept: bool,
        now: Timestamp,
    ) -> Result<(Invitation, Option<RoomSummary>)> {
        let invitation = self.invitation(id).await?;
        if invitation.invitee_id != invitee {
            return Err(StoreError::NotFound("invitation"));
        }
        let status = if accept { InvitationStatus::Accepted } else { InvitationStatus::Declined };
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE invitations SET status = ?, responded_at = ? WHERE id = ? AND status = 'pending'")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotPending);
        }
        if accept {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(&invitation.room_id)
            .bind(invitee.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let room = if accept { Some(self.room_summary(&invitation.room_id, invitee).await?) } else { None };
        Ok((Invitation { status, ..invitation }, room))
    }

    /// Withdraws a pending invitation.
    pub async fn cancel_invitation(&self, id: &str, now: Timestamp) -> Result<Invitation> {
        let invitation = self.invitation(id).await?;
        let done = sqlx::query(
            "UPDATE invitations SET status = 'cancelled', responded_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotPending);
        }
        Ok(Invitation { status: InvitationStatus::Cancelled, ..invitation })
    }

    /// Whether `user` may see an invitation: its invitee, its inviter, or a
    /// host/admin of its room.
    pub async fn may_see_invitation(&self, invitation: &Invitation, user: UserId) -> Result<bool> {
        if invitation.invitee_id == user || invitation.inviter_id == user {
            return Ok(true);
        }
        Ok(matches!(self.role_in_room(&invitation.room_id, user).await?, Role::Host | Role::Admin))
    }
}
