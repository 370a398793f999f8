//! The store against a real SQLite file.

use confcast_store::{InvitationStatus, Role, Store, StoreError};

const NOW: i64 = 1_800_000_000;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("confcast.sqlite")).await.expect("open store");
    (store, dir)
}

#[tokio::test]
async fn registration_creates_a_personal_room_hosted_by_the_user() {
    let (store, _dir) = store().await;
    let (alice, room) = store.register("alice", "Alice", "hash", NOW).await.expect("register");
    assert!(room.personal);
    assert_eq!(room.role, Role::Host);
    assert_eq!(room.host.username, "alice");
    assert_eq!(store.rooms_of(alice.id).await.expect("rooms"), vec![room.clone()]);
    assert!(matches!(store.register("alice", "Other", "hash", NOW).await, Err(StoreError::UsernameTaken)));
    assert!(matches!(store.delete_room(&room.id).await, Err(StoreError::PersonalRoom)));
}

#[tokio::test]
async fn invitation_accept_makes_a_member_and_cannot_be_answered_twice() {
    let (store, _dir) = store().await;
    let (alice, room) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
    let (bob, _) = store.register("bob", "Bob", "h", NOW).await.expect("bob");
    let (carol, _) = store.register("carol", "Carol", "h", NOW).await.expect("carol");

    let invitation = store.invite(&room.id, alice.id, bob.id, NOW).await.expect("invite");
    assert_eq!(invitation.status, InvitationStatus::Pending);
    assert!(matches!(store.invite(&room.id, alice.id, bob.id, NOW).await, Err(StoreError::AlreadyInvited)));
    assert_eq!(store.pending_invitations(bob.id).await.expect("pending").len(), 1);

    // Only the invitee can answer.
    assert!(matches!(
        store.answer_invitation(&invitation.id, carol.id, true, NOW).await,
        Err(StoreError::NotFound(_))
    ));
    let (answered, summary) = store.answer_invitation(&invitation.id, bob.id, true, NOW + 1).await.expect("accept");
    assert_eq!(answered.status, InvitationStatus::Accepted);
    assert_eq!(summary.expect("room").role, Role::Member);
    assert_eq!(store.role_in_room(&room.id, bob.id).await.expect("role"), Role::Member);
    assert!(matches!(
        store.answer_invitation(&invitation.id, bob.id, false, NOW).await,
        Err(StoreError::NotPending)
    ));
    assert!(matches!(store.invite(&room.id, alice.id, bob.id, NOW).await, Err(StoreError::AlreadyMember)));
    assert!(store.pending_invitations(bob.id).await.expect("pending").is_empty());
}

