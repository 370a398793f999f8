//! Who sees whom: the Room's selection rules, as pure state.
//!
//! Every Participant receives one video. Which one is decided here, from
//! the Participants' roles, choices, Publications, the lock and the active
//! speaker; the I/O shell applies the resulting [`SelectionEvent`]s to the
//! per-receiver [`crate::switch::Switcher`]s. The rules (also in
//! `docs/forwarding.md`):
//!
//! 1. Locked (by the host or an admin, with a designated Participant): every
//!    receiver follows the lock target, i.e. the designated Participant, or
//!    the host if the designated one left, or, if the host is gone too, the
//!    active speaker. Own choices are refused with [`SelectionError::Locked`].
//! 2. Unlocked: a receiver's own choice (a Participant) if that Participant
//!    is present and publishes video; otherwise *auto*.
//! 3. Auto: the active speaker; for the active speaker themself the most
//!    recent previous speaker; then the host; then whoever joined first.
//! 4. Nobody receives their own video, unless nobody else publishes any
//!    (then they get their own, so the single video slot is not black).
//! 5. The Program follows the host's selection (the lock target, else the
//!    host's choice, else auto) but, unlike the host's own Subscription, it
//!    may show the host.
//!
//! A choice for a Participant who leaves is kept, so it applies again when
//! they reconnect; meanwhile the receiver falls back to auto.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::{ParticipantId, PublicationId};
use crate::ratelimit::TokenBucket;

/// A Participant's role in the Room, as decided by the authentication layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Owns the Room; at most one at a time. Their selection drives the Program.
    Host,
    /// May lock, unlock and designate like the host.
    Admin,
    Member,
}

/// Who performs a privileged action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A Participant of the Room; their role is looked up.
    Participant(ParticipantId),
    /// A server administrator acting from outside the Room (always allowed,
    /// never rate limited).
    Operator,
}

/// What a Participant asked to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Participant(ParticipantId),
}

/// Why a receiver sees what it sees (the `mode` of the signalling `selection` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionMode {
    /// Active speaker / host fallback.
    Auto,
    /// The receiver's own choice.
    Chosen,
    /// The Room is locked.
    Locked,
}

/// Whom a locked Room follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockTarget {
    Designated(ParticipantId),
    /// The designated Participant left; the host stands in.
    Host(ParticipantId),
    /// Neither the designated Participant nor the host is present.
    ActiveSpeaker,
}

/// Why a selection request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionError {
    UnknownParticipant(ParticipantId),
    AlreadyJoined(ParticipantId),
    HostAlreadyPresent {
        host: ParticipantId,
    },
    /// The actor is neither host nor admin.
    NotPermitted,
    /// The Room is locked; own choices are refused until it is unlocked.
    Locked {
        target: LockTarget,
    },
    NotLocked,
    /// A Participant cannot choose to watch themself.
    CannotWatchSelf,
    /// Too many requests; try again after `retry_after`.
    RateLimited {
        retry_after: Duration,
    },
}

impl std::fmt::Display for SelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectionError::UnknownParticipant(p) => write!(f, "{p} is not in the room"),
            SelectionError::AlreadyJoined(p) => write!(f, "{p} already joined"),
            SelectionError::HostAlreadyPresent { host } => write!(f, "{host} is already host"),
            SelectionError::NotPermitted => write!(f, "only the host or an admin may do this"),
            SelectionError::Locked { .. } => write!(f, "the room is locked"),
            SelectionError::NotLocked => write!(f, "the room is not locked"),
            SelectionError::CannotWatchSelf => write!(f, "cannot watch yourself"),
            SelectionError::RateLimited { retry_after } => {
                write!(
                    f,
                    "too many requests, retry in {} ms",
                    retry_after.as_millis()
                )
            }
        }
    }
}

impl std::error::Error for SelectionError {}

/// Changes the I/O shell must act on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionEvent {
    /// `receiver` should now see `source` (switch its Subscription).
    SubscriptionChanged {
        receiver: ParticipantId,
        source: Option<PublicationId>,
    },
    /// The Program should now show `source`.
    ProgramChanged { source: Option<PublicationId> },
    /// The Room was locked, re-designated, or unlocked.
    LockChanged {
        locked: bool,
        designated: Option<ParticipantId>,
    },
    /// The designated Participant left a locked Room; everyone follows `fallback`.
    DesignatedLeft {
        participant: ParticipantId,
        fallback: LockTarget,
    },
    /// The lock target changed because the host left or (re)joined.
    LockTargetChanged { target: LockTarget },
}

