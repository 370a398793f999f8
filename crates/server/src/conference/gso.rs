//! Which datagrams can leave as one UDP GSO send (generic segmentation
//! offload, `UDP_SEGMENT`): several datagrams to the same address, all of
//! one size but the last, which may be shorter, handed to the kernel as one
//! buffer that it cuts apart again after routing (or the network card
//! does). A viewer's video frame is a run of equal-sized packets, so this
//! turns one trip through the kernel's send path per packet into one per
//! frame and viewer. Pure planning here; `udp_batch.rs` sends.

use std::net::SocketAddr;
use std::ops::Range;

use confcast_media::room::{Datagram, Transport};

/// Segments per send: every Linux with GSO takes 64 (`UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Bytes per send: one UDP datagram's limit, less the headers' room.
pub const MAX_BYTES: usize = 64_000;
/// Datagrams passed over (left for a later send) while collecting one run;
/// bounds the work per datagram.
const MAX_PASSED: usize = 8;

/// One entry of a `sendmmsg` call: `datagrams` (positions in [`Plan::order`])
/// go to one address; more than one only with GSO, cut at `segment` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub datagrams: Range<usize>,
    /// The first datagram's length: every one before the last has it.
    pub segment: usize,
}

impl Message {
    pub fn is_segmented(&self) -> bool {
        self.datagrams.len() > 1
    }
}

/// The datagrams of one flush, in the order they are sent, grouped into
/// messages.
#[derive(Debug, Default)]
pub struct Plan {
    /// Indices into the datagrams given, in sending order.
    pub order: Vec<usize>,
    pub messages: Vec<Message>,
}

impl Plan {
    /// Groups `datagrams` for sending. Without `gso` every datagram is a
    /// message of its own, in order. With it, a run of equal-sized
    /// datagrams to one address (and a shorter one ending it) becomes one
    /// message. The order changes only where that is harmless: a datagram is
    /// moved ahead of those to the same address that it passes over only if
    /// it and each of them are RTP of different streams (SSRCs), so no
    /// stream, and nothing that is not RTP (ICE, DTLS, RTCP), is reordered.
    pub fn new(datagrams: &[Datagram], gso: bool) -> Self {
        let mut plan = Plan { order: Vec::with_capacity(datagrams.len()), messages: Vec::with_capacity(datagrams.len()) };
        let mut taken = vec![false; datagrams.len()];
        for first in 0..datagrams.len() {
            if taken[first] {
                continue;
            }
            taken[first] = true;
            let start = plan.order.len();
            plan.order.push(first);
            let segment = datagrams[first].contents.len();
            if gso && datagrams[first].transport == Transport::Udp {
                collect_run(datagrams, first, &mut taken, &mut plan.order);
            }
            plan.messages.push(Message { datagrams: start..plan.order.len(), segment });
        }
        plan
    }

    /// Every datagram of `order` a message of its own.
    pub fn plain(order: Vec<usize>) -> Self {
        let messages = (0..order.len()).map(|i| Message { datagrams: i..i + 1, segment: 0 }).collect();
        Plan { order, messages }
    }

    /// The datagrams of a message, as indices into the datagrams given.
    pub fn datagrams(&self, message: &Message) -> &[usize] {
        &self.order[message.datagrams.clone()]
    }

    /// How many messages from `first` on (at most `max`) can share one
    /// `sendmmsg` call, and the segment size they share. A call has one set
    /// of control messages, so one `UDP_SEGMENT` size: it fits every
    /// segmented message of the call, and every datagram sent whole is no
    /// longer than it (the kernel sends those as they are). `None`: no
    /// message of the call is segmented.
    pub fn call(&self, first: usize, max: usize, datagrams: &[Datagram]) -> (usize, Option<u16>) {
        let mut segment: Option<usize> = None;
        let mut longest_whole = 0;
        let mut count = 0;
        for message in self.messages[first..].iter().take(max) {
            if message.is_segmented() {
                if segment.is_some_and(|s| s != message.segment) || longest_whole > message.segment {
                    break;
                }
                segment = Some(message.segment);
            } else {
                let length = datagrams[self.order[message.datagrams.start]].contents.len();
                if segment.is_some_and(|s| length > s) {
                    break;
                }
                longest_whole = longest_whole.max(length);
            }
            count += 1;
        }
        // Segment sizes come from datagrams of at most MAX_BYTES.
        (count.max(1), segment.and_then(|s| u16::try_from(s).ok()))
    }
}

