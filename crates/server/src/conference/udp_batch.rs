//! Many datagrams per system call on the media socket (`recvmmsg` and
//! `sendmmsg`, the latter with UDP GSO: gso.rs). One task serves every
//! participant from this socket, and at a few hundred participants the fixed
//! cost of one `recvfrom`/`sendto` per packet is a large share of its time.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use confcast_media::room::Datagram;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::gso::Plan;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Largest datagram read; WebRTC packets stay under the path MTU, so a
/// longer one is not ours and is dropped.
const MAX_DATAGRAM: usize = 2048;

/// Reads up to [`BATCH`] datagrams at a time, each with the time the kernel
/// received it.
/// (nix's message headers hold raw pointers, so they are made per call:
/// the loop that owns these must stay `Send`.)
pub struct BatchReceiver {
    buffers: Vec<Vec<u8>>,
    /// The last batch: buffer index, length, sender and arrival of each
    /// datagram.
    received: Vec<(usize, usize, SocketAddr, Instant)>,
    /// The kernel stamps each datagram (`SO_TIMESTAMPNS`).
    stamped: bool,
}

impl BatchReceiver {
    /// Asks the kernel to stamp `socket`'s datagrams with their arrival
    /// time: a datagram that waits in the socket while the loop mixes a
    /// tick then still counts as arriving when it did, so the jitter
    /// buffers do not mistake the server's own busy moments for network
    /// jitter. Without stamps, arrival is when the batch is read.
    pub fn new(socket: &UdpSocket) -> Self {
        let stamped = setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_ok();
        if !stamped {
            tracing::info!("the kernel does not stamp received datagrams; arrival is when they are read");
        }
        Self {
            buffers: vec![vec![0; MAX_DATAGRAM]; BATCH],
            received: Vec::with_capacity(BATCH),
            stamped,
        }
    }

    /// Reads what the socket holds, without waiting. Returns how many
    /// datagrams were read (0 when none was waiting).
    pub fn try_receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let Self { buffers, received, stamped } = self;
        received.clear();
        let outcome = socket.try_io(Interest::READABLE, || {
            let control = stamped.then(|| nix::cmsg_space!(TimeSpec));
            let headers = &mut MultiHeaders::<SockaddrStorage>::preallocate(BATCH, control);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let messages = recvmmsg(fd, headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
                .map_err(io::Error::from)?;
            let clock = ReadClock::now();
            let mut count = 0;
            for (index, message) in messages.enumerate() {
                count += 1;
                let stamp = message.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|m| match m {
                        ControlMessageOwned::ScmTimestampns(t) => Some(t),
                        _ => None,
                    })
                });
                match message.address.as_ref().and_then(socket_addr) {
                    Some(from) if !message.flags.contains(MsgFlags::MSG_TRUNC) => {
                        received.push((index, message.bytes, from, clock.arrival(stamp)));
                    }
                    _ => metrics::counter!("media_datagrams_invalid_total").increment(1),
                }
            }
            Ok(count)
        });
        match outcome {
            Ok(count) => Ok(count),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// The datagrams of the last batch, with their senders and arrivals.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8], Instant)> + '_ {
        self.received
            .iter()
            .map(|&(index, len, from, at)| (from, &self.buffers[index][..len.min(MAX_DATAGRAM)], at))
    }
}

/// The kernel stamps datagrams on the wall clock; the loop works on the
/// monotonic one. Both read once per batch, so a stamp becomes "this long
/// before the read".
struct ReadClock {
    monotonic: Instant,
    wall: SystemTime,
}

/// A stamp further back than this is not believed (the wall clock was
/// stepped): the datagram counts as arriving at the read.
const MAX_WAIT: Duration = Duration::from_secs(1);

impl ReadClock {
    fn now() -> Self {
        ReadClock { monotonic: Instant::now(), wall: SystemTime::now() }
    }

    fn arrival(&self, stamp: Option<TimeSpec>) -> Instant {
        let Some(stamp) = stamp else { return self.monotonic };
        let stamped = SystemTime::UNIX_EPOCH + Duration::from(stamp);
        match self.wall.duration_since(stamped) {
            Ok(waited) if waited <= MAX_WAIT => self.monotonic.checked_sub(waited).unwrap_or(self.monotonic),
            // Stamped "after" the read, or too long ago: the clock moved.
            _ => self.monotonic,
        }
    }
}