/// Tunables of a [`Selection`].
#[derive(Debug, Clone, Copy)]
pub struct SelectionConfig {
    /// Requests a Participant may make in a burst...
    pub request_burst: u32,
    /// ...and how often one more is allowed after that.
    pub request_interval: Duration,
    /// How many previous speakers are remembered for the active speaker's own view.
    pub speaker_history: usize,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        Self {
            request_burst: 5,
            request_interval: Duration::from_millis(500),
            speaker_history: 8,
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    role: Role,
    choice: Choice,
    video: Option<PublicationId>,
    joined: u64,
    bucket: TokenBucket,
    source: Option<PublicationId>,
}

#[derive(Debug, Clone, Copy)]
struct Lock {
    /// `None` once the designated Participant left.
    designated: Option<ParticipantId>,
}

/// The selection state of one Room.
#[derive(Debug, Clone)]
pub struct Selection {
    config: SelectionConfig,
    members: BTreeMap<ParticipantId, Member>,
    joins: u64,
    lock: Option<Lock>,
    active_speaker: Option<ParticipantId>,
    speakers: VecDeque<ParticipantId>,
    program: Option<PublicationId>,
    events: VecDeque<SelectionEvent>,
}

impl Default for Selection {
    fn default() -> Self {
        Self::new(SelectionConfig::default())
    }
}

impl Selection {
    pub fn new(config: SelectionConfig) -> Self {
        Self {
            config,
            members: BTreeMap::new(),
            joins: 0,
            lock: None,
            active_speaker: None,
            speakers: VecDeque::new(),
            program: None,
            events: VecDeque::new(),
        }
    }

    // ----- queries -----

    /// The host, if present.
    pub fn host(&self) -> Option<ParticipantId> {
        self.members
            .iter()
            .find(|(_, m)| m.role == Role::Host)
            .map(|(id, _)| *id)
    }

    pub fn role(&self, participant: ParticipantId) -> Option<Role> {
        self.members.get(&participant).map(|m| m.role)
    }

    pub fn choice(&self, participant: ParticipantId) -> Option<Choice> {
        self.members.get(&participant).map(|m| m.choice)
    }

    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.keys().copied()
    }

    pub fn video_of(&self, participant: ParticipantId) -> Option<PublicationId> {
        self.members.get(&participant).and_then(|m| m.video)
    }

    /// The Participant publishing `publication`.
    pub fn publisher_of(&self, publication: PublicationId) -> Option<ParticipantId> {
        self.members
            .iter()
            .find(|(_, m)| m.video == Some(publication))
            .map(|(id, _)| *id)
    }

    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Whom the Room follows while locked; `None` when unlocked.
    pub fn lock_target(&self) -> Option<LockTarget> {
        self.lock.map(|l| self.target_of(l))
    }

    pub fn active_speaker(&self) -> Option<ParticipantId> {
        self.active_speaker
    }

    /// The video `receiver` should currently see.
    pub fn source_of(&self, receiver: ParticipantId) -> Option<PublicationId> {
        self.members.get(&receiver).and_then(|m| m.source)
    }

    /// Why `receiver` sees its current source.
    pub fn mode_of(&self, receiver: ParticipantId) -> Option<SelectionMode> {
        let m = self.members.get(&receiver)?;
        if self.lock.is_some() {
            return Some(SelectionMode::Locked);
        }
        Some(match m.choice {
            Choice::Participant(p)
                if m.source.is_some() && m.source == self.visible(p, Some(receiver)) =>
            {
                SelectionMode::Chosen
            }
            _ => SelectionMode::Auto,
        })
    }

    /// The video the Program should currently show.
    pub fn program(&self) -> Option<PublicationId> {
        self.program
    }

    /// Next change to act on.
    pub fn poll_event(&mut self) -> Option<SelectionEvent> {
        self.events.pop_front()
    }

    // ----- membership -----

    pub fn join(&mut self, participant: ParticipantId, role: Role) -> Result<(), SelectionError> {
        if self.members.contains_key(&participant) {
            return Err(SelectionError::AlreadyJoined(participant));
        }
        if role == Role::Host
            && let Some(host) = self.host()
        {
            return Err(SelectionError::HostAlreadyPresent { host });
        }
        let before = self.lock_target();
        self.joins += 1;
        self.members.insert(
            participant,
            Member {
                role,
                choice: Choice::Auto,
                video: None,
                joined: self.joins,
                bucket: TokenBucket::new(self.config.request_burst, self.config.request_interval),
                source: None,
            },
        );
        self.note_lock_target_change(before);
        self.recompute();
        Ok(())
    }