/// Adds to `order` the datagrams after `first` that can follow it in one
/// GSO send, marking them taken. Only RTP is grouped: datagrams of the first
/// one's size (of any stream), ended by a shorter one of its own stream (a
/// frame's last packet); others are passed over, see [`Plan::new`].
fn collect_run(datagrams: &[Datagram], first: usize, taken: &mut [bool], order: &mut Vec<usize>) {
    let head = &datagrams[first];
    let Some(stream) = rtp_ssrc(&head.contents) else { return };
    let segment = head.contents.len();
    let (mut count, mut bytes) = (1, segment);
    let mut passed: Vec<Option<u32>> = Vec::new();
    for next in first + 1..datagrams.len() {
        if taken[next] {
            continue;
        }
        let datagram = &datagrams[next];
        if !same_path(datagram, head.destination) {
            break;
        }
        let length = datagram.contents.len();
        let ssrc = rtp_ssrc(&datagram.contents);
        let fits = ssrc.is_some()
            && (length == segment || (length < segment && ssrc == Some(stream) && length > 0))
            && count < MAX_SEGMENTS
            && bytes + length <= MAX_BYTES;
        if !fits {
            if passed.len() == MAX_PASSED {
                break;
            }
            passed.push(ssrc);
            continue;
        }
        if !passed.iter().all(|p| p.is_some() && *p != ssrc) {
            break;
        }
        taken[next] = true;
        order.push(next);
        count += 1;
        bytes += length;
        if length < segment {
            break;
        }
    }
}

fn same_path(datagram: &Datagram, destination: SocketAddr) -> bool {
    datagram.transport == Transport::Udp && datagram.destination == destination
}

