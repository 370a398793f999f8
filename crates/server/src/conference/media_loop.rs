//! The media loop: one task owns the UDP socket and every live Room, feeds
//! them datagrams, commands and time, and carries their outputs to the
//! network and to the participants' WebSockets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confcast_media::fanout::{Fanout, FanoutError, FanoutEvent, ViewerId};
use confcast_media::room::{Room, RoomError, RoomEvent};
use confcast_media::selection::SelectionMode;
use confcast_media::{
    Actor, Choice, ParticipantId, PublicationId, Receiver, RouterConfig, RouterError, SelectionError, SelectionEvent,
};
use confcast_mixer::MixerConfig;
use confcast_policy::{allows, Action, Role};
use tokio::net::UdpSocket;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::protocol::{ClientMessage, ProtocolError, RosterEntry, ServerMessage, VERSION};
use super::udp_batch::{BatchReceiver, BatchSender, BATCH};
use super::ice_tcp::{self, IceTcp};
use confcast_media::room::Transport;
use super::{
    Command, Conference, Joined, LockError, LockState, MediaConfig, Member, Outgoing, ProgramFeed, WhepError, WhepSession,
    COMMAND_QUEUE,
};

/// Above this many remembered peer addresses the index is rebuilt lazily.
const MAX_ADDRESSES: usize = 100_000;
/// Socket buffers asked for. The kernel's default receive buffer (about
/// 200 KiB) overflows in bursts at a few hundred participants; the kernel
/// caps the request at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 8 << 20;
/// Receive batches read per wake-up before timers and commands get a turn.
const BATCHES_PER_WAKE: usize = 4;
/// WebRTC (WHEP) viewers one Program may have on this node.
const MAX_WHEP_VIEWERS: usize = 2_000;

#[path = "program_link.rs"]
mod program_link;
#[path = "media_stats.rs"]
mod media_stats;

/// Binds the media socket and starts the loop on its own thread.
///
/// The loop gets a thread (and a single-threaded runtime) of its own rather
/// than a task among the HTTP server's: it is busy in short bursts many
/// hundred times a second, and on the shared work-stealing runtime every
/// burst also woke idle worker threads (measured: a tenth of its CPU went to
/// task switches).
pub async fn start(config: MediaConfig) -> std::io::Result<Conference> {
    let socket = bind_socket(config.bind)?;
    let bound = socket.local_addr()?;
    let advertised = SocketAddr::new(config.public_ip.unwrap_or(bound.ip()), bound.port());
    // ICE-TCP: a passive TCP candidate beside the UDP one (see ice_tcp.rs).
    let tcp_listener = config.ice_tcp.map(ice_tcp::bind).transpose()?;
    let advertised_tcp = match &tcp_listener {
        Some(listener) => Some(SocketAddr::new(advertised.ip(), listener.local_addr()?.port())),
        None => None,
    };
    let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
    let ice_timeout = config.ice_timeout;
    let state = move |socket: UdpSocket, tcp| Loop {
        sender: BatchSender::new(&socket),
        socket,
        tcp,
        advertised_tcp,
        advertised,
        ice_timeout,
        rooms: HashMap::new(),
        programs: HashMap::new(),
        by_address: HashMap::new(),
        viewers: HashMap::new(),
        whep: HashMap::new(),
        uplinks: HashMap::new(),
        ingests: HashMap::new(),
        next_viewer: 1,
        next_participant: 1,
        touched: Vec::new(),
        ice_deadlines: BTreeSet::new(),
        outgoing: Vec::new(),
        stats: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("media".into()).spawn(move || {
        runtime.block_on(async move {
            let tcp = match tcp_listener.map(IceTcp::start).transpose() {
                Ok(tcp) => tcp,
                Err(error) => return tracing::error!(%error, "the ICE-TCP listener cannot be used"),
            };
            match UdpSocket::from_std(socket) {
                Ok(socket) => state(socket, tcp).run(receiver).await,
                Err(error) => tracing::error!(%error, "the media socket cannot be used"),
            }
        });
    })?;
    tracing::info!(media = %advertised, ice_tcp = ?advertised_tcp, "media socket ready");
    Ok(Conference { commands, media_addr: advertised, ice_tcp_addr: advertised_tcp, ingests: Default::default() })
}

struct Person {
    member: Member,
    outbox: mpsc::Sender<Outgoing>,
    audio: bool,
    video: bool,
    talking: bool,
    connected: bool,
    /// When ICE must have completed (see `Loop::ice_deadlines`).
    ice_deadline: Instant,
}

/// Who takes a remote address's datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owner {
    Room(String),
    Viewers(String),
    /// A stream node's Program from a conference node.
    Ingest(String),
}

