//! Many datagrams per system call on the media socket (`recvmmsg` and
//! `sendmmsg`). One task serves every participant from this socket, and at a
//! few hundred participants the fixed cost of one `recvfrom`/`sendto` per
//! packet is a large share of its time.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use confcast_media::room::Datagram;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Largest datagram read; WebRTC packets stay under the path MTU, so a
/// longer one is not ours and is dropped.
const MAX_DATAGRAM: usize = 2048;

/// Reads up to [`BATCH`] datagrams at a time.
/// (nix's message headers hold raw pointers, so they are made per call:
/// the loop that owns these must stay `Send`.)
pub struct BatchReceiver {
    buffers: Vec<Vec<u8>>,
    /// The last batch: buffer index, length and sender of each datagram.
    received: Vec<(usize, usize, SocketAddr)>,
}

impl BatchReceiver {
    pub fn new() -> Self {
        Self {
            buffers: vec![vec![0; MAX_DATAGRAM]; BATCH],
            received: Vec::with_capacity(BATCH),
        }
    }

    /// Reads what the socket holds, without waiting. Returns how many
    /// datagrams were read (0 when none was waiting).
    pub fn try_receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let Self { buffers, received } = self;
        received.clear();
        let outcome = socket.try_io(Interest::READABLE, || {
            let headers = &mut MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let messages = recvmmsg(fd, headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
                .map_err(io::Error::from)?;
            let mut count = 0;
            for (index, message) in messages.enumerate() {
                count += 1;
                match message.address.as_ref().and_then(socket_addr) {
                    Some(from) if !message.flags.contains(MsgFlags::MSG_TRUNC) => {
                        received.push((index, message.bytes, from));
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

    /// The datagrams of the last batch, with their senders.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.received
            .iter()
            .map(|&(index, len, from)| (from, &self.buffers[index][..len.min(MAX_DATAGRAM)]))
    }
}

/// Sends every datagram, [`BATCH`] per call, waiting while the socket's
/// buffer is full. One the kernel refuses (an unreachable address, say) is
/// skipped and counted: it must not hold back the others.
pub async fn send_all(socket: &UdpSocket, datagrams: &[Datagram]) {
    {
        let fd = socket.as_raw_fd();
        let mut offset = 0;
        while offset < datagrams.len() {
            let chunk = &datagrams[offset..datagrams.len().min(offset + BATCH)];
            let addresses: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|d| Some(SockaddrStorage::from(d.destination)))
                .collect();
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|d| [IoSlice::new(&d.contents)]).collect();
            let outcome = socket.try_io(Interest::WRITABLE, || {
                let headers = &mut MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
                let sent = sendmmsg(fd, headers, &slices, &addresses, [], MsgFlags::MSG_DONTWAIT)
                    .map_err(io::Error::from)?;
                Ok(sent.count())
            });
            match outcome {
                Ok(sent) => offset += sent.max(1),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    // sendmmsg reports an error only when the first datagram failed.
                    tracing::debug!(%error, to = %chunk[0].destination, "media send failed");
                    metrics::counter!("media_send_errors_total").increment(1);
                    offset += 1;
                }
            }
        }
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
        send_all(&server, &datagrams).await;

        for (receiver, parity) in [(&a, 0), (&b, 1)] {
            let mut batch = BatchReceiver::new();
            let mut got = Vec::new();
            while got.len() < 75 {
                receiver.readable().await.expect("readable");
                batch.try_receive(receiver).expect("receive");
                for (from, contents) in batch.datagrams() {
                    assert_eq!(from, server.local_addr().expect("addr"));
                    got.push(contents.to_vec());
                }
            }
            let expected: Vec<Vec<u8>> = (0..150u8).filter(|n| n % 2 == parity).map(|n| vec![n; 10 + usize::from(n)]).collect();
            assert_eq!(got, expected);
        }

        server.send_to(&[7; MAX_DATAGRAM + 1], a.local_addr().expect("addr")).await.expect("send");
        server.send_to(&[8; 20], a.local_addr().expect("addr")).await.expect("send");
        let mut batch = BatchReceiver::new();
        let mut got = Vec::new();
        while got.is_empty() {
            a.readable().await.expect("readable");
            batch.try_receive(&a).expect("receive");
            got.extend(batch.datagrams().map(|(_, contents)| contents.to_vec()));
        }
        assert_eq!(got, vec![vec![8; 20]]);
    }

    /// A destination the kernel refuses does not stop the rest of the batch.
    #[tokio::test]
    async fn a_refused_destination_is_skipped() {
        let (server, a) = (socket().await, socket().await);
        let datagram = |destination: SocketAddr| Datagram { source: server.local_addr().expect("addr"), destination, contents: vec![1; 8], transport: Default::default() };
        // Port 0 cannot be sent to: EINVAL for that datagram alone.
        let refused: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let ok = a.local_addr().expect("addr");
        send_all(&server, &[datagram(refused), datagram(ok), datagram(refused), datagram(ok)]).await;
        let mut batch = BatchReceiver::new();
        let mut count = 0;
        while count < 2 {
            a.readable().await.expect("readable");
            batch.try_receive(&a).expect("receive");
            count += batch.datagrams().count();
        }
        assert_eq!(count, 2);
    }
}