    pub fn leave(&mut self, participant: ParticipantId) -> Result<(), SelectionError> {
        if !self.members.contains_key(&participant) {
            return Err(SelectionError::UnknownParticipant(participant));
        }
        let before = self.lock_target();
        self.members.remove(&participant);
        if self.active_speaker == Some(participant) {
            self.active_speaker = None;
        }
        self.speakers.retain(|p| *p != participant);
        let mut designated_left = false;
        if let Some(lock) = self.lock.as_mut()
            && lock.designated == Some(participant)
        {
            lock.designated = None;
            designated_left = true;
        }
        if designated_left {
            let fallback = self.lock_target().unwrap_or(LockTarget::ActiveSpeaker);
            self.events.push_back(SelectionEvent::DesignatedLeft {
                participant,
                fallback,
            });
        } else {
            self.note_lock_target_change(before);
        }
        self.recompute();
        Ok(())
    }

    /// Changes a Participant's role (decided by the authentication layer).
    pub fn set_role(
        &mut self,
        participant: ParticipantId,
        role: Role,
    ) -> Result<(), SelectionError> {
        if !self.members.contains_key(&participant) {
            return Err(SelectionError::UnknownParticipant(participant));
        }
        if role == Role::Host
            && let Some(host) = self.host().filter(|h| *h != participant)
        {
            return Err(SelectionError::HostAlreadyPresent { host });
        }
        let before = self.lock_target();
        if let Some(m) = self.members.get_mut(&participant) {
            m.role = role;
        }
        self.note_lock_target_change(before);
        self.recompute();
        Ok(())
    }

    /// The Participant now publishes camera video as `publication` (replacing any previous one).
    pub fn publish_video(
        &mut self,
        participant: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), SelectionError> {
        let m = self
            .members
            .get_mut(&participant)
            .ok_or(SelectionError::UnknownParticipant(participant))?;
        m.video = Some(publication);
        self.recompute();
        Ok(())
    }

    pub fn unpublish_video(&mut self, participant: ParticipantId) -> Result<(), SelectionError> {
        let m = self
            .members
            .get_mut(&participant)
            .ok_or(SelectionError::UnknownParticipant(participant))?;
        m.video = None;
        self.recompute();
        Ok(())
    }

    // ----- requests -----

    /// A Participant's own choice of what to watch; refused while locked.
    pub fn watch(
        &mut self,
        participant: ParticipantId,
        choice: Choice,
        now: Instant,
    ) -> Result<(), SelectionError> {
        if !self.members.contains_key(&participant) {
            return Err(SelectionError::UnknownParticipant(participant));
        }
        if let Some(target) = self.lock_target() {
            return Err(SelectionError::Locked { target });
        }
        match choice {
            Choice::Participant(p) if p == participant => {
                return Err(SelectionError::CannotWatchSelf);
            }
            Choice::Participant(p) if !self.members.contains_key(&p) => {
                return Err(SelectionError::UnknownParticipant(p));
            }
            _ => {}
        }
        self.take_token(Actor::Participant(participant), now)?;
        if let Some(m) = self.members.get_mut(&participant) {
            m.choice = choice;
        }
        self.recompute();
        Ok(())
    }

    /// Locks the Room on `designated`: everyone follows them.
    pub fn lock(
        &mut self,
        actor: Actor,
        designated: ParticipantId,
        now: Instant,
    ) -> Result<(), SelectionError> {
        self.check_privileged(actor)?;
        if !self.members.contains_key(&designated) {
            return Err(SelectionError::UnknownParticipant(designated));
        }
        self.take_token(actor, now)?;
        self.lock = Some(Lock {
            designated: Some(designated),
        });
        self.events.push_back(SelectionEvent::LockChanged {
            locked: true,
            designated: Some(designated),
        });
        self.recompute();
        Ok(())
    }

    /// Changes the designated Participant of a locked Room.
    pub fn designate(
        &mut self,
        actor: Actor,
        designated: ParticipantId,
        now: Instant,
    ) -> Result<(), SelectionError> {
        self.check_privileged(actor)?;
        if self.lock.is_none() {
            return Err(SelectionError::NotLocked);
        }
        self.lock(actor, designated, now)
    }

    /// Unlocks the Room: everyone's own choice applies again.
    pub fn unlock(&mut self, actor: Actor, now: Instant) -> Result<(), SelectionError> {
        self.check_privileged(actor)?;
        if self.lock.is_none() {
            return Err(SelectionError::NotLocked);
        }
        self.take_token(actor, now)?;
        self.lock = None;
        self.events.push_back(SelectionEvent::LockChanged {
            locked: false,
            designated: None,
        });
        self.recompute();
        Ok(())
    }

    /// Input from the audio mixer: the dominant speaker changed.
    pub fn set_active_speaker(
        &mut self,
        speaker: Option<ParticipantId>,
    ) -> Result<(), SelectionError> {
        if let Some(s) = speaker {
            if !self.members.contains_key(&s) {
                return Err(SelectionError::UnknownParticipant(s));
            }
            self.speakers.retain(|p| *p != s);
            self.speakers.push_front(s);
            self.speakers.truncate(self.config.speaker_history.max(1));
        }
        self.active_speaker = speaker;
        self.recompute();
        Ok(())
    }