struct LiveRoom {
    room: Room,
    people: BTreeMap<ParticipantId, Person>,
    /// The latest roster message, serialised once (see [`super::Joined`]).
    roster: watch::Sender<Arc<str>>,
}

struct Loop {
    socket: UdpSocket,
    /// ICE-TCP connections, when the listener is on; and its candidate address.
    tcp: Option<IceTcp>,
    advertised_tcp: Option<SocketAddr>,
    advertised: SocketAddr,
    ice_timeout: Duration,
    rooms: HashMap<String, LiveRoom>,
    /// Rooms on air: where their Program goes, and the broadcast's title.
    /// Kept here too for rooms nobody is in yet.
    programs: HashMap<String, ProgramFeed>,
    /// Which room a remote address belongs to, learned from accepted packets.
    by_address: HashMap<(Transport, SocketAddr), Owner>,
    /// On-air rooms' WebRTC viewers, by room id.
    viewers: HashMap<String, Fanout>,
    /// WHEP sessions by resource token: the room and the viewer.
    whep: HashMap<String, (String, ViewerId)>,
    /// Conference node: on-air rooms' pushes to the stream node, by room id.
    uplinks: HashMap<String, program_link::Uplink>,
    /// Stream node: Programs arriving from conference nodes, by room id.
    ingests: HashMap<String, program_link::Ingest>,
    next_viewer: u64,
    next_participant: u64,
    /// Rooms that had input since the last flush: only their output is
    /// collected, so a packet costs its own room, not every room.
    touched: Vec<String>,
    /// Participants whose ICE has not completed, by deadline: the next
    /// wake-up is found without scanning everyone.
    ice_deadlines: BTreeSet<(Instant, String, ParticipantId)>,
    /// Datagrams collected from the Rooms, sent in batches.
    outgoing: Vec<confcast_media::room::Datagram>,
    sender: BatchSender,
    /// Media metrics (see media_stats.rs).
    stats: media_stats::MediaStats,
}

