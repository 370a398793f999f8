//! ICE-TCP (RFC 6544): media over TCP for clients whose UDP is blocked.
//!
//! The server offers a passive TCP host candidate beside its UDP one; a
//! browser that cannot reach the UDP port connects to this listener instead
//! and sends the same STUN, DTLS, RTP and RTCP packets, each framed with a
//! 2-byte big-endian length (RFC 4571). Every connection gets one task that
//! de-frames what it reads into [`TcpEvent::Packet`]s for the media loop
//! (which routes them exactly like datagrams) and writes the frames the loop
//! queues for it. A connection that sends bad framing, a frame longer than
//! [`MAX_FRAME`], something that is not STUN first, or nothing for
//! [`IDLE_TIMEOUT`] is closed with a log line; nothing else is disturbed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest frame accepted: WebRTC packets stay under the path MTU whatever
/// carries them (the same bound as a UDP datagram on the media socket).
pub const MAX_FRAME: usize = 2048;
/// Connections open at once; more are refused until some close.
const MAX_CONNECTIONS: usize = 10_000;
/// The first frame (a STUN binding request) must come this soon.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that sends nothing this long is closed (ICE consent checks
/// arrive every few seconds on a live one).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames waiting to be written to one connection; past this they are
/// dropped (counted), as the network drops datagrams, and the loop never waits.
const WRITE_QUEUE: usize = 512;
/// Events waiting for the media loop; a full queue holds the readers (and,
/// through TCP's window, the senders).
const EVENT_QUEUE: usize = 4096;
/// Events handled per wake-up of the media loop.
const EVENTS_PER_WAKE: usize = 64;

/// Why a connection's byte stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A zero-length frame.
    Empty,
    /// A frame longer than [`MAX_FRAME`] (its announced length).
    TooLong(usize),
    /// A frame that is neither STUN, DTLS nor RTP/RTCP (RFC 7983), or a
    /// first frame that is not STUN; the first byte.
    NotMedia(u8),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Empty => write!(f, "an empty frame"),
            FrameError::TooLong(len) => write!(f, "a frame of {len} bytes (at most {MAX_FRAME})"),
            FrameError::NotMedia(first) => write!(f, "a frame that is not STUN, DTLS or RTP (first byte {first})"),
        }
    }
}

/// Turns a TCP byte stream back into RFC 4571 frames, however the reads
/// cut it.
#[derive(Debug, Default)]
pub struct Deframer {
    buffer: Vec<u8>,
    /// Where the next frame starts in `buffer`.
    start: usize,
    /// Frames taken so far (the first must be STUN).
    frames: u64,
}