/// Sends the media socket's datagrams, [`BATCH`] `sendmmsg` entries per
/// call, with UDP GSO where the kernel takes it (see gso.rs): a run of
/// equal-sized datagrams to one address (a video frame to one viewer) goes
/// through the kernel's send path once rather than once per datagram.
pub struct BatchSender {
    /// The kernel supports GSO and has not refused it on this socket.
    gso: bool,
}

impl BatchSender {
    pub fn new(socket: &UdpSocket) -> Self {
        // UDP_SEGMENT 0 changes nothing (sends without the control message
        // stay whole), and only a kernel that knows the option (Linux 4.18+)
        // accepts it.
        let gso = setsockopt(socket, sockopt::UdpGsoSegment, &0).is_ok();
        tracing::debug!(gso, "media socket: UDP segmentation offload");
        Self { gso }
    }

    /// Sends every datagram, waiting while the socket's buffer is full. One
    /// the kernel refuses (an unreachable address, say) is skipped and
    /// counted: it must not hold back the others. When the kernel refuses a
    /// GSO send itself (no checksum offload on the route: EIO; segments too
    /// long for its MTU: EINVAL or EMSGSIZE; ...) its datagrams and the rest
    /// are sent one by one, and if they go through that way, GSO stays off
    /// on this socket: nothing is lost.
    pub async fn send_all(&mut self, socket: &UdpSocket, datagrams: &[Datagram]) {
        self.send_with(&mut SocketCalls(socket), datagrams).await;
    }

    async fn send_with(&mut self, calls: &mut impl SendCall, datagrams: &[Datagram]) {
        let mut plan = Plan::new(datagrams, self.gso);
        let mut next = 0;
        // After a refused GSO send: its datagrams are the first `.0` of the
        // plain plan, and `.1` is the error.
        let mut refused: Option<(usize, io::Error)> = None;
        while next < plan.messages.len() {
            let (count, segment) = plan.call(next, BATCH, datagrams);
            match calls.send(datagrams, &plan, next..next + count, segment) {
                Ok(sent) => {
                    if let Some((end, error)) = refused.take_if(|(end, _)| next < *end) {
                        // Sent whole, the datagrams went: GSO was the problem.
                        tracing::warn!(%error, segments = end, "the kernel refused UDP GSO on the media socket; sending datagrams one by one from now on");
                        self.gso = false;
                    }
                    next += sent.max(1);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if calls.writable().await.is_err() {
                        return;
                    }
                }
                Err(error) if segment.is_some() => {
                    // sendmmsg reports an error only when the first entry
                    // failed: try it and the rest without GSO.
                    let first = &plan.messages[next];
                    refused = Some((first.datagrams.len(), error));
                    plan = Plan::plain(plan.order[first.datagrams.start..].to_vec());
                    next = 0;
                }
                Err(error) => {
                    let destination = datagrams[plan.datagrams(&plan.messages[next])[0]].destination;
                    tracing::debug!(%error, to = %destination, "media send failed");
                    metrics::counter!("media_send_errors_total").increment(1);
                    next += 1;
                }
            }
        }
    }
}

/// One `sendmmsg` call (apart from the socket, so that the fall-back can be
/// tested with a kernel that refuses).
trait SendCall {
    /// Sends the plan's `messages` in one call, cut at `segment` bytes with
    /// GSO when given; returns how many of them the kernel took.
    fn send(&mut self, datagrams: &[Datagram], plan: &Plan, messages: Range<usize>, segment: Option<u16>) -> io::Result<usize>;
    /// Waits until the socket takes more.
    async fn writable(&self) -> io::Result<()>;
}

struct SocketCalls<'s>(&'s UdpSocket);