#[tokio::test]
async fn members_roles_and_removal() {
    let (store, _dir) = store().await;
    let (alice, _) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
    let (bob, _) = store.register("bob", "Bob", "h", NOW).await.expect("bob");
    let room = store.create_room(alice.id, "Studio", NOW).await.expect("room");
    assert!(!room.personal);
    assert_eq!(store.role_in_room(&room.id, bob.id).await.expect("role"), Role::Stranger);
    assert!(store.add_member(&room.id, bob.id, NOW).await.expect("add"));
    assert!(!store.add_member(&room.id, bob.id, NOW).await.expect("add again"));
    store.set_member_role(&room.id, bob.id, Role::Admin).await.expect("promote");
    assert_eq!(store.role_in_room(&room.id, bob.id).await.expect("role"), Role::Admin);
    assert!(matches!(store.set_member_role(&room.id, alice.id, Role::Member).await, Err(StoreError::HostRoleFixed)));
    assert!(matches!(store.remove_member(&room.id, alice.id).await, Err(StoreError::HostIsPermanent)));
    store.remove_member(&room.id, bob.id).await.expect("remove");
    assert_eq!(store.role_in_room(&room.id, bob.id).await.expect("role"), Role::Stranger);
    assert!(matches!(store.role_in_room("nope", bob.id).await, Err(StoreError::NotFound(_))));
    store.delete_room(&room.id).await.expect("delete");
    assert!(matches!(store.room(&room.id).await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn invite_links_expire() {
    let (store, _dir) = store().await;
    let (alice, room) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
    let (bob, _) = store.register("bob", "Bob", "h", NOW).await.expect("bob");
    let link = store.create_invite_link(&room.id, alice.id, NOW, 60).await.expect("link");
    assert!(matches!(store.accept_invite_link(&link.token, bob.id, NOW + 60).await, Err(StoreError::Expired)));
    let (summary, added) = store.accept_invite_link(&link.token, bob.id, NOW + 59).await.expect("accept");
    assert!(added);
    assert_eq!(summary.id, room.id);
    assert!(matches!(store.accept_invite_link("forged", bob.id, NOW).await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn search_is_by_prefix_and_treats_wildcards_literally() {
    let (store, _dir) = store().await;
    for (name, display) in [("anna", "Zoë"), ("annabel", "Bel"), ("bob", "Annie"), ("a_b", "x"), ("axb", "y")] {
        store.register(name, display, "h", NOW).await.expect("register");
    }
    let names = |v: Vec<confcast_store::UserRef>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(names(store.search_users("ann", 10, 0).await.expect("search")), ["anna", "annabel", "bob"]);
    assert_eq!(names(store.search_users("ANN", 2, 0).await.expect("search")), ["anna", "annabel"]);
    assert_eq!(names(store.search_users("ann", 2, 2).await.expect("search")), ["bob"]);
    assert_eq!(names(store.search_users("a_", 10, 0).await.expect("search")), ["a_b"]);
    assert_eq!(names(store.search_users("%", 10, 0).await.expect("search")), Vec::<String>::new());
    assert_eq!(names(store.search_users("Zoë", 10, 0).await.expect("search")), ["anna"]);
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("confcast.sqlite");
    let (token, room_id, invitation_id) = {
        let store = Store::open(&path).await.expect("open");
        let (alice, room) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
        let (bob, _) = store.register("bob", "Bob", "h", NOW).await.expect("bob");
        let session = store.create_session(alice.id, NOW, 3600).await.expect("session");
        let invitation = store.invite(&room.id, alice.id, bob.id, NOW).await.expect("invite");
        store.close().await;
        (session.token, room.id, invitation.id)
    };
    let store = Store::open(&path).await.expect("reopen");
    let alice = store.session_user(&token, NOW + 1).await.expect("lookup").expect("session kept");
    assert_eq!(alice.username, "alice");
    assert!(store.session_user(&token, NOW + 3600).await.expect("lookup").is_none(), "expired");
    assert_eq!(store.room(&room_id).await.expect("room").members.len(), 1);
    assert_eq!(store.invitation(&invitation_id).await.expect("invitation").status, InvitationStatus::Pending);
    store.delete_session(&token).await.expect("logout");
    assert!(store.session_user(&token, NOW + 1).await.expect("lookup").is_none());
}

#[tokio::test]
async fn one_live_broadcast_per_room_and_stale_ones_end_on_restart() {
    let (store, _dir) = store().await;
    let (alice, room) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
    let live = store.start_broadcast(&room.id, "Morning show", "", alice.id, NOW).await.expect("start");
    assert_eq!(live.host.username, "alice");
    assert_eq!(live.ended_at, None);
    assert!(matches!(store.start_broadcast(&room.id, "Again", "", alice.id, NOW).await, Err(StoreError::AlreadyLive)));
    assert_eq!(store.live_broadcasts().await.expect("live").len(), 1);
    assert_eq!(store.live_broadcast(&room.id).await.expect("live").map(|b| b.id), Some(live.id.clone()));
    let ended = store.end_broadcast(&room.id, NOW + 60).await.expect("end");
    assert_eq!(ended.ended_at, Some(NOW + 60));
    assert!(matches!(store.end_broadcast(&room.id, NOW + 61).await, Err(StoreError::NotFound(_))));
    assert!(store.live_broadcasts().await.expect("live").is_empty());

    store.start_broadcast(&room.id, "Evening show", "", alice.id, NOW + 100).await.expect("start again");
    assert_eq!(store.end_stale_broadcasts(NOW + 200).await.expect("end stale"), 1);
    assert!(store.live_broadcast(&room.id).await.expect("live").is_none());
}

#[tokio::test]
async fn recordings_follow_their_broadcast_from_recording_to_ready_or_failed() {
    use confcast_store::RecordingState;
    let (store, _dir) = store().await;
    let (alice, room) = store.register("alice", "Alice", "h", NOW).await.expect("alice");
    let first = store.start_broadcast(&room.id, "First", "", alice.id, NOW).await.expect("start");
    let recording = store.start_recording(&first.id, NOW).await.expect("record");
    assert_eq!(recording.state, RecordingState::Recording);
    assert_eq!(recording.storage_key, first.id);
    assert_eq!(recording.broadcast.title, "First");
    store.recording_progress(&first.id, 10_000, 1_000_000).await.expect("progress");
    store.recording_error(&first.id, "disk full").await.expect("error");
    // Still on air: not unfinished business for a restart.
    assert!(store.unfinished_recordings().await.expect("unfinished").is_empty());
    store.end_broadcast(&room.id, NOW + 20).await.expect("end");
    let unfinished = store.unfinished_recordings().await.expect("unfinished");
    assert_eq!(unfinished.len(), 1);
    assert_eq!((unfinished[0].duration_ms, unfinished[0].bytes), (10_000, 1_000_000));
    assert_eq!(unfinished[0].error.as_deref(), Some("disk full"));
    assert!(store.recent_recordings(10, 0).await.expect("recent").is_empty(), "only ready ones are public");

    store.finish_recording(&first.id, RecordingState::Ready, 19_500, 2_000_000, NOW + 21).await.expect("finish");
    // Progress after the end changes nothing.
    store.recording_progress(&first.id, 1, 1).await.expect("late progress");
    let ready = store.recording(&first.id).await.expect("ready");
    assert_eq!((ready.state, ready.duration_ms, ready.bytes, ready.finished_at), (RecordingState::Ready, 19_500, 2_000_000, Some(NOW + 21)));

    let second = store.start_broadcast(&room.id, "Second", "", alice.id, NOW + 100).await.expect("start");
    store.start_recording(&second.id, NOW + 100).await.expect("record");
    store.end_broadcast(&room.id, NOW + 110).await.expect("end");
    store.finish_recording(&second.id, RecordingState::Failed, 0, 0, NOW + 111).await.expect("finish");
    let listed: Vec<String> = store.room_recordings(&room.id).await.expect("room").into_iter().map(|r| r.broadcast.title).collect();
    assert_eq!(listed, ["Second", "First"]);
    assert_eq!(store.recent_recordings(10, 0).await.expect("recent").len(), 1);
    assert_eq!(store.finished_recordings().await.expect("finished").len(), 2);
    assert_eq!(store.recording_keys().await.expect("keys").len(), 2);

    store.delete_recording(&first.id).await.expect("delete");
    assert!(matches!(store.recording(&first.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_recording(&first.id).await, Err(StoreError::NotFound(_))));
    // Deleting the room takes its broadcasts and their recordings along.
    let studio = store.create_room(alice.id, "Studio", NOW).await.expect("room");
    let third = store.start_broadcast(&studio.id, "Third", "", alice.id, NOW + 200).await.expect("start");
    store.start_recording(&third.id, NOW + 200).await.expect("record");
    store.delete_room(&studio.id).await.expect("delete room");
    assert!(matches!(store.recording(&third.id).await, Err(StoreError::NotFound(_))));
}
