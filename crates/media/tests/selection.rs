//! Selection rules of a Room: auto, choices, lock, fallbacks, rate limits, Program.

use std::time::{Duration, Instant};

use confcast_media::{
    Actor, Choice, LockTarget, ParticipantId, PublicationId, Role, Selection, SelectionError,
    SelectionEvent, SelectionMode,
};

const H: ParticipantId = ParticipantId(1);
const A: ParticipantId = ParticipantId(2);
const B: ParticipantId = ParticipantId(3);
const C: ParticipantId = ParticipantId(4);

fn video(p: ParticipantId) -> Option<PublicationId> {
    Some(PublicationId(p.0 * 100))
}

fn events(s: &mut Selection) -> Vec<SelectionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Host H, admin A, members B and C, all publishing video.
fn room() -> Selection {
    let mut s = Selection::default();
    s.join(H, Role::Host).expect("join");
    s.join(A, Role::Admin).expect("join");
    s.join(B, Role::Member).expect("join");
    s.join(C, Role::Member).expect("join");
    for p in [H, A, B, C] {
        s.publish_video(p, PublicationId(p.0 * 100))
            .expect("publish");
    }
    events(&mut s);
    s
}

#[test]
fn auto_follows_active_speaker_then_falls_back_to_host() {
    let mut s = room();
    // Nobody spoke yet: everyone sees the host, the host sees the first other joiner.
    assert_eq!(s.source_of(A), video(H));
    assert_eq!(s.source_of(B), video(H));
    assert_eq!(s.source_of(H), video(A));

    s.set_active_speaker(Some(B)).expect("speaker");
    assert_eq!(s.source_of(A), video(B));
    assert_eq!(s.source_of(C), video(B));
    assert_eq!(s.source_of(H), video(B));
    // The speaker themself sees no previous speaker yet: the host.
    assert_eq!(s.source_of(B), video(H));
    let ev = events(&mut s);
    assert!(ev.contains(&SelectionEvent::SubscriptionChanged {
        receiver: A,
        source: video(B)
    }));
    assert!(!ev.iter().any(
        |e| matches!(e, SelectionEvent::SubscriptionChanged { receiver, .. } if *receiver == B)
    ));

    s.set_active_speaker(Some(C)).expect("speaker");
    assert_eq!(s.source_of(A), video(C));
    // The new speaker sees the previous one.
    assert_eq!(s.source_of(C), video(B));

    // The active speaker leaves: back to the host.
    s.leave(C).expect("leave");
    assert_eq!(s.source_of(A), video(H));
    assert_eq!(s.source_of(B), video(H));

    // Silence reported by the mixer: back to the host as well.
    s.set_active_speaker(Some(B)).expect("speaker");
    assert_eq!(s.source_of(A), video(B));
    s.set_active_speaker(None).expect("speaker");
    assert_eq!(s.source_of(A), video(H));

    // A speaker without video is skipped.
    s.unpublish_video(B).expect("unpublish");
    s.set_active_speaker(Some(B)).expect("speaker");
    assert_eq!(s.source_of(A), video(H));
}

#[test]
fn own_video_only_when_nobody_else_publishes() {
    let mut s = Selection::default();
    s.join(H, Role::Host).expect("join");
    s.publish_video(H, PublicationId(100)).expect("publish");
    assert_eq!(s.source_of(H), video(H));
    s.join(B, Role::Member).expect("join");
    assert_eq!(s.source_of(B), video(H));
    assert_eq!(s.source_of(H), video(H), "B publishes nothing yet");
    s.publish_video(B, PublicationId(300)).expect("publish");
    assert_eq!(s.source_of(H), video(B));
    assert_eq!(
        s.watch(B, Choice::Participant(B), Instant::now()),
        Err(SelectionError::CannotWatchSelf)
    );
}