    // ----- internals -----

    fn check_privileged(&self, actor: Actor) -> Result<(), SelectionError> {
        match actor {
            Actor::Operator => Ok(()),
            Actor::Participant(p) => match self.role(p) {
                None => Err(SelectionError::UnknownParticipant(p)),
                Some(Role::Host | Role::Admin) => Ok(()),
                Some(Role::Member) => Err(SelectionError::NotPermitted),
            },
        }
    }

    fn take_token(&mut self, actor: Actor, now: Instant) -> Result<(), SelectionError> {
        let Actor::Participant(p) = actor else {
            return Ok(());
        };
        let m = self
            .members
            .get_mut(&p)
            .ok_or(SelectionError::UnknownParticipant(p))?;
        m.bucket
            .try_take(now)
            .map_err(|e| SelectionError::RateLimited {
                retry_after: e.retry_after,
            })
    }

    fn target_of(&self, lock: Lock) -> LockTarget {
        match (lock.designated, self.host()) {
            (Some(d), _) => LockTarget::Designated(d),
            (None, Some(h)) => LockTarget::Host(h),
            (None, None) => LockTarget::ActiveSpeaker,
        }
    }

    fn note_lock_target_change(&mut self, before: Option<LockTarget>) {
        let after = self.lock_target();
        if let Some(target) = after
            && before != after
        {
            self.events
                .push_back(SelectionEvent::LockTargetChanged { target });
        }
    }

    fn lock_participant(&self) -> Option<ParticipantId> {
        match self.lock_target()? {
            LockTarget::Designated(p) | LockTarget::Host(p) => Some(p),
            LockTarget::ActiveSpeaker => None,
        }
    }

    /// Video of `p` if present and publishing, and not `viewer` themself.
    fn visible(&self, p: ParticipantId, viewer: Option<ParticipantId>) -> Option<PublicationId> {
        if viewer == Some(p) {
            return None;
        }
        self.video_of(p)
    }

    /// The auto rule for `viewer` (`None`: the Program, which may show anyone).
    fn auto_source(&self, viewer: Option<ParticipantId>) -> Option<PublicationId> {
        if let Some(a) = self.active_speaker {
            if let Some(v) = self.visible(a, viewer) {
                return Some(v);
            }
            if viewer == Some(a)
                && let Some(v) = self.speakers.iter().find_map(|p| self.visible(*p, viewer))
            {
                return Some(v);
            }
        }
        if let Some(v) = self.host().and_then(|h| self.visible(h, viewer)) {
            return Some(v);
        }
        let mut others: Vec<_> = self
            .members
            .iter()
            .filter(|(id, m)| Some(**id) != viewer && m.video.is_some())
            .collect();
        others.sort_by_key(|(_, m)| m.joined);
        if let Some((_, m)) = others.first() {
            return m.video;
        }
        // Nobody else publishes: the viewer's own video rather than nothing.
        viewer.and_then(|v| self.video_of(v))
    }

    fn resolve(&self, receiver: ParticipantId) -> Option<PublicationId> {
        if self.lock.is_some() {
            if let Some(v) = self
                .lock_participant()
                .and_then(|p| self.visible(p, Some(receiver)))
            {
                return Some(v);
            }
            return self.auto_source(Some(receiver));
        }
        if let Some(Choice::Participant(p)) = self.choice(receiver)
            && let Some(v) = self.visible(p, Some(receiver))
        {
            return Some(v);
        }
        self.auto_source(Some(receiver))
    }

    fn resolve_program(&self) -> Option<PublicationId> {
        if self.lock.is_some() {
            if let Some(v) = self.lock_participant().and_then(|p| self.video_of(p)) {
                return Some(v);
            }
            return self.auto_source(None);
        }
        if let Some(host) = self.host()
            && let Some(Choice::Participant(p)) = self.choice(host)
            && let Some(v) = self.video_of(p)
        {
            return Some(v);
        }
        self.auto_source(None)
    }

    fn recompute(&mut self) {
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        for id in ids {
            let source = self.resolve(id);
            if let Some(m) = self.members.get_mut(&id)
                && m.source != source
            {
                m.source = source;
                self.events.push_back(SelectionEvent::SubscriptionChanged {
                    receiver: id,
                    source,
                });
            }
        }
        let program = self.resolve_program();
        if program != self.program {
            self.program = program;
            self.events
                .push_back(SelectionEvent::ProgramChanged { source: program });
        }
    }
}
