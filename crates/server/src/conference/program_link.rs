//! The media loop's side of split nodes. On a conference node, an on-air
//! room's Program also goes to an uplink (a [`Fanout`] peer that makes the
//! offer) towards the stream node; on a stream node, a room's Program comes
//! from a [`ProgramIngest`] instead of a Room and feeds the packager and the
//! WebRTC viewers exactly as a local Room's would.

use std::time::Instant;

use confcast_media::fanout::{Fanout, FanoutError, ViewerId};
use confcast_media::program_ingest::{IngestEvent, ProgramIngest};
use confcast_media::room::Transport;
use tokio::sync::oneshot;

use super::{Loop, Owner, MAX_WHEP_VIEWERS};
use crate::conference::ProgramFeed;

/// A conference node's push of one room's Program.
pub(super) struct Uplink {
    pub(super) viewer: ViewerId,
    /// Told when the uplink's ICE fails, so the broadcast can end.
    pub(super) gone: Option<oneshot::Sender<()>>,
}

/// A stream node's reception of one room's Program.
pub(super) struct Ingest {
    pub(super) ingest: ProgramIngest,
    pub(super) gone: Option<oneshot::Sender<()>>,
}

impl Loop {
    /// Opens the uplink of an on-air room; the offer for the stream node.
    pub(super) fn uplink_offer(&mut self, room: &str, gone: oneshot::Sender<()>, now: Instant) -> Result<String, String> {
        let fanout = self.viewers.get_mut(room).ok_or("the room is not on air")?;
        let viewer = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let offer = fanout.add_uplink(viewer, now).map_err(|e| e.to_string())?;
        if let Some(old) = self.uplinks.insert(room.to_owned(), Uplink { viewer, gone: Some(gone) }) {
            let _ = fanout.remove_viewer(old.viewer);
        }
        Ok(offer)
    }

    pub(super) fn uplink_answer(&mut self, room: &str, sdp: &str, now: Instant) -> Result<(), String> {
        let uplink = self.uplinks.get(room).ok_or("the room has no uplink")?;
        let fanout = self.viewers.get_mut(room).ok_or("the room is not on air")?;
        fanout.accept_uplink_answer(uplink.viewer, sdp, now).map_err(|e| match e {
            FanoutError::Sdp(why) => format!("the stream node's answer was refused: {why}"),
            other => other.to_string(),
        })
    }

    /// A conference node's Program arrives: it becomes the room's Program
    /// here, with its own WebRTC viewers.
    pub(super) fn ingest_offer(
        &mut self,
        room: &str,
        sdp: &str,
        feed: ProgramFeed,
        gone: oneshot::Sender<()>,
        now: Instant,
    ) -> Result<String, String> {
        let (ingest, answer) = ProgramIngest::new(self.advertised, sdp, now).map_err(|e| e.to_string())?;
        self.end_program_link(room);
        self.ingests.insert(room.to_owned(), Ingest { ingest, gone: Some(gone) });
        self.programs.insert(room.to_owned(), feed);
        let advertised_tcp = self.advertised_tcp;
        self.viewers.entry(room.to_owned()).or_insert_with(|| {
            let mut fanout = Fanout::new(self.advertised, MAX_WHEP_VIEWERS, super::rand_seed());
            fanout.set_tcp_candidate(advertised_tcp);
            fanout
        });
        Ok(answer)
    }

    /// Forgets the room's uplink or ingest (the room went off air).
    pub(super) fn end_program_link(&mut self, room: &str) {
        self.uplinks.remove(room);
        if self.ingests.remove(room).is_some() {
            self.by_address.retain(|_, owner| *owner != Owner::Ingest(room.to_owned()));
        }
    }

    /// A datagram for one of the ingests (asked when its sender is unknown).
    pub(super) fn ingest_datagram(&mut self, from: std::net::SocketAddr, contents: &[u8], now: Instant) -> Option<Owner> {
        self.ingests
            .iter_mut()
            .find_map(|(room, ingest)| ingest.ingest.handle_datagram(from, contents, now).then(|| Owner::Ingest(room.clone())))
    }

    pub(super) fn ingest_known_datagram(&mut self, room: &str, from: std::net::SocketAddr, contents: &[u8], now: Instant) -> bool {
        self.ingests.get_mut(room).is_some_and(|ingest| ingest.ingest.handle_datagram(from, contents, now))
    }

    /// Asks a stream node's Program source (the conference node) for a
    /// keyframe; `false` when the room's Program is not an ingest.
    pub(super) fn ingest_keyframe(&mut self, room: &str, now: Instant) -> bool {
        match self.ingests.get_mut(room) {
            Some(ingest) => {
                ingest.ingest.request_keyframe(now);
                true
            }
            None => false,
        }
    }

    pub(super) fn ingest_timeouts(&mut self, now: Instant) {
        for ingest in self.ingests.values_mut() {
            if ingest.ingest.poll_timeout() <= now {
                ingest.ingest.handle_timeout(now);
            }
        }
    }

    pub(super) fn ingest_wake(&self) -> Option<Instant> {
        self.ingests.values().map(|ingest| ingest.ingest.poll_timeout()).min()
    }

    /// Moves the ingests' Program units to the packager and the WebRTC
    /// viewers, and their datagrams to the socket.
    pub(super) fn flush_ingests(&mut self, now: Instant) {
        for (room, ingest) in &mut self.ingests {
            let feed = self.programs.get(room);
            let mut fanout = self.viewers.get_mut(room).filter(|f| !f.is_empty());
            while let Some(media) = ingest.ingest.poll_program() {
                if let Some(fanout) = fanout.as_mut() {
                    fanout.write(&media, now);
                }
                if let Some(sink) = feed.and_then(|feed| feed.sink.as_ref())
                    && sink.try_send(media).is_err()
                {
                    metrics::counter!("program_units_dropped_total").increment(1);
                }
            }
            if let Some(fanout) = fanout {
                fanout.send_written(now);
            }
            while let Some(event) = ingest.ingest.poll_event() {
                match event {
                    IngestEvent::Connected => tracing::info!(%room, "the Program from the conference node is connected"),
                    IngestEvent::Disconnected => {
                        tracing::warn!(%room, "the Program from the conference node stopped arriving");
                        if let Some(gone) = ingest.gone.take() {
                            let _ = gone.send(());
                        }
                    }
                }
            }
            while let Some(datagram) = ingest.ingest.poll_transmit() {
                self.outgoing.push(datagram);
            }
        }
    }

    /// An uplink viewer failed: the conference node is told.
    pub(super) fn uplink_failed(&mut self, room: &str, viewer: ViewerId) {
        if let Some(uplink) = self.uplinks.get_mut(room)
            && uplink.viewer == viewer
        {
            tracing::warn!(%room, "the Program's connection to the stream node failed");
            if let Some(gone) = uplink.gone.take() {
                let _ = gone.send(());
            }
        }
    }
}

/// Ingests take UDP only: nodes reach each other directly.
pub(super) fn ingest_transport(transport: Transport) -> bool {
    transport == Transport::Udp
}
