//! The conference: signalling over WebSocket and the media loop around the
//! sans-IO room cores.
//!
//! One task (`media_loop`) owns the server's UDP socket and every live
//! [`confcast_media::room::Room`]; WebSocket sessions (`signalling`) talk to
//! it through [`Conference`], a cheap handle of channels. Rooms exist in the
//! loop only while someone is in them.

mod gso;
mod ice_tcp;
mod media_loop;
pub mod protocol;
pub mod signalling;
mod udp_batch;
pub mod whip;

use std::net::SocketAddr;
use std::time::Duration;

use confcast_media::ParticipantId;
use confcast_media::room::ProgramMedia;
use confcast_policy::Role;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

pub use media_loop::start;
use protocol::{ClientMessage, ProtocolError, ServerMessage};

/// Settings of the media side.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// Where the UDP socket binds (port 0 picks a free one).
    pub bind: SocketAddr,
    /// The address put in the server's ICE candidate; defaults to the bound
    /// address. Set it to the public address behind 1:1 NAT.
    pub public_ip: Option<std::net::IpAddr>,
    /// A participant whose ICE has not completed by then is dropped.
    pub ice_timeout: Duration,
    /// Where the ICE-TCP listener binds (RFC 6544 passive candidates, for
    /// clients whose UDP is blocked); `None`: no TCP candidate.
    pub ice_tcp: Option<SocketAddr>,
}

/// Who is joining, as the HTTP layer authenticated them.
#[derive(Clone, Debug)]
pub struct Member {
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

/// What the media loop sends to one participant's WebSocket.
#[derive(Debug)]
pub enum Outgoing {
    Message(ServerMessage),
    /// The server ends this participant's conference (replaced, ICE failed);
    /// the socket closes after the messages before it.
    Close,
}

/// A participant just admitted to a room's conference.
#[derive(Debug)]
pub struct Joined {
    pub participant: ParticipantId,
    /// The SDP answer (also sent as the `joined` message).
    pub answer: String,
    /// The room's roster, serialised once per change and shared by every
    /// participant: a burst of joins costs one roster per reader, not one
    /// queued copy per join per participant.
    pub roster: watch::Receiver<Arc<str>>,
}

/// The lock state, as the REST API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockState {
    pub locked: bool,
    pub designated: Option<String>,
}

/// Why a lock change over REST was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Nobody is in the room's conference, so there is nothing to lock.
    NoConference,
    /// The designated user is not in the conference.
    NotPresent(String),
    Refused(ProtocolError),
}

#[derive(Debug)]
pub(crate) enum Command {
    Join {
        room: String,
        member: Member,
        sdp: String,
        outbox: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<Joined, ProtocolError>>,
    },
    Request { room: String, participant: ParticipantId, message: ClientMessage },
    Leave { room: String, participant: ParticipantId },
    VideoLock {
        room: String,
        actor: Member,
        locked: bool,
        designated: Option<String>,
        reply: oneshot::Sender<Result<LockState, LockError>>,
    },
    /// The room goes on air (its Program into this sink, under this title)
    /// or off air (`None`).
    Program { room: String, feed: Option<ProgramFeed> },
    /// The packager needs a keyframe of the Program's video.
    ProgramKeyframe { room: String },
    /// The user lost their membership (removed, or the room was deleted):
    /// they leave the conference at once.
    Remove { room: String, username: String },
    /// A WHEP viewer's offer for the room's Program.
    WhepOffer { room: String, sdp: String, reply: oneshot::Sender<Result<WhepSession, WhepError>> },
    /// The WHEP session with this resource token ends.
    WhepEnd { room: String, token: String, reply: oneshot::Sender<bool> },
    /// Conference node: open the on-air room's push to the stream node;
    /// the reply is the offer. `gone` fires if its connection fails.
    UplinkOffer { room: String, gone: oneshot::Sender<()>, reply: oneshot::Sender<Result<String, String>> },
    /// Conference node: the stream node's answer to the push's offer.
    UplinkAnswer { room: String, sdp: String, reply: oneshot::Sender<Result<(), String>> },
    /// Stream node: a conference node's Program arrives as this room's
    /// Program, into `feed`; the reply is the answer. `gone` fires when it
    /// stops arriving. It ends with `Program { feed: None }`.
    IngestOffer {
        room: String,
        sdp: String,
        feed: ProgramFeed,
        gone: oneshot::Sender<()>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// The server is stopping: every participant is told (`notice`
    /// `server_stopping`), or, with `close`, their conference ends; the
    /// reply is how many were reached.
    Stopping { close: bool, reply: oneshot::Sender<usize> },
    /// Who is in which room now (the operator's overview).
    Overview { reply: oneshot::Sender<Vec<RoomLoad>> },
}

/// One room's conference as the operator sees it.
#[derive(Clone, Debug)]
pub struct RoomLoad {
    pub room: String,
    /// Usernames of the participants present.
    pub participants: Vec<String>,
    /// WebRTC (WHEP) viewers of the room's Program.
    pub webrtc_viewers: usize,
}

/// Where an on-air room's Program goes.
#[derive(Debug)]
pub struct ProgramFeed {
    /// The streaming side's bounded queue (packager, recorder); none on a
    /// conference node, whose Program goes to the stream node instead.
    pub sink: Option<mpsc::Sender<ProgramMedia>>,
    pub title: String,
    /// Kept equal to the Program's WebRTC viewers, for the directory's count.
    pub webrtc_viewers: Arc<std::sync::atomic::AtomicUsize>,
}

/// A WHEP viewer admitted to a Program.
#[derive(Debug)]
pub struct WhepSession {
    /// Names the session's resource; unguessable, so only the viewer can end it.
    pub token: String,
    pub answer: String,
}

/// Why a WHEP offer was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WhepError {
    /// The room is not on air (or nobody is in it to make a Program).
    NotOnAir,
    /// The offer is not SDP or cannot receive the Program.
    BadOffer(String),
    /// The Program has as many WebRTC viewers as it may.
    Full,
    Unavailable,
}