impl Loop {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Every media metric is shown from the start, at zero.
        media_stats::handles();
        let mut receiver = BatchReceiver::new(&self.socket);
        let sleep = tokio::time::sleep_until(self.next_wake().into());
        tokio::pin!(sleep);
        loop {
            let wake = tokio::time::Instant::from(self.next_wake());
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
            tokio::select! {
                // Timers first: a busy socket must not delay the audio ticks.
                biased;
                () = &mut sleep => self.timeouts(Instant::now()),
                command = commands.recv() => match command {
                    Some(command) => self.command(command, Instant::now()),
                    None => break,
                },
                readable = self.socket.readable() => match readable {
                    Ok(()) => self.receive(&mut receiver),
                    Err(error) => tracing::debug!(%error, "media socket error"),
                },
                event = IceTcp::next(&mut self.tcp) => self.tcp_event(event),
            }
            self.flush().await;
        }
        tracing::info!("media loop stopped");
    }

    /// Reads and handles what the socket holds, a few batches at most.
    fn receive(&mut self, receiver: &mut BatchReceiver) {
        for _ in 0..BATCHES_PER_WAKE {
            let count = match receiver.try_receive(&self.socket) {
                Ok(count) => count,
                Err(error) => {
                    tracing::debug!(%error, "media socket receive error");
                    return;
                }
            };
            let mut bytes = 0;
            let now = Instant::now();
            for (from, contents, arrival) in receiver.datagrams() {
                bytes += contents.len();
                self.datagram(Transport::Udp, from, contents, now, arrival);
            }
            media_stats::received(false, count, bytes);
            if count < BATCH {
                return;
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(1);
        let ice = self.ice_deadlines.first().map(|(at, _, _)| *at);
        let viewers = self.viewers.values().filter_map(Fanout::poll_timeout);
        self.rooms.values().filter_map(|live| live.room.poll_timeout()).chain(viewers).chain(ice).chain(self.ingest_wake()).fold(idle, Instant::min)
    }

    /// A packet from a UDP datagram or an ICE-TCP frame.
    /// `arrival`: when the kernel received it (`now` when unknown).
    fn datagram(&mut self, transport: Transport, from: SocketAddr, contents: &[u8], now: Instant, arrival: Instant) {
        match self.by_address.get(&(transport, from)) {
            Some(Owner::Room(room_id)) => {
                if let Some(live) = self.rooms.get_mut(room_id)
                    && matches!(live.room.handle_packet_arrived(transport, from, contents, now, arrival), Ok(true))
                {
                    self.touched.push(room_id.clone());
                    return;
                }
            }
            Some(Owner::Ingest(room_id)) => {
                let room_id = room_id.clone();
                if self.ingest_known_datagram(&room_id, from, contents, now) {
                    return;
                }
            }
            Some(Owner::Viewers(room_id)) => {
                if let Some(fanout) = self.viewers.get_mut(room_id)
                    && fanout.handle_packet(transport, from, contents, now)
                {
                    return;
                }
            }
            None => {}
        }
        // Unknown sender (or it moved): ask every room, then every Program's
        // viewers. Only the first packet of each peer address takes this path.
        let accepted_by = self
            .rooms
            .iter_mut()
            .find_map(|(id, live)| {
                matches!(live.room.handle_packet(transport, from, contents, now), Ok(true)).then(|| Owner::Room(id.clone()))
            })
            .or_else(|| {
                self.viewers
                    .iter_mut()
                    .find_map(|(id, fanout)| fanout.handle_packet(transport, from, contents, now).then(|| Owner::Viewers(id.clone())))
            })
            .or_else(|| program_link::ingest_transport(transport).then(|| self.ingest_datagram(from, contents, now)).flatten());
        match accepted_by {
            Some(owner) => {
                if self.by_address.len() >= MAX_ADDRESSES {
                    self.by_address.clear();
                }
                if let Owner::Room(room_id) = &owner {
                    self.touched.push(room_id.clone());
                }
                self.by_address.insert((transport, from), owner);
            }
            None => metrics::counter!("media_datagrams_unmatched_total").increment(1),
        }
    }

    fn timeouts(&mut self, now: Instant) {
        for (room_id, live) in &mut self.rooms {
            if live.room.poll_timeout().is_some_and(|t| t <= now) {
                live.room.handle_timeout(now);
                self.touched.push(room_id.clone());
            }
        }
        for fanout in self.viewers.values_mut() {
            if fanout.poll_timeout().is_some_and(|t| t <= now) {
                fanout.handle_timeout(now);
            }
        }
        self.ingest_timeouts(now);
        while let Some((at, room_id, participant)) = self.ice_deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.ice_deadlines.pop_first();
            tracing::info!(room = %room_id, %participant, "ICE did not complete in time; dropping");
            self.drop_participant(&room_id, participant, Some(("ice_timeout", "the media connection could not be established")), now);
        }
    }

    fn command(&mut self, command: Command, now: Instant) {
        let room = match &command {
            Command::Join { room, .. }
            | Command::Request { room, .. }
            | Command::Leave { room, .. }
            | Command::VideoLock { room, .. }
            | Command::Program { room, .. }
            | Command::ProgramKeyframe { room }
            | Command::Remove { room, .. }
            | Command::WhepOffer { room, .. }
            | Command::WhepEnd { room, .. }
            | Command::UplinkOffer { room, .. }
            | Command::UplinkAnswer { room, .. }
            | Command::IngestOffer { room, .. } => room.clone(),
            Command::Stopping { .. } | Command::Overview { .. } => return self.site_command(command),
        };
        self.touched.push(room);
        match command {
            Command::Join { room, member, sdp, outbox, reply } => {
                let result = self.join(&room, member, &sdp, outbox, now);
                let _ = reply.send(result);
            }
            Command::Request { room, participant, message } => self.request(&room, participant, message, now),
            Command::Leave { room, participant } => self.drop_participant(&room, participant, None, now),
            Command::VideoLock { room, actor, locked, designated, reply } => {
                let result = self.video_lock(&room, &actor, locked, designated.as_deref(), now);
                let _ = reply.send(result);
            }
            Command::Program { room, feed } => {
                let title = feed.as_ref().map(|feed| feed.title.clone());
                match feed {
                    Some(feed) => {
                        self.programs.insert(room.clone(), feed);
                        self.viewers.entry(room.clone()).or_insert_with(|| {
                            let mut fanout = Fanout::new(self.advertised, MAX_WHEP_VIEWERS, rand_seed());
                            fanout.set_tcp_candidate(self.advertised_tcp);
                            fanout
                        });
                    }
                    None => {
                        self.programs.remove(&room);
                        self.end_program_link(&room);
                        // Off air: the WebRTC viewers' sessions end with it.
                        self.viewers.remove(&room);
                        self.whep.retain(|_, (r, _)| *r != room);
                        self.by_address.retain(|_, owner| *owner != Owner::Viewers(room.clone()));
                    }
                };
                if let Some(live) = self.rooms.get_mut(&room) {
                    live.room.set_program(title.is_some(), now);
                    broadcast(live, ServerMessage::OnAir { on: title.is_some(), title });
                }
                self.room_events(&room, now);
            }
            Command::Remove { room, username } => {
                if let Some(participant) = self.rooms.get(&room).and_then(|live| find(live, &username)) {
                    self.drop_participant(&room, participant, Some(("removed", "you are no longer a member of this room")), now);
                }
            }
            Command::WhepOffer { room, sdp, reply } => {
                let _ = reply.send(self.whep_offer(&room, &sdp, now));
            }
            Command::WhepEnd { room, token, reply } => {
                let ended = match self.whep.get(&token) {
                    Some((r, viewer)) if *r == room => {
                        let viewer = *viewer;
                        self.whep.remove(&token);
                        self.viewers.get_mut(&room).is_some_and(|fanout| fanout.remove_viewer(viewer).is_ok())
                    }
                    _ => false,
                };
                let _ = reply.send(ended);
            }
            Command::UplinkOffer { room, gone, reply } => {
                let _ = reply.send(self.uplink_offer(&room, gone, now));
            }
            Command::UplinkAnswer { room, sdp, reply } => {
                let _ = reply.send(self.uplink_answer(&room, &sdp, now));
            }
            Command::IngestOffer { room, sdp, feed, gone, reply } => {
                let _ = reply.send(self.ingest_offer(&room, &sdp, feed, gone, now));
            }
            Command::Stopping { .. } | Command::Overview { .. } => {}
            Command::ProgramKeyframe { room } => {
                if self.ingest_keyframe(&room, now) {
                    return;
                }
                if let Some(live) = self.rooms.get_mut(&room) {
                    live.room.with_router(now, |r, now| r.handle_keyframe_request(Receiver::Program, now)).ok();
                }
            }
        }
    }

    fn whep_offer(&mut self, room_id: &str, sdp: &str, now: Instant) -> Result<WhepSession, WhepError> {
        let fanout = self.viewers.get_mut(room_id).ok_or(WhepError::NotOnAir)?;
        let viewer = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let answer = fanout.add_viewer(viewer, sdp, now).map_err(|error| match error {
            FanoutError::Full => WhepError::Full,
            other => WhepError::BadOffer(other.to_string()),
        })?;
        let token = whep_token();
        self.whep.insert(token.clone(), (room_id.to_owned(), viewer));
        metrics::counter!("whep_sessions_total").increment(1);
        Ok(WhepSession { token, answer })
    }

    fn join(
        &mut self,
        room_id: &str,
        member: Member,
        sdp: &str,
        outbox: mpsc::Sender<Outgoing>,
        now: Instant,
    ) -> Result<Joined, ProtocolError> {
        // The same user joining again (reconnect, second device) replaces
        // the earlier peer.
        let earlier = self
            .rooms
            .get(room_id)
            .and_then(|live| live.people.iter().find(|(_, p)| p.member.username == member.username).map(|(id, _)| *id));
        if let Some(earlier) = earlier {
            self.drop_participant(room_id, earlier, Some(("replaced", "you joined this room again from elsewhere")), now);
        }
        if !self.rooms.contains_key(room_id) {
            let seed = rand_seed();
            let mut room = Room::new(self.advertised, RouterConfig::default(), MixerConfig::default(), seed, now)
                .map_err(|e| ProtocolError::new("unavailable", format!("cannot start the room: {e}"), Some("join")))?;
            room.set_tcp_candidate(self.advertised_tcp);
            if self.programs.contains_key(room_id) {
                room.set_program(true, now);
            }
            let roster = watch::channel(Arc::from("")).0;
            self.rooms.insert(room_id.to_owned(), LiveRoom { room, people: BTreeMap::new(), roster });
            metrics::gauge!("conference_rooms").increment(1.0);
        }
        let participant = ParticipantId(self.next_participant);
        self.next_participant += 1;
        let role = media_role(member.role);
        let Some(live) = self.rooms.get_mut(room_id) else {
            return Err(ProtocolError::new("unavailable", "the room vanished", Some("join")));
        };
        let answer = match live.room.join(participant, role, sdp, now) {
            Ok(answer) => answer,
            Err(error) => {
                if live.people.is_empty() {
                    self.rooms.remove(room_id);
                    metrics::gauge!("conference_rooms").decrement(1.0);
                }
                return Err(room_error(&error, "join"));
            }
        };
        let username = member.username.clone();
        let role_name = member.role.as_str().to_owned();
        live.people.insert(
            participant,
            Person { member, outbox, audio: true, video: true, talking: false, connected: false, ice_deadline: now + self.ice_timeout },
        );
        self.ice_deadlines.insert((now + self.ice_timeout, room_id.to_owned(), participant));
        metrics::gauge!("conference_participants").increment(1.0);
        tracing::info!(room = %room_id, %participant, user = %username, "joined");
        send(live, participant, ServerMessage::Joined { version: VERSION, you: username, role: role_name, sdp: answer.clone() });
        broadcast_roster(live);
        send(live, participant, lock_message(live));
        send(live, participant, selection_message(live, participant));
        if let Some(ProgramFeed { title, .. }) = self.programs.get(room_id) {
            send(live, participant, ServerMessage::OnAir { on: true, title: Some(title.clone()) });
        }
        let roster = live.roster.subscribe();
        self.room_events(room_id, now);
        Ok(Joined { participant, answer, roster })
    }

    fn request(&mut self, room_id: &str, participant: ParticipantId, message: ClientMessage, now: Instant) {
        let Some(live) = self.rooms.get_mut(room_id) else { return };
        let Some(person) = live.people.get_mut(&participant) else { return };
        let kind = message.kind();
        let role = person.member.role;
        let result: Result<(), ProtocolError> = match message {
            ClientMessage::Join { .. } => Err(ProtocolError::new("already_joined", "this connection already joined", Some(kind))),
            ClientMessage::Ping => {
                send(live, participant, ServerMessage::Pong);
                Ok(())
            }
            ClientMessage::Media { audio, video } => {
                person.audio = audio;
                person.video = video;
                broadcast_roster(live);
                Ok(())
            }
            ClientMessage::Leave => {
                self.drop_participant(room_id, participant, None, now);
                return;
            }
            // Going on air involves the database; the WebSocket session
            // handles it and never forwards it here.
            ClientMessage::Broadcast { .. } => Ok(()),
            ClientMessage::Watch { username } => {
                let choice = match username {
                    None => Ok(Choice::Auto),
                    Some(name) => find(live, &name).map(Choice::Participant).ok_or_else(|| not_present(&name, kind)),
                };
                let result = choice.and_then(|choice| {
                    live.room.with_router(now, |r, now| r.watch(participant, choice, now)).map_err(|e| router_error(&e, kind))
                });
                // The mode may change even when the source does not (choosing
                // the person already shown): always confirm.
                if result.is_ok() {
                    send(live, participant, selection_message(live, participant));
                }
                result
            }
            ClientMessage::Lock { designated } | ClientMessage::Designate { username: designated } => {
                let action = if kind == "lock" { Action::LockVideo } else { Action::DesignateVideo };
                if allows(role, action) {
                    match find(live, &designated) {
                        Some(target) => live
                            .room
                            .with_router(now, |r, now| {
                                if kind == "lock" && !r.selection().is_locked() {
                                    r.lock(Actor::Participant(participant), target, now)
                                } else {
                                    r.designate(Actor::Participant(participant), target, now)
                                }
                            })
                            .map_err(|e| router_error(&e, kind)),
                        None => Err(not_present(&designated, kind)),
                    }
                } else {
                    Err(ProtocolError::new("not_permitted", "only the host or an admin may do this", Some(kind)))
                }
            }
            ClientMessage::Unlock => {
                if allows(role, Action::LockVideo) {
                    live.room.with_router(now, |r, now| r.unlock(Actor::Participant(participant), now)).map_err(|e| router_error(&e, kind))
                } else {
                    Err(ProtocolError::new("not_permitted", "only the host or an admin may do this", Some(kind)))
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(room = %room_id, %participant, code = error.code, "request refused");
            send(live, participant, error.into());
        }
        self.room_events(room_id, now);
    }

    fn video_lock(
        &mut self,
        room_id: &str,
        actor: &Member,
        locked: bool,
        designated: Option<&str>,
        now: Instant,
    ) -> Result<LockState, LockError> {
        let live = self.rooms.get_mut(room_id).ok_or(LockError::NoConference)?;
        // The permission was checked by the caller; act as the actor when they
        // are present (so their rate limit applies), else as the operator.
        let who = find(live, &actor.username).map_or(Actor::Operator, Actor::Participant);
        let result = if locked {
            let name = designated.ok_or_else(|| {
                LockError::Refused(ProtocolError::new("invalid_request", "locking needs a designated participant", Some("lock")))
            })?;
            let target = find(live, name).ok_or_else(|| LockError::NotPresent(name.to_owned()))?;
            live.room.with_router(now, |r, now| {
                if r.selection().is_locked() { r.designate(who, target, now) } else { r.lock(who, target, now) }
            })
        } else if live.room.router().selection().is_locked() {
            live.room.with_router(now, |r, now| r.unlock(who, now))
        } else {
            Ok(())
        };
        result.map_err(|e| LockError::Refused(router_error(&e, if locked { "lock" } else { "unlock" })))?;
        let state = lock_state(live);
        self.room_events(room_id, now);
        Ok(state)
    }

    /// Removes a participant: from the Room, the roster and (when `why` is
    /// given) with a last message before their socket is closed.
    fn drop_participant(&mut self, room_id: &str, participant: ParticipantId, why: Option<(&'static str, &str)>, now: Instant) {
        let Some(live) = self.rooms.get_mut(room_id) else { return };
        if !live.people.contains_key(&participant) {
            return;
        }
        let _ = live.room.leave(participant, now);
        // Events first, while the leaver's name can still be looked up.
        self.room_events(room_id, now);
        let Some(live) = self.rooms.get_mut(room_id) else { return };
        if let Some(person) = live.people.remove(&participant) {
            if !person.connected {
                self.ice_deadlines.remove(&(person.ice_deadline, room_id.to_owned(), participant));
            }
            metrics::gauge!("conference_participants").decrement(1.0);
            tracing::info!(room = %room_id, %participant, user = %person.member.username, "left");
            if let Some((code, message)) = why {
                let notice = if code == "replaced" {
                    ServerMessage::Notice { code, message: message.to_owned() }
                } else {
                    ServerMessage::Error { code, message: message.to_owned(), request: None }
                };
                let _ = person.outbox.try_send(Outgoing::Message(notice));
                let _ = person.outbox.try_send(Outgoing::Close);
            }
        }
        if live.people.is_empty() {
            self.rooms.remove(room_id);
            self.by_address.retain(|_, owner| *owner != Owner::Room(room_id.to_owned()));
            metrics::gauge!("conference_rooms").decrement(1.0);
        } else {
            broadcast_roster(live);
        }
    }

    /// Turns the Room's events into messages for its participants.
    fn room_events(&mut self, room_id: &str, now: Instant) {
        let mut disconnected = Vec::new();
        {
            let Some(live) = self.rooms.get_mut(room_id) else { return };
            while let Some(event) = live.room.poll_event() {
                match event {
                    RoomEvent::Connected(p) => {
                        if let Some(person) = live.people.get_mut(&p)
                            && !person.connected
                        {
                            person.connected = true;
                            self.ice_deadlines.remove(&(person.ice_deadline, room_id.to_owned(), p));
                        }
                    }
                    RoomEvent::Disconnected(p) => disconnected.push(p),
                    RoomEvent::Talking { participant, talking } => {
                        if let Some(person) = live.people.get_mut(&participant) {
                            person.talking = talking;
                            let username = person.member.username.clone();
                            broadcast(live, ServerMessage::Talking { username, talking });
                        }
                    }
                    RoomEvent::DominantSpeaker(p) => {
                        let username = p.and_then(|p| live.people.get(&p)).map(|person| person.member.username.clone());
                        broadcast(live, ServerMessage::Dominant { username });
                    }
                    RoomEvent::Selection(SelectionEvent::SubscriptionChanged { receiver, .. }) => {
                        send(live, receiver, selection_message(live, receiver));
                    }
                    RoomEvent::Selection(SelectionEvent::LockChanged { .. } | SelectionEvent::LockTargetChanged { .. }) => {
                        broadcast(live, lock_message(live));
                        let everyone: Vec<_> = live.people.keys().copied().collect();
                        for p in everyone {
                            send(live, p, selection_message(live, p));
                        }
                    }
                    RoomEvent::Selection(SelectionEvent::DesignatedLeft { participant, .. }) => {
                        let name = live.people.get(&participant).map_or_else(|| "the designated participant".to_owned(), |p| p.member.display_name.clone());
                        broadcast(live, ServerMessage::Notice {
                            code: "designated_left",
                            message: format!("{name} left; everyone now sees the host's video"),
                        });
                    }
                    // The Program feeds the broadcast packager, which is not here yet.
                    RoomEvent::Selection(SelectionEvent::ProgramChanged { .. }) | RoomEvent::ProgramVideoParams(_) => {}
                }
            }
        }
        for p in disconnected {
            self.drop_participant(room_id, p, Some(("ice_disconnected", "the media connection was lost")), now);
        }
    }

    /// Sends what the Rooms want sent, and delivers their events.
    async fn flush(&mut self) {
        let now = Instant::now();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for id in &touched {
            self.room_events(id, now);
        }
        for room_id in &touched {
            let Some(live) = self.rooms.get_mut(room_id) else { continue };
            if let Some(ProgramFeed { sink, .. }) = self.programs.get(room_id) {
                let sink = sink.as_ref();
                let mut fanout = self.viewers.get_mut(room_id).filter(|f| !f.is_empty());
                while let Some(media) = live.room.poll_program() {
                    if let Some(fanout) = fanout.as_mut() {
                        fanout.write(&media, now);
                    }
                    // A slow packager loses units (counted); the room never waits.
                    if let Some(sink) = sink
                        && sink.try_send(media).is_err()
                    {
                        metrics::counter!("program_units_dropped_total").increment(1);
                    }
                }
                // Each viewer is drained once for all the units written.
                if let Some(fanout) = fanout {
                    fanout.send_written(now);
                }
            }
            while let Some(datagram) = live.room.poll_transmit() {
                self.outgoing.push(datagram);
            }
        }
        self.flush_ingests(now);
        self.flush_viewers(now);
        self.stats.maybe_scan(now, &self.rooms, &self.viewers);
        if let Some(tcp) = &self.tcp {
            // ICE-TCP packets go framed onto their connection, the rest by UDP.
            let (mut packets, mut bytes) = (0, 0);
            self.outgoing.retain(|d| d.transport == Transport::Udp || {
                tcp.send(d.destination, &d.contents);
                (packets, bytes) = (packets + 1, bytes + d.contents.len());
                false
            });
            media_stats::sent(true, packets, bytes);
        }
        if !self.outgoing.is_empty() {
            media_stats::sent(false, self.outgoing.len(), self.outgoing.iter().map(|d| d.contents.len()).sum());
            self.sender.send_all(&self.socket, &self.outgoing).await;
            self.outgoing.clear();
        }
    }
}

impl Loop {
    /// Commands about the whole node rather than one room.
    fn site_command(&mut self, command: Command) {
        match command {
            Command::Stopping { close, reply } => {
                let mut told = 0;
                for live in self.rooms.values() {
                    for person in live.people.values() {
                        let message = ServerMessage::Notice {
                            code: "server_stopping",
                            message: "The server is restarting or shutting down; this conference ends now. Rejoin in a moment.".to_owned(),
                        };
                        if !close && person.outbox.try_send(Outgoing::Message(message)).is_ok() {
                            told += 1;
                        }
                        if close && person.outbox.try_send(Outgoing::Close).is_ok() {
                            told += 1;
                        }
                    }
                }
                let _ = reply.send(told);
            }
            Command::Overview { reply } => {
                let rooms = self
                    .rooms
                    .iter()
                    .map(|(id, live)| super::RoomLoad {
                        room: id.clone(),
                        participants: live.people.values().map(|p| p.member.username.clone()).collect(),
                        webrtc_viewers: self.viewers.get(id).map_or(0, Fanout::len),
                    })
                    .collect();
                let _ = reply.send(rooms);
            }
            _ => {}
        }
    }

    /// Connections opened and closed, and the packets they carried.
    fn tcp_event(&mut self, event: ice_tcp::TcpEvent) {
        let Some(tcp) = self.tcp.as_mut() else { return };
        let mut packets = Vec::new();
        tcp.handle(event, &mut packets);
        let now = Instant::now();
        media_stats::received(true, packets.len(), packets.iter().map(|(_, c)| c.len()).sum());
        for (from, contents) in packets {
            self.datagram(Transport::Tcp, from, &contents, now, now);
        }
    }

    /// Collects the WebRTC viewers' datagrams, ends the sessions that failed,
    /// and passes their keyframe requests to the Program's source.
    fn flush_viewers(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for (room_id, fanout) in &mut self.viewers {
            if fanout.take_keyframe_request(now) {
                if let Some(live) = self.rooms.get_mut(room_id) {
                    live.room.with_router(now, |r, now| r.handle_keyframe_request(Receiver::Program, now)).ok();
                    while let Some(datagram) = live.room.poll_transmit() {
                        self.outgoing.push(datagram);
                    }
                } else if let Some(ingest) = self.ingests.get_mut(room_id) {
                    // A stream node: the source is the conference node.
                    ingest.ingest.request_keyframe(now);
                    while let Some(datagram) = ingest.ingest.poll_transmit() {
                        self.outgoing.push(datagram);
                    }
                }
            }
            while let Some(event) = fanout.poll_event() {
                if let FanoutEvent::Disconnected(viewer) = event
                    && fanout.remove_viewer(viewer).is_ok()
                {
                    tracing::debug!(room = %room_id, %viewer, "WebRTC viewer gone");
                    failed.push((room_id.clone(), viewer));
                }
            }
            while let Some(datagram) = fanout.poll_transmit() {
                self.outgoing.push(datagram);
            }
            if let Some(feed) = self.programs.get(room_id) {
                feed.webrtc_viewers.store(fanout.len(), std::sync::atomic::Ordering::Relaxed);
            }
        }
        if !failed.is_empty() {
            self.whep.retain(|_, session| !failed.contains(session));
            for (room_id, viewer) in &failed {
                self.uplink_failed(room_id, *viewer);
            }
        }
    }
}

/// The media socket, with buffers for bursts (see [`SOCKET_BUFFER`]).
fn bind_socket(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Refusals are not fatal: the default buffers work, only less well.
    if let Err(error) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::warn!(%error, "cannot enlarge the media socket's receive buffer");
    }
    if let Err(error) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::warn!(%error, "cannot enlarge the media socket's send buffer");
    }
    socket.bind(&address.into())?;
    let receive = socket.recv_buffer_size().unwrap_or(0);
    if receive < SOCKET_BUFFER / 2 {
        tracing::warn!(
            bytes = receive,
            "the media socket's receive buffer is small; raise net.core.rmem_max for rooms of hundreds"
        );
    }
    Ok(socket.into())
}

/// 128 random bits, hex: names a WHEP session so only its viewer can end it.
fn whep_token() -> String {
    use rand::Rng as _;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

fn media_role(role: Role) -> confcast_media::Role {
    match role {
        Role::Host => confcast_media::Role::Host,
        Role::Admin => confcast_media::Role::Admin,
        Role::Member | Role::Stranger | Role::Anonymous => confcast_media::Role::Member,
    }
}

fn find(live: &LiveRoom, username: &str) -> Option<ParticipantId> {
    let username = username.to_ascii_lowercase();
    live.people.iter().find(|(_, p)| p.member.username == username).map(|(id, _)| *id)
}

fn not_present(username: &str, kind: &str) -> ProtocolError {
    ProtocolError::new("unknown_participant", format!("{username} is not in the conference"), Some(kind))
}

fn publisher_name(live: &LiveRoom, publication: Option<PublicationId>) -> Option<String> {
    let publisher = live.room.router().selection().publisher_of(publication?)?;
    live.people.get(&publisher).map(|p| p.member.username.clone())
}

fn selection_message(live: &LiveRoom, receiver: ParticipantId) -> ServerMessage {
    let selection = live.room.router().selection();
    let mode = match selection.mode_of(receiver) {
        Some(SelectionMode::Chosen) => "chosen",
        Some(SelectionMode::Locked) => "locked",
        Some(SelectionMode::Auto) | None => "auto",
    };
    ServerMessage::Selection { source: publisher_name(live, selection.source_of(receiver)), mode }
}

fn lock_state(live: &LiveRoom) -> LockState {
    let selection = live.room.router().selection();
    let designated = match selection.lock_target() {
        Some(confcast_media::LockTarget::Designated(p) | confcast_media::LockTarget::Host(p)) => {
            live.people.get(&p).map(|person| person.member.username.clone())
        }
        _ => None,
    };
    LockState { locked: selection.is_locked(), designated }
}

fn lock_message(live: &LiveRoom) -> ServerMessage {
    let state = lock_state(live);
    ServerMessage::Lock { locked: state.locked, designated: state.designated }
}

fn broadcast_roster(live: &LiveRoom) {
    let participants = live
        .people
        .values()
        .map(|p| RosterEntry {
            username: p.member.username.clone(),
            display_name: p.member.display_name.clone(),
            role: p.member.role.as_str().to_owned(),
            audio: p.audio,
            video: p.video,
            talking: p.talking,
        })
        .collect();
    live.roster.send_replace(Arc::from(ServerMessage::Roster { participants }.to_json()));
}

fn broadcast(live: &LiveRoom, message: ServerMessage) {
    for id in live.people.keys() {
        send(live, *id, message.clone());
    }
}

/// Queues a message for one participant. A client too slow to take its
/// control messages loses them (counted) rather than stalling the room.
fn send(live: &LiveRoom, to: ParticipantId, message: ServerMessage) {
    if let Some(person) = live.people.get(&to) {
        if person.outbox.try_send(Outgoing::Message(message)).is_err() {
            metrics::counter!("signalling_messages_dropped_total").increment(1);
        }
    }
}

fn room_error(error: &RoomError, kind: &str) -> ProtocolError {
    match error {
        RoomError::Sdp(e) => ProtocolError::new("invalid_sdp", format!("the offer was refused: {e}"), Some(kind)),
        RoomError::Rtc(e) => ProtocolError::new("invalid_sdp", format!("the offer was refused: {e}"), Some(kind)),
        RoomError::Router(e) => router_error(e, kind),
        other => ProtocolError::new("unavailable", other.to_string(), Some(kind)),
    }
}

fn router_error(error: &RouterError, kind: &str) -> ProtocolError {
    let RouterError::Selection(selection) = error else {
        return ProtocolError::new("invalid_request", error.to_string(), Some(kind));
    };
    let code = match selection {
        SelectionError::Locked { .. } => "locked",
        SelectionError::RateLimited { .. } => "rate_limited",
        SelectionError::NotPermitted => "not_permitted",
        SelectionError::NotLocked => "not_locked",
        SelectionError::CannotWatchSelf => "cannot_watch_self",
        SelectionError::UnknownParticipant(_) => "unknown_participant",
        SelectionError::AlreadyJoined(_) => "already_joined",
        SelectionError::HostAlreadyPresent { .. } => "already_joined",
    };
    let message = match selection {
        SelectionError::Locked { .. } => "the host has locked everyone's video; you cannot choose while it is locked".to_owned(),
        other => other.to_string(),
    };
    ProtocolError::new(code, message, Some(kind))
}