#[test]
fn own_choice_and_fallback_to_auto() {
    let t0 = Instant::now();
    let mut s = room();
    assert_eq!(s.mode_of(B), Some(SelectionMode::Auto));
    s.watch(B, Choice::Participant(C), t0).expect("watch");
    assert_eq!(s.source_of(B), video(C));
    assert_eq!(s.mode_of(B), Some(SelectionMode::Chosen));
    assert_eq!(
        events(&mut s),
        vec![SelectionEvent::SubscriptionChanged {
            receiver: B,
            source: video(C)
        }]
    );
    // Chosen participant turns the camera off: auto until it is back.
    s.unpublish_video(C).expect("unpublish");
    assert_eq!(s.source_of(B), video(H));
    assert_eq!(s.mode_of(B), Some(SelectionMode::Auto));
    s.publish_video(C, PublicationId(400)).expect("publish");
    assert_eq!(s.source_of(B), video(C));
    // Chosen participant reconnects: the choice survives.
    s.leave(C).expect("leave");
    assert_eq!(s.source_of(B), video(H));
    s.join(C, Role::Member).expect("join");
    s.publish_video(C, PublicationId(400)).expect("publish");
    assert_eq!(s.source_of(B), video(C));
    s.watch(B, Choice::Auto, t0).expect("watch");
    assert_eq!(s.source_of(B), video(H));
    assert_eq!(
        s.watch(B, Choice::Participant(ParticipantId(99)), t0),
        Err(SelectionError::UnknownParticipant(ParticipantId(99)))
    );
}

#[test]
fn lock_refuses_switches_and_designate_moves_everyone() {
    let t0 = Instant::now();
    let mut s = room();
    s.watch(B, Choice::Participant(C), t0).expect("watch");
    s.watch(C, Choice::Participant(A), t0).expect("watch");
    events(&mut s);

    assert_eq!(
        s.lock(Actor::Participant(B), C, t0),
        Err(SelectionError::NotPermitted)
    );
    assert_eq!(
        s.designate(Actor::Participant(H), C, t0),
        Err(SelectionError::NotLocked)
    );
    s.lock(Actor::Participant(H), A, t0).expect("host locks");
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        SelectionEvent::LockChanged {
            locked: true,
            designated: Some(A)
        }
    );
    for p in [H, B, C] {
        assert_eq!(s.source_of(p), video(A), "{p} follows the designated");
        assert_eq!(s.mode_of(p), Some(SelectionMode::Locked));
    }
    // The designated one does not see themself.
    assert_eq!(s.source_of(A), video(H));

    assert_eq!(
        s.watch(B, Choice::Participant(C), t0),
        Err(SelectionError::Locked {
            target: LockTarget::Designated(A)
        })
    );
    assert_eq!(
        s.watch(H, Choice::Auto, t0),
        Err(SelectionError::Locked {
            target: LockTarget::Designated(A)
        })
    );

    // An admin re-designates while locked: everyone moves.
    s.designate(Actor::Participant(A), C, t0)
        .expect("admin designates");
    for p in [H, A, B] {
        assert_eq!(s.source_of(p), video(C));
    }
    // The host designates themself: the Program shows the host.
    s.designate(Actor::Participant(H), H, t0)
        .expect("designate");
    assert_eq!(s.program(), video(H));
    assert_eq!(s.source_of(B), video(H));

    // Unlock restores each own choice.
    s.unlock(Actor::Operator, t0).expect("unlock");
    assert_eq!(s.source_of(B), video(C));
    assert_eq!(s.source_of(C), video(A));
    assert!(!s.is_locked());
    assert_eq!(
        s.unlock(Actor::Operator, t0),
        Err(SelectionError::NotLocked)
    );
}