impl SendCall for SocketCalls<'_> {
    fn send(&mut self, datagrams: &[Datagram], plan: &Plan, messages: Range<usize>, segment: Option<u16>) -> io::Result<usize> {
        let messages = &plan.messages[messages];
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else { return Ok(0) };
        let base = first.datagrams.start;
        let slices: Vec<IoSlice<'_>> =
            plan.order[base..last.datagrams.end].iter().map(|&i| IoSlice::new(&datagrams[i].contents)).collect();
        let entries: Vec<&[IoSlice<'_>]> =
            messages.iter().map(|m| &slices[m.datagrams.start - base..m.datagrams.end - base]).collect();
        let addresses: Vec<Option<SockaddrStorage>> = messages
            .iter()
            .map(|m| Some(SockaddrStorage::from(datagrams[plan.order[m.datagrams.start]].destination)))
            .collect();
        let fd = self.0.as_raw_fd();
        self.0.try_io(Interest::WRITABLE, || {
            let control: Vec<ControlMessage<'_>> = segment.as_ref().map(ControlMessage::UdpGsoSegments).into_iter().collect();
            let space = segment.map(|_| nix::cmsg_space!(u16));
            let headers = &mut MultiHeaders::<SockaddrStorage>::preallocate(entries.len(), space);
            let sent = sendmmsg(fd, headers, &entries, &addresses, &control, MsgFlags::MSG_DONTWAIT)
                .map_err(io::Error::from)?;
            Ok(sent.count())
        })
    }

    async fn writable(&self) -> io::Result<()> {
        self.0.writable().await
    }
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;

    async fn socket() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.expect("bind")
    }

    /// More datagrams than one batch, to two receivers, all arrive in order
    /// with their senders; a datagram longer than the buffer is dropped.
    #[tokio::test]
    async fn batches_reach_every_destination_in_order() {
        let (server, a, b) = (socket().await, socket().await, socket().await);
        let to = |socket: &UdpSocket, n: u8| Datagram {
            source: server.local_addr().expect("addr"),
            destination: socket.local_addr().expect("addr"),
            contents: vec![n; 10 + usize::from(n)],
            transport: Default::default(),
        };
        let datagrams: Vec<Datagram> = (0..150u8).map(|n| if n % 2 == 0 { to(&a, n) } else { to(&b, n) }).collect();
        BatchSender::new(&server).send_all(&server, &datagrams).await;

        for (receiver, parity) in [(&a, 0), (&b, 1)] {
            let mut batch = BatchReceiver::new(receiver);
            let mut got = Vec::new();
            while got.len() < 75 {
                receiver.readable().await.expect("readable");
                batch.try_receive(receiver).expect("receive");
                for (from, contents, _) in batch.datagrams() {
                    assert_eq!(from, server.local_addr().expect("addr"));
                    got.push(contents.to_vec());
                }
            }
            let expected: Vec<Vec<u8>> = (0..150u8).filter(|n| n % 2 == parity).map(|n| vec![n; 10 + usize::from(n)]).collect();
            assert_eq!(got, expected);
        }

        server.send_to(&[7; MAX_DATAGRAM + 1], a.local_addr().expect("addr")).await.expect("send");
        server.send_to(&[8; 20], a.local_addr().expect("addr")).await.expect("send");
        let mut batch = BatchReceiver::new(&a);
        let mut got = Vec::new();
        while got.is_empty() {
            a.readable().await.expect("readable");
            batch.try_receive(&a).expect("receive");
            got.extend(batch.datagrams().map(|(_, contents, _)| contents.to_vec()));
        }
        assert_eq!(got, vec![vec![8; 20]]);
    }

    /// A datagram that waited in the socket keeps the time it arrived, not
    /// the time it was read.
    #[tokio::test]
    async fn arrival_is_when_the_kernel_received_it() {
        let (server, a) = (socket().await, socket().await);
        let mut batch = BatchReceiver::new(&a);
        assert!(batch.stamped, "Linux stamps datagrams");
        let sent = Instant::now();
        server.send_to(&[1; 8], a.local_addr().expect("addr")).await.expect("send");
        std::thread::sleep(Duration::from_millis(50));
        a.readable().await.expect("readable");
        let read = Instant::now();
        batch.try_receive(&a).expect("receive");
        let (_, _, arrival) = batch.datagrams().next().expect("one datagram");
        assert!(arrival >= sent.checked_sub(Duration::from_millis(5)).expect("past"), "{:?} before sending", sent - arrival);
        assert!(read - arrival >= Duration::from_millis(45), "arrival only {:?} before the read", read - arrival);
    }

    #[test]
    fn a_stamp_from_the_future_or_the_distant_past_counts_as_the_read() {
        let clock = ReadClock::now();
        let from = |t: SystemTime| Some(TimeSpec::from(t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970")));
        assert_eq!(clock.arrival(None), clock.monotonic);
        assert_eq!(clock.arrival(from(clock.wall + Duration::from_secs(3))), clock.monotonic);
        assert_eq!(clock.arrival(from(clock.wall - Duration::from_secs(30))), clock.monotonic);
        assert_eq!(clock.arrival(from(clock.wall - Duration::from_millis(7))), clock.monotonic - Duration::from_millis(7));
    }

    /// A destination the kernel refuses does not stop the rest of the batch.
    #[tokio::test]
    async fn a_refused_destination_is_skipped() {
        let (server, a) = (socket().await, socket().await);
        let datagram = |destination: SocketAddr| Datagram { source: server.local_addr().expect("addr"), destination, contents: vec![1; 8], transport: Default::default() };
        // Port 0 cannot be sent to: EINVAL for that datagram alone.
        let refused: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let ok = a.local_addr().expect("addr");
        BatchSender::new(&server).send_all(&server, &[datagram(refused), datagram(ok), datagram(refused), datagram(ok)]).await;
        let mut batch = BatchReceiver::new(&a);
        let mut count = 0;
        while count < 2 {
            a.readable().await.expect("readable");
            batch.try_receive(&a).expect("receive");
            count += batch.datagrams().count();
        }
        assert_eq!(count, 2);
    }

    /// An RTP-like datagram of `len` bytes for stream `ssrc`, numbered `n`.
    fn rtp(server: &UdpSocket, to: &UdpSocket, ssrc: u32, n: u8, len: usize) -> Datagram {
        let mut contents = vec![n; len];
        contents[0] = 0x80;
        contents[1] = 96;
        contents[8..12].copy_from_slice(&ssrc.to_be_bytes());
        Datagram {
            source: server.local_addr().expect("addr"),
            destination: to.local_addr().expect("addr"),
            contents,
            transport: Default::default(),
        }
    }

    async fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut batch = BatchReceiver::new(socket);
        let mut got = Vec::new();
        while got.len() < count {
            socket.readable().await.expect("readable");
            batch.try_receive(socket).expect("receive");
            got.extend(batch.datagrams().map(|(_, contents, _)| contents.to_vec()));
        }
        got
    }

    /// With GSO (which loopback takes), a frame's packets and the audio
    /// between them reach each viewer as the datagrams they were, each
    /// stream in its order.
    #[tokio::test]
    async fn gso_sends_arrive_as_the_datagrams_they_were() {
        let (server, a, b) = (socket().await, socket().await, socket().await);
        let mut sender = BatchSender::new(&server);
        assert!(sender.gso, "Linux 4.18+ supports UDP_SEGMENT");
        let mut datagrams = Vec::new();
        for viewer in [&a, &b] {
            datagrams.push(rtp(&server, viewer, 7, 1, 1216));
            datagrams.push(rtp(&server, viewer, 9, 2, 120));
            datagrams.push(rtp(&server, viewer, 7, 3, 1216));
            datagrams.push(rtp(&server, viewer, 7, 4, 1216));
            datagrams.push(rtp(&server, viewer, 7, 5, 500));
        }
        sender.send_all(&server, &datagrams).await;
        for (viewer, sent) in [(&a, &datagrams[..5]), (&b, &datagrams[5..])] {
            let got = receive(viewer, 5).await;
            let video: Vec<&Vec<u8>> = got.iter().filter(|d| d[11] == 7).collect();
            let expected: Vec<&Vec<u8>> = sent.iter().map(|d| &d.contents).filter(|d| d[11] == 7).collect();
            assert_eq!(video, expected);
            assert!(got.contains(&sent[1].contents), "the audio arrives");
        }
        assert!(sender.gso);
    }

    /// An address the kernel refuses, in a GSO send: the send is retried
    /// datagram by datagram, the others arrive, and GSO stays on.
    #[tokio::test]
    async fn a_refused_address_in_a_gso_send_leaves_gso_on() {
        let (server, a) = (socket().await, socket().await);
        let refused = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut sender = BatchSender::new(&server);
        let mut datagrams: Vec<Datagram> = (1..=3).map(|n| rtp(&server, &refused, 7, n, 1000)).collect();
        for d in &mut datagrams {
            // Port 0 cannot be sent to: EINVAL.
            d.destination.set_port(0);
        }
        datagrams.extend((4..=6).map(|n| rtp(&server, &a, 7, n, 1000)));
        sender.send_all(&server, &datagrams).await;
        let got = receive(&a, 3).await;
        assert_eq!(got, datagrams[3..].iter().map(|d| d.contents.clone()).collect::<Vec<_>>());
        assert!(sender.gso);
    }

    /// A kernel that refuses some sends, recording the entries it took.
    struct Kernel {
        refuses: fn(&Datagram, Option<u16>) -> Option<Errno>,
        /// Per entry taken: its segment size when cut, and its datagrams.
        taken: Vec<(Option<u16>, Vec<usize>)>,
        gso_calls: usize,
    }

    impl Kernel {
        fn new(refuses: fn(&Datagram, Option<u16>) -> Option<Errno>) -> Self {
            Kernel { refuses, taken: Vec::new(), gso_calls: 0 }
        }
    }

    impl SendCall for Kernel {
        fn send(&mut self, datagrams: &[Datagram], plan: &Plan, messages: Range<usize>, segment: Option<u16>) -> io::Result<usize> {
            self.gso_calls += usize::from(segment.is_some());
            for (k, message) in plan.messages[messages.clone()].iter().enumerate() {
                let entry = plan.datagrams(message);
                if let Some(errno) = (self.refuses)(&datagrams[entry[0]], segment) {
                    // Like sendmmsg: an error only when the first entry fails.
                    return if k == 0 { Err(errno.into()) } else { Ok(k) };
                }
                self.taken.push((segment.filter(|_| entry.len() > 1), entry.to_vec()));
            }
            Ok(messages.len())
        }

        async fn writable(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn frames(ports: &[u16]) -> Vec<Datagram> {
        let mut datagrams = Vec::new();
        for &port in ports {
            for (n, len) in [(1u8, 1216), (2, 1216), (3, 400)] {
                let mut contents = vec![n; len];
                contents[..12].copy_from_slice(&[0x80, 96, 0, n, 0, 0, 0, 0, 0, 0, 0, 7]);
                datagrams.push(Datagram {
                    source: "127.0.0.1:1".parse().expect("addr"),
                    destination: SocketAddr::from(([127, 0, 0, 1], port)),
                    contents,
                    transport: Default::default(),
                });
            }
        }
        datagrams
    }

    /// A kernel (or route) that refuses GSO (EIO: no checksum offload;
    /// EINVAL, EMSGSIZE: segments over the MTU) gets every datagram one by
    /// one, in order, none lost, and no GSO send after that.
    #[tokio::test]
    async fn a_kernel_refusing_gso_gets_every_datagram_one_by_one() {
        let refusals: [fn(&Datagram, Option<u16>) -> Option<Errno>; 3] = [
            |_, segment| segment.map(|_| Errno::EIO),
            |_, segment| segment.map(|_| Errno::EINVAL),
            |_, segment| segment.map(|_| Errno::EMSGSIZE),
        ];
        for refuses in refusals {
            let mut kernel = Kernel::new(refuses);
            let mut sender = BatchSender { gso: true };
            let datagrams = frames(&[10, 11]);
            sender.send_with(&mut kernel, &datagrams).await;
            assert_eq!(kernel.taken, (0..6).map(|i| (None, vec![i])).collect::<Vec<_>>());
            assert!(!sender.gso);
            assert_eq!(kernel.gso_calls, 1);
            sender.send_with(&mut kernel, &datagrams).await;
            assert_eq!(kernel.taken.len(), 12);
            assert_eq!(kernel.gso_calls, 1, "no GSO once refused");
        }
    }

    /// Without a refusal, each frame is one entry cut at its packets' size.
    #[tokio::test]
    async fn frames_go_as_one_entry_each() {
        let mut kernel = Kernel::new(|_, _| None);
        let mut sender = BatchSender { gso: true };
        sender.send_with(&mut kernel, &frames(&[10, 11])).await;
        assert_eq!(kernel.taken, vec![(Some(1216), vec![0, 1, 2]), (Some(1216), vec![3, 4, 5])]);
        assert_eq!(kernel.gso_calls, 1);
    }

    /// One address refused (in a GSO send and alone): the others' datagrams
    /// go, and GSO stays on for the next flush.
    #[tokio::test]
    async fn a_refused_address_is_not_a_refusal_of_gso() {
        let mut kernel = Kernel::new(|d, _| (d.destination.port() == 10).then_some(Errno::EINVAL));
        let mut sender = BatchSender { gso: true };
        let datagrams = frames(&[10, 11]);
        sender.send_with(&mut kernel, &datagrams).await;
        assert_eq!(kernel.taken, vec![(None, vec![3]), (None, vec![4]), (None, vec![5])]);
        assert!(sender.gso);
        kernel.taken.clear();
        sender.send_with(&mut kernel, &frames(&[11])).await;
        assert_eq!(kernel.taken, vec![(Some(1216), vec![0, 1, 2])]);
    }
}