/// The SSRC of an RTP packet (SRTP leaves the header readable); `None` for
/// anything else: STUN, DTLS, RTCP (payload types 192-223, RFC 5761).
fn rtp_ssrc(packet: &[u8]) -> Option<u32> {
    let header: &[u8; 12] = packet.get(..12)?.try_into().ok()?;
    if header[0] >> 6 != 2 || (192..=223).contains(&header[1]) {
        return None;
    }
    Some(u32::from_be_bytes([header[8], header[9], header[10], header[11]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// An RTP packet of `len` bytes for stream `ssrc`.
    fn rtp(port: u16, ssrc: u32, len: usize) -> Datagram {
        let mut contents = vec![0; len];
        contents[0] = 0x80;
        contents[1] = 96;
        contents[8..12].copy_from_slice(&ssrc.to_be_bytes());
        Datagram { source: addr(1), destination: addr(port), contents, transport: Transport::Udp }
    }

    fn other(port: u16, first_byte: u8, len: usize) -> Datagram {
        let mut contents = vec![0; len];
        contents[0] = first_byte;
        Datagram { source: addr(1), destination: addr(port), contents, transport: Transport::Udp }
    }

    /// The messages as lists of datagram indices.
    fn groups(plan: &Plan) -> Vec<Vec<usize>> {
        plan.messages.iter().map(|m| plan.datagrams(m).to_vec()).collect()
    }

    #[test]
    fn a_frame_to_each_viewer_is_one_message() {
        // Two viewers, a frame of three full packets and a short last one each.
        let mut datagrams = Vec::new();
        for port in [10, 11] {
            for len in [1216, 1216, 1216, 500] {
                datagrams.push(rtp(port, 7, len));
            }
        }
        let plan = Plan::new(&datagrams, true);
        assert_eq!(groups(&plan), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(plan.messages[0].segment, 1216);
        // Both fit one call with segment size 1216.
        assert_eq!(plan.call(0, 64, &datagrams), (2, Some(1216)));
    }

    #[test]
    fn without_gso_every_datagram_is_its_own_message_in_order() {
        let datagrams: Vec<Datagram> = [1216, 1216, 500].into_iter().map(|len| rtp(10, 7, len)).collect();
        let plan = Plan::new(&datagrams, false);
        assert_eq!(groups(&plan), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(plan.call(0, 64, &datagrams), (3, None));
    }

    #[test]
    fn a_run_ends_at_a_shorter_datagram_and_a_longer_one_starts_anew() {
        // Sizes a browser's even split gives: 1100, 1100, 1101, 1101.
        let datagrams: Vec<Datagram> = [1100, 1100, 1101, 1101].into_iter().map(|len| rtp(10, 7, len)).collect();
        let plan = Plan::new(&datagrams, true);
        assert_eq!(groups(&plan), vec![vec![0, 1], vec![2, 3]]);
        // Two segment sizes: two calls.
        assert_eq!(plan.call(0, 64, &datagrams), (1, Some(1100)));
        assert_eq!(plan.call(1, 64, &datagrams), (1, Some(1101)));
        let shorter_last: Vec<Datagram> = [1101, 1101, 1100, 1100].into_iter().map(|len| rtp(10, 7, len)).collect();
        assert_eq!(groups(&Plan::new(&shorter_last, true)), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn another_stream_between_a_frames_packets_is_passed_over() {
        // Video, audio, video, video (the pacer alternates streams): the
        // video leaves as one message, the audio after it.
        let datagrams = vec![rtp(10, 7, 1216), rtp(10, 9, 120), rtp(10, 7, 1216), rtp(10, 7, 700)];
        let plan = Plan::new(&datagrams, true);
        assert_eq!(groups(&plan), vec![vec![0, 2, 3], vec![1]]);
        // The audio fits under the video's segment size: one call.
        assert_eq!(plan.call(0, 64, &datagrams), (2, Some(1216)));
    }

    #[test]
    fn a_stream_is_never_reordered_and_nothing_passes_non_rtp() {
        // Same SSRC in between: the run stops rather than pass it.
        let same_stream = vec![rtp(10, 7, 1216), rtp(10, 7, 300), rtp(10, 7, 1216)];
        assert_eq!(groups(&Plan::new(&same_stream, true)), vec![vec![0, 1], vec![2]]);
        // A longer packet of the same stream in between: not passed over
        // (but it can start a run that the shorter one after it ends).
        let longer = vec![rtp(10, 7, 1000), rtp(10, 7, 1216), rtp(10, 7, 1000)];
        assert_eq!(groups(&Plan::new(&longer, true)), vec![vec![0], vec![1, 2]]);
        // A shorter packet of another stream does not end a run.
        let audio_last = vec![rtp(10, 7, 1216), rtp(10, 9, 120), rtp(10, 7, 1216)];
        assert_eq!(groups(&Plan::new(&audio_last, true)), vec![vec![0, 2], vec![1]]);
        // RTCP (payload type 200) or DTLS (first byte 23) in between.
        let mut rtcp = rtp(10, 9, 1300);
        rtcp.contents[1] = 200;
        let with_rtcp = vec![rtp(10, 7, 1216), rtcp, rtp(10, 7, 1216)];
        assert_eq!(groups(&Plan::new(&with_rtcp, true)), vec![vec![0], vec![1], vec![2]]);
        let with_dtls = vec![rtp(10, 7, 1216), other(10, 23, 1300), rtp(10, 7, 1216)];
        assert_eq!(groups(&Plan::new(&with_dtls, true)), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn runs_stop_at_another_address_tcp_and_the_limits() {
        let datagrams = vec![rtp(10, 7, 1216), rtp(11, 7, 1216), rtp(10, 7, 1216)];
        assert_eq!(groups(&Plan::new(&datagrams, true)), vec![vec![0], vec![1], vec![2]]);
        let mut tcp = rtp(10, 7, 1216);
        tcp.transport = Transport::Tcp;
        let with_tcp = vec![tcp.clone(), rtp(10, 7, 1216), tcp];
        assert_eq!(groups(&Plan::new(&with_tcp, true)), vec![vec![0], vec![1], vec![2]]);
        // 100 equal datagrams: 64, then 36.
        let many: Vec<Datagram> = (0..100).map(|_| rtp(10, 7, 200)).collect();
        let plan = Plan::new(&many, true);
        assert_eq!(plan.messages.iter().map(|m| m.datagrams.len()).collect::<Vec<_>>(), vec![64, 36]);
        // 60 datagrams of 1,200 bytes: no more than MAX_BYTES in one.
        let big: Vec<Datagram> = (0..60).map(|_| rtp(10, 7, 1200)).collect();
        let plan = Plan::new(&big, true);
        assert_eq!(plan.messages.iter().map(|m| m.datagrams.len()).collect::<Vec<_>>(), vec![53, 7]);
        // Every datagram is sent exactly once.
        let mut all = plan.order.clone();
        all.sort_unstable();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
    }

    #[test]
    fn a_call_shares_one_segment_size() {
        // Viewer 10: a frame cut at 1216; viewer 11: audio (120 bytes, sent
        // whole); viewer 12: a frame cut at 1000; viewer 13: a 1300-byte
        // datagram whole.
        let datagrams = vec![
            rtp(10, 7, 1216),
            rtp(10, 7, 1216),
            rtp(11, 9, 120),
            rtp(12, 7, 1000),
            rtp(12, 7, 1000),
            rtp(13, 7, 1300),
            rtp(14, 7, 900),
        ];
        let plan = Plan::new(&datagrams, true);
        assert_eq!(groups(&plan), vec![vec![0, 1], vec![2], vec![3, 4], vec![5], vec![6]]);
        assert_eq!(plan.call(0, 64, &datagrams), (2, Some(1216)));
        assert_eq!(plan.call(2, 64, &datagrams), (1, Some(1000)));
        // Datagrams sent whole need no segment size.
        assert_eq!(plan.call(3, 64, &datagrams), (2, None));
        // At most `max` messages.
        assert_eq!(plan.call(0, 1, &datagrams), (1, Some(1216)));
        // A whole datagram longer than the segment size that follows ends the call.
        let long_first = vec![rtp(11, 9, 1300), rtp(10, 7, 1216), rtp(10, 7, 1216)];
        let plan = Plan::new(&long_first, true);
        assert_eq!(plan.call(0, 64, &long_first), (1, None));
        assert_eq!(plan.call(1, 64, &long_first), (1, Some(1216)));
    }

    #[test]
    fn plain_keeps_the_order_given() {
        let plan = Plan::plain(vec![4, 2, 9]);
        assert_eq!(groups(&plan), vec![vec![4], vec![2], vec![9]]);
    }
}