#[test]
fn designated_leaves_then_host_leaves() {
    let t0 = Instant::now();
    let mut s = room();
    s.lock(Actor::Participant(H), B, t0).expect("lock");
    events(&mut s);

    s.leave(B).expect("leave");
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        SelectionEvent::DesignatedLeft {
            participant: B,
            fallback: LockTarget::Host(H)
        }
    );
    assert_eq!(s.source_of(A), video(H));
    assert_eq!(s.source_of(C), video(H));
    assert_eq!(s.program(), video(H));
    assert_eq!(s.lock_target(), Some(LockTarget::Host(H)));

    // Host leaves too: the room (still locked) follows the active speaker.
    s.set_active_speaker(Some(C)).expect("speaker");
    events(&mut s);
    s.leave(H).expect("leave");
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        SelectionEvent::LockTargetChanged {
            target: LockTarget::ActiveSpeaker
        }
    );
    assert_eq!(s.source_of(A), video(C));
    assert_eq!(s.program(), video(C));
    assert_eq!(
        s.watch(A, Choice::Auto, t0),
        Err(SelectionError::Locked {
            target: LockTarget::ActiveSpeaker
        })
    );

    // The host reconnects: the lock follows them again.
    s.join(H, Role::Host).expect("join");
    s.publish_video(H, PublicationId(100)).expect("publish");
    let ev = events(&mut s);
    assert!(ev.contains(&SelectionEvent::LockTargetChanged {
        target: LockTarget::Host(H)
    }));
    assert_eq!(s.source_of(A), video(H));
    // An admin can still unlock.
    s.unlock(Actor::Participant(A), t0).expect("unlock");
}

#[test]
fn rate_limits_switch_floods() {
    let t0 = Instant::now();
    let mut s = room();
    let mut ok = 0;
    let mut limited = None;
    for i in 0..50 {
        let target = if i % 2 == 0 { C } else { A };
        match s.watch(B, Choice::Participant(target), t0) {
            Ok(()) => ok += 1,
            Err(SelectionError::RateLimited { retry_after }) => {
                limited.get_or_insert(retry_after);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 5, "burst of 5");
    let retry = limited.expect("flood was limited");
    assert_eq!(retry, Duration::from_millis(500));
    // Others are not affected.
    s.watch(C, Choice::Participant(A), t0).expect("own bucket");
    assert!(s.watch(B, Choice::Auto, t0 + retry).is_ok());
    assert!(s.watch(B, Choice::Auto, t0 + retry).is_err());
    // The operator is never limited.
    for _ in 0..20 {
        s.lock(Actor::Operator, C, t0).expect("operator");
    }
}

#[test]
fn program_follows_host_selection() {
    let t0 = Instant::now();
    let mut s = room();
    assert_eq!(s.program(), video(H));
    s.set_active_speaker(Some(H)).expect("speaker");
    // The host speaks: the host's own view excludes themself, the Program does not.
    assert_eq!(s.program(), video(H));
    assert_ne!(s.source_of(H), video(H));
    s.set_active_speaker(Some(B)).expect("speaker");
    assert_eq!(s.program(), video(B));
    s.watch(H, Choice::Participant(C), t0).expect("watch");
    assert_eq!(s.program(), video(C));
    assert_eq!(s.source_of(H), video(C));
    assert!(events(&mut s).contains(&SelectionEvent::ProgramChanged { source: video(C) }));
    s.lock(Actor::Participant(A), A, t0).expect("lock");
    assert_eq!(s.program(), video(A));
    // No host at all, unlocked: the Program follows the active speaker.
    s.unlock(Actor::Operator, t0).expect("unlock");
    s.leave(H).expect("leave");
    assert_eq!(s.program(), video(B));
}

#[test]
fn membership_errors() {
    let mut s = room();
    assert_eq!(
        s.join(B, Role::Member),
        Err(SelectionError::AlreadyJoined(B))
    );
    assert_eq!(
        s.join(ParticipantId(50), Role::Host),
        Err(SelectionError::HostAlreadyPresent { host: H })
    );
    assert_eq!(
        s.set_role(B, Role::Host),
        Err(SelectionError::HostAlreadyPresent { host: H })
    );
    s.set_role(H, Role::Member).expect("demote");
    s.set_role(B, Role::Host).expect("promote");
    assert_eq!(s.host(), Some(B));
    assert_eq!(
        s.leave(ParticipantId(50)),
        Err(SelectionError::UnknownParticipant(ParticipantId(50)))
    );
    assert_eq!(
        s.set_active_speaker(Some(ParticipantId(50))),
        Err(SelectionError::UnknownParticipant(ParticipantId(50)))
    );
    assert_eq!(s.publisher_of(PublicationId(300)), Some(B));
}