impl Deframer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes as they were read.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4 * MAX_FRAME {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` until more bytes arrive, or why the
    /// stream is unusable (then the connection must close).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let waiting = &self.buffer[self.start..];
        let [high, low, ..] = *waiting else { return Ok(None) };
        let len = usize::from(u16::from_be_bytes([high, low]));
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > MAX_FRAME {
            return Err(FrameError::TooLong(len));
        }
        if waiting.len() < 2 + len {
            return Ok(None);
        }
        let first = waiting[2];
        let stun = first <= 3;
        let dtls = (20..=63).contains(&first);
        let rtp = (128..=191).contains(&first);
        if !(stun || (self.frames > 0 && (dtls || rtp))) {
            return Err(FrameError::NotMedia(first));
        }
        let frame = self.start + 2..self.start + 2 + len;
        self.start += 2 + len;
        self.frames += 1;
        Ok(Some(&self.buffer[frame]))
    }
}

/// `contents` with its RFC 4571 length in front; `None` if it is too long
/// to frame (never for what str0m sends).
pub fn frame(contents: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(contents.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + contents.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(contents);
    Some(framed)
}

/// What the connections tell the media loop.
#[derive(Debug)]
pub enum TcpEvent {
    Opened { peer: SocketAddr, writer: mpsc::Sender<Vec<u8>> },
    Packet { peer: SocketAddr, contents: Vec<u8> },
    Closed { peer: SocketAddr },
}

/// The media loop's side: the events of every connection and where to
/// write to each.
pub struct IceTcp {
    events: mpsc::Receiver<TcpEvent>,
    writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

/// Binds the listener (before the media thread starts, so a taken port is
/// an error at start-up).
pub fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    listen(address).map_err(|e| std::io::Error::new(e.kind(), format!("ICE-TCP port {}: {e}", address.port())))
}

fn listen(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl IceTcp {
    /// Starts accepting on `listener`; call it inside the media loop's runtime.
    pub fn start(listener: std::net::TcpListener) -> std::io::Result<IceTcp> {
        let listener = TcpListener::from_std(listener)?;
        let (sender, events) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(accept(listener, sender));
        Ok(IceTcp { events, writers: HashMap::new() })
    }

    /// Waits for the next event (for ever when there is no listener).
    pub async fn next(tcp: &mut Option<IceTcp>) -> TcpEvent {
        match tcp {
            Some(tcp) => match tcp.events.recv().await {
                Some(event) => event,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Handles `first` and whatever else is waiting (a batch at most);
    /// the packets received are added to `packets`.
    pub fn handle(&mut self, first: TcpEvent, packets: &mut Vec<(SocketAddr, Vec<u8>)>) {
        let mut event = Some(first);
        for _ in 0..EVENTS_PER_WAKE {
            let Some(current) = event.take().or_else(|| self.events.try_recv().ok()) else { break };
            match current {
                TcpEvent::Opened { peer, writer } => {
                    self.writers.insert(peer, writer);
                }
                TcpEvent::Packet { peer, contents } => packets.push((peer, contents)),
                TcpEvent::Closed { peer } => {
                    self.writers.remove(&peer);
                }
            }
        }
    }

    /// Queues `contents` for the connection from `destination`. Without
    /// such a connection, or when its queue is full, the packet is dropped
    /// and counted.
    pub fn send(&self, destination: SocketAddr, contents: &[u8]) {
        let queued = self
            .writers
            .get(&destination)
            .zip(frame(contents))
            .is_some_and(|(writer, framed)| writer.try_send(framed).is_ok());
        if !queued {
            metrics::counter!("media_tcp_frames_dropped_total").increment(1);
        }
    }
}

async fn accept(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%error, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            metrics::counter!("media_tcp_connections_refused_total").increment(1);
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (events, open) = (events.clone(), open.clone());
        tokio::spawn(async move {
            connection(stream, peer, events).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One connection: frames read go to the loop, frames queued are written.
async fn connection(mut stream: TcpStream, peer: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let _ = stream.set_nodelay(true);
    let (writer, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    if events.send(TcpEvent::Opened { peer, writer }).await.is_err() {
        return;
    }
    metrics::gauge!("media_tcp_connections").increment(1.0);
    let (mut reader, mut write_half) = stream.split();
    let mut deframer = Deframer::new();
    let mut buffer = vec![0u8; 8 * 1024];
    let mut out = Vec::new();
    let mut deadline = tokio::time::Instant::now() + FIRST_FRAME_TIMEOUT;
    // Ok: an ordinary end (with why, if not a clean close); Err: refused input.
    let outcome: Result<Option<String>, String> = loop {
        tokio::select! {
            // A browser may open a connection and never use it, when UDP won.
            () = tokio::time::sleep_until(deadline) => break Ok(Some(if deframer.frames == 0 {
                format!("no STUN request within {} s", FIRST_FRAME_TIMEOUT.as_secs())
            } else {
                format!("nothing received for {} s", IDLE_TIMEOUT.as_secs())
            })),
            read = reader.read(&mut buffer) => match read {
                Ok(0) => break Ok(None),
                Ok(n) => {
                    deframer.push(&buffer[..n]);
                    let mut error = None;
                    loop {
                        match deframer.next_frame() {
                            Ok(Some(frame)) => {
                                deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
                                let contents = frame.to_vec();
                                if events.send(TcpEvent::Packet { peer, contents }).await.is_err() {
                                    error = Some(Ok(Some("the media loop stopped".to_owned())));
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                error = Some(Err(format!("bad framing: {e}")));
                                break;
                            }
                        }
                    }
                    if let Some(end) = error {
                        break end;
                    }
                }
                Err(error) => break Ok(Some(error.to_string())),
            },
            frame = queue.recv() => match frame {
                Some(frame) => {
                    out.clear();
                    out.extend_from_slice(&frame);
                    // Whatever else is queued goes in the same write.
                    while out.len() < 64 * 1024 {
                        match queue.try_recv() {
                            Ok(more) => out.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    if let Err(error) = write_half.write_all(&out).await {
                        break Ok(Some(error.to_string()));
                    }
                }
                None => break Ok(None),
            },
        }
    };
    match outcome {
        Ok(None) => tracing::debug!(%peer, "ICE-TCP connection closed"),
        Ok(Some(reason)) => tracing::debug!(%peer, %reason, "ICE-TCP connection closed"),
        Err(reason) => {
            metrics::counter!("media_tcp_connections_refused_total").increment(1);
            tracing::info!(%peer, %reason, "ICE-TCP connection closed");
        }
    }
    metrics::gauge!("media_tcp_connections").decrement(1.0);
    let _ = events.send(TcpEvent::Closed { peer }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(len: usize) -> Vec<u8> {
        let mut packet = vec![0u8; len];
        packet[0] = 0x00;
        packet[1] = 0x01;
        packet
    }

    fn frames(deframer: &mut Deframer) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(frame) = deframer.next_frame()? {
            out.push(frame.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn frames_survive_any_cut_of_the_stream() {
        let packets = [stun(20), vec![22u8; 300], vec![0x80; MAX_FRAME], vec![0x90; 1]];
        let stream: Vec<u8> = packets.iter().flat_map(|p| frame(p).expect("frame")).collect();
        for chunk in [1, 2, 3, 7, 100, stream.len()] {
            let mut deframer = Deframer::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                deframer.push(piece);
                got.extend(frames(&mut deframer).expect("valid"));
            }
            assert_eq!(got, packets.to_vec(), "read {chunk} bytes at a time");
        }
    }

    #[test]
    fn a_long_stream_does_not_grow_the_buffer() {
        let mut deframer = Deframer::new();
        deframer.push(&frame(&stun(20)).expect("frame"));
        assert_eq!(frames(&mut deframer).expect("valid").len(), 1);
        let rtp = frame(&[0x80; 1200]).expect("frame");
        for _ in 0..10_000 {
            deframer.push(&rtp[..500]);
            deframer.push(&rtp[500..]);
            assert_eq!(frames(&mut deframer).expect("valid").len(), 1);
        }
        assert!(deframer.buffer.capacity() < 16 * MAX_FRAME, "{}", deframer.buffer.capacity());
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let mut deframer = Deframer::new();
        deframer.push(&[0x08, 0x01]);
        assert_eq!(deframer.next_frame(), Err(FrameError::TooLong(2049)));
        let mut deframer = Deframer::new();
        deframer.push(&[0xff]);
        assert_eq!(deframer.next_frame(), Ok(None));
        deframer.push(&[0xff]);
        assert_eq!(deframer.next_frame(), Err(FrameError::TooLong(65535)));
    }

    #[test]
    fn garbage_is_refused() {
        // An HTTP request is read as a huge length.
        let mut deframer = Deframer::new();
        deframer.push(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(deframer.next_frame(), Err(FrameError::TooLong(_))));
        // Well framed, but not a media packet.
        let mut deframer = Deframer::new();
        deframer.push(&frame(&stun(20)).expect("frame"));
        deframer.push(&frame(b"hello").expect("frame"));
        assert_eq!(deframer.next_frame().map(|f| f.map(<[u8]>::len)), Ok(Some(20)));
        assert_eq!(deframer.next_frame(), Err(FrameError::NotMedia(b'h')));
        // The first frame must be STUN, not DTLS or RTP.
        let mut deframer = Deframer::new();
        deframer.push(&frame(&[0x80; 40]).expect("frame"));
        assert_eq!(deframer.next_frame(), Err(FrameError::NotMedia(0x80)));
        let mut deframer = Deframer::new();
        deframer.push(&[0, 0]);
        assert_eq!(deframer.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn framing_puts_the_length_first() {
        assert_eq!(frame(&[1, 2, 3]), Some(vec![0, 3, 1, 2, 3]));
        assert_eq!(frame(&vec![0; 65_536]), None);
    }

    /// Over a real socket: a client that sends a bad frame is closed and
    /// the loop hears `Closed`; a good one's packets arrive and what the
    /// loop sends comes back framed.
    #[tokio::test]
    async fn connections_deliver_frames_and_bad_ones_are_closed() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let address = listener.local_addr().expect("addr");
        let mut tcp = Some(IceTcp::start(listener).expect("start"));
        let mut packets = Vec::new();

        let mut bad = TcpStream::connect(address).await.expect("connect");
        bad.write_all(&[0xff, 0xff, 1, 2, 3]).await.expect("write");
        let mut peer_closed = None;
        while peer_closed.is_none() {
            let event = tokio::time::timeout(Duration::from_secs(5), IceTcp::next(&mut tcp)).await.expect("an event");
            if let TcpEvent::Closed { peer } = event {
                peer_closed = Some(peer);
            }
        }
        assert_eq!(peer_closed, Some(bad.local_addr().expect("addr")));
        let mut rest = Vec::new();
        assert_eq!(bad.read_to_end(&mut rest).await.expect("closed"), 0);

        let mut good = TcpStream::connect(address).await.expect("connect");
        let mut bytes = frame(&stun(20)).expect("frame");
        bytes.extend(frame(&[0x80; 100]).expect("frame"));
        good.write_all(&bytes[..7]).await.expect("write");
        good.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(20)).await;
        good.write_all(&bytes[7..]).await.expect("write");
        while packets.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(5), IceTcp::next(&mut tcp)).await.expect("an event");
            tcp.as_mut().expect("tcp").handle(event, &mut packets);
        }
        let from = good.local_addr().expect("addr");
        assert_eq!(packets, vec![(from, stun(20)), (from, vec![0x80; 100])]);
        tcp.as_ref().expect("tcp").send(from, &[0x80, 1, 2]);
        let mut back = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), good.read_exact(&mut back)).await.expect("in time").expect("read");
        assert_eq!(back, [0, 3, 0x80, 1, 2]);
    }
}