/// A handle on the media loop; cloning it is cheap.
#[derive(Clone, Debug)]
pub struct Conference {
    commands: mpsc::Sender<Command>,
    /// The UDP address media flows to.
    pub media_addr: SocketAddr,
    /// The ICE-TCP candidate's address, when the listener is on.
    pub ice_tcp_addr: Option<SocketAddr>,
    /// Encoders publishing over WHIP, by session secret.
    pub(crate) ingests: whip::Ingests,
}

/// How many commands may wait for the media loop before senders wait.
const COMMAND_QUEUE: usize = 1024;

impl Conference {
    pub(crate) fn ingests_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, ParticipantId)>> {
        self.ingests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins `member` to the room's conference with their SDP offer.
    pub async fn join(
        &self,
        room: &str,
        member: Member,
        sdp: String,
        outbox: mpsc::Sender<Outgoing>,
    ) -> Result<Joined, ProtocolError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Join { room: room.to_owned(), member, sdp, outbox, reply };
        self.commands.send(command).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// A request from a joined participant (watch, lock, media, …); answers
    /// arrive on their outbox.
    pub async fn request(&self, room: &str, participant: ParticipantId, message: ClientMessage) {
        let _ = self.commands.send(Command::Request { room: room.to_owned(), participant, message }).await;
    }

    pub async fn leave(&self, room: &str, participant: ParticipantId) {
        let _ = self.commands.send(Command::Leave { room: room.to_owned(), participant }).await;
    }

    /// Locks (with a designated participant) or unlocks a room's video, on
    /// behalf of a host or admin whose permission the caller has checked.
    pub async fn video_lock(
        &self,
        room: &str,
        actor: Member,
        locked: bool,
        designated: Option<String>,
    ) -> Result<LockState, LockError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::VideoLock { room: room.to_owned(), actor, locked, designated, reply };
        self.commands.send(command).await.map_err(|_| LockError::Refused(stopped()))?;
        answer.await.map_err(|_| LockError::Refused(stopped()))?
    }
}

impl Conference {
    /// Starts (with the sink and title) or stops feeding the room's Program
    /// to the streaming side; participants are told the room is on air.
    pub async fn program(&self, room: &str, feed: Option<ProgramFeed>) {
        let _ = self.commands.send(Command::Program { room: room.to_owned(), feed }).await;
    }

    /// Ends `username`'s presence in the room's conference, if any, because
    /// they are no longer a member.
    pub async fn remove(&self, room: &str, username: &str) {
        let _ = self.commands.send(Command::Remove { room: room.to_owned(), username: username.to_owned() }).await;
    }

    /// Admits a WHEP viewer to the room's Program.
    pub async fn whep_offer(&self, room: &str, sdp: String) -> Result<WhepSession, WhepError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::WhepOffer { room: room.to_owned(), sdp, reply };
        self.commands.send(command).await.map_err(|_| WhepError::Unavailable)?;
        answer.await.map_err(|_| WhepError::Unavailable)?
    }

    /// Ends a WHEP session; `false` when there is no such session.
    pub async fn whep_end(&self, room: &str, token: &str) -> bool {
        let (reply, answer) = oneshot::channel();
        let command = Command::WhepEnd { room: room.to_owned(), token: token.to_owned(), reply };
        if self.commands.send(command).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Conference node: opens the on-air room's push to the stream node
    /// and returns its offer; `gone` fires if the connection later fails.
    pub async fn uplink_offer(&self, room: &str, gone: oneshot::Sender<()>) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        let command = Command::UplinkOffer { room: room.to_owned(), gone, reply };
        self.commands.send(command).await.map_err(|_| "the media loop has stopped".to_owned())?;
        answer.await.map_err(|_| "the media loop has stopped".to_owned())?
    }

    /// Conference node: completes the push with the stream node's answer.
    pub async fn uplink_answer(&self, room: &str, sdp: String) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let command = Command::UplinkAnswer { room: room.to_owned(), sdp, reply };
        self.commands.send(command).await.map_err(|_| "the media loop has stopped".to_owned())?;
        answer.await.map_err(|_| "the media loop has stopped".to_owned())?
    }

    /// Stream node: takes a conference node's Program offer for the room;
    /// returns the answer. `gone` fires when the Program stops arriving.
    pub async fn ingest_offer(&self, room: &str, sdp: String, feed: ProgramFeed, gone: oneshot::Sender<()>) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        let command = Command::IngestOffer { room: room.to_owned(), sdp, feed, gone, reply };
        self.commands.send(command).await.map_err(|_| "the media loop has stopped".to_owned())?;
        answer.await.map_err(|_| "the media loop has stopped".to_owned())?
    }

    /// Tells every participant the server is stopping (or, with `close`,
    /// ends their conference); how many were reached.
    pub async fn stopping(&self, close: bool) -> usize {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Stopping { close, reply }).await.is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// Every room with a conference now, and who is in it.
    pub async fn overview(&self) -> Vec<RoomLoad> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Overview { reply }).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Asks the Program's source for a keyframe; never waits (called from
    /// the packager's feeder), a full queue just skips this request.
    pub fn program_keyframe(&self, room: &str) {
        let _ = self.commands.try_send(Command::ProgramKeyframe { room: room.to_owned() });
    }
}

fn stopped() -> ProtocolError {
    ProtocolError::new("unavailable", "the media service is not running", None)
}
