//! DTLS for every WebRTC peer of the server, through OpenSSL.
//!
//! str0m's own DTLS (dimpl) signs and verifies only ECDSA. Browsers use
//! ECDSA certificates, but GStreamer's `webrtcbin` (and so Debian's
//! `simple-whip-client` and other GStreamer-based encoders) present an RSA
//! certificate, which dimpl refuses: such an encoder could not publish over
//! WHIP. OpenSSL speaks DTLS 1.2 with either kind. SRTP, SHA and HMAC stay
//! with str0m's aws-lc-rs provider; only the handshake changes.
//!
//! The handshake is driven the sans-IO way: datagrams in through
//! [`DtlsInstance::handle_packet`], datagrams out through `poll_output`,
//! time as an input. OpenSSL itself keeps the handshake's retransmission
//! timer on the wall clock; the instance only decides when to give it a
//! chance to retransmit ([`RETRY`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslContextBuilder};
use openssl::ssl::{SslMethod, SslOptions, SslStream, SslVerifyMode};
use openssl::x509::X509;
use str0m::RtcConfig;
use str0m::crypto::dtls::{DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion};
use str0m::crypto::dtls::{KeyingMaterial, ProtocolVersion, SrtpProfile};
use str0m::crypto::{CryptoError, CryptoProvider};

/// A new peer's configuration: OpenSSL DTLS with the process's certificate.
pub(crate) fn peer_config() -> RtcConfig {
    let config = RtcConfig::new().set_crypto_provider(crypto_provider());
    match certificate() {
        Some(cert) => config.set_dtls_cert(cert),
        None => config,
    }
}

/// One DTLS certificate (ECDSA P-256) for every peer of the process.
/// Generating a key pair per peer costs tens of milliseconds of CPU at each
/// join; browsers pin the fingerprint per connection from the SDP, so sharing
/// it is safe.
fn certificate() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

/// str0m's default provider with the DTLS handshake swapped for OpenSSL's.
fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            static OPENSSL: OpensslDtls = OpensslDtls;
            Arc::new(CryptoProvider { dtls_provider: &OPENSSL, ..str0m::crypto::from_feature_flags() })
        })
        .clone()
}

/// How often a handshake in progress is given the chance to retransmit its
/// last flight (OpenSSL retransmits only once its own timer, 1 s doubling, ran out).
const RETRY: Duration = Duration::from_millis(250);

/// Datagrams waiting for OpenSSL; a peer flooding us loses the oldest.
const MAX_INCOMING: usize = 64;

/// Plaintext records waiting for str0m (data channels); beyond this they are dropped.
const MAX_APPLICATION_DATA: usize = 256;

/// Suites a WebRTC peer may pick: ECDHE with AES-GCM or ChaCha20 first, for
/// an ECDSA or an RSA certificate on the other side; CBC last for old stacks.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA";

const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";

/// RFC 5764's exporter label for the SRTP keys.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

#[derive(Debug)]
struct OpensslDtls;

impl DtlsProvider for OpensslDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        if dtls_version != DtlsVersion::Dtls12 {
            return Err(CryptoError::Other(format!("OpenSSL DTLS here speaks DTLS 1.2 only, not {dtls_version}")));
        }
        let context = context(cert)?;
        let mut ssl = Ssl::new(&context).map_err(openssl_error)?;
        if let Some(mtu) = mtu {
            ssl.set_mtu(mtu.min(u32::MAX as usize) as u32).map_err(openssl_error)?;
        }
        Ok(Box::new(OpensslDtlsInstance::new(ssl, now)))
    }
}

/// The OpenSSL context for `cert`, built once per certificate (parsing the
/// key and certificate for every join would be wasted work).
fn context(cert: &DtlsCert) -> Result<SslContext, CryptoError> {
    static CACHE: Mutex<Option<(Vec<u8>, SslContext)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((der, context)) = cache.as_ref() {
        if *der == cert.certificate {
            return Ok(context.clone());
        }
    }
    let context = build_context(cert).map_err(openssl_error)?;
    *cache = Some((cert.certificate.clone(), context.clone()));
    Ok(context)
}

fn build_context(cert: &DtlsCert) -> Result<SslContext, openssl::error::ErrorStack> {
    let mut builder = SslContextBuilder::new(SslMethod::dtls())?;
    builder.set_cipher_list(CIPHERS)?;
    builder.set_tlsext_use_srtp(SRTP_PROFILES)?;
    // The peer's certificate is self-signed; it is checked against the SDP's
    // fingerprint by str0m (PeerCert output), so any certificate passes here,
    // but one must be sent.
    builder.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, |_, _| true);
    let certificate = X509::from_der(&cert.certificate)?;
    let key = PKey::private_key_from_der(&cert.private_key)?;
    builder.set_certificate(&certificate)?;
    builder.set_private_key(&key)?;
    builder.check_private_key()?;
    // The MTU comes from str0m (set_mtu), not from a socket we do not have.
    builder.set_options(SslOptions::NO_QUERY_MTU | SslOptions::SINGLE_ECDH_USE | SslOptions::NO_DTLSV1);
    Ok(builder.build())
}

fn openssl_error(e: openssl::error::ErrorStack) -> CryptoError {
    CryptoError::Other(format!("OpenSSL: {e}"))
}

/// The datagrams between OpenSSL and str0m: each read hands OpenSSL one whole
/// datagram, each write from OpenSSL is one datagram (DTLS never splits a
/// record across datagrams).
#[derive(Debug, Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than OpenSSL's buffer is cut, and then fails its
        // record's checks: it is dropped, as an oversized datagram would be.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Phase {
    /// Before `set_active`: nothing sent or accepted yet.
    Waiting(Ssl, Datagrams),
    Handshaking(MidHandshakeSslStream<Datagrams>),
    Open(SslStream<Datagrams>),
    /// The handshake failed or the peer closed: everything is ignored.
    Over(Datagrams),
}

/// What the handshake produced that str0m has not taken yet, in the order
/// str0m wants it: the peer's certificate (checked against the SDP), the
/// SRTP keys, then "connected".
#[derive(Debug, Default)]
struct Pending {
    peer_cert: Option<Vec<u8>>,
    keys: Option<(Vec<u8>, SrtpProfile)>,
    connected: bool,
    application_data: VecDeque<Vec<u8>>,
    close_notify: bool,
}

struct OpensslDtlsInstance {
    phase: Option<Phase>,
    active: Option<bool>,
    pending: Pending,
    /// When the handshake next gets a chance to retransmit.
    retry_at: Instant,
    failure: Option<String>,
    /// Set once everything is handed out after the handshake: until the next
    /// input nothing can come out, and str0m asks after every packet it
    /// sends, so the answer is given without looking.
    idle_until: Option<Instant>,
}

impl std::fmt::Debug for OpensslDtlsInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslDtlsInstance").field("active", &self.active).field("failure", &self.failure).finish()
    }
}

impl OpensslDtlsInstance {
    fn new(ssl: Ssl, now: Instant) -> Self {
        OpensslDtlsInstance {
            phase: Some(Phase::Waiting(ssl, Datagrams::default())),
            active: None,
            pending: Pending::default(),
            retry_at: now + RETRY,
            failure: None,
            idle_until: None,
        }
    }

    fn datagrams(&mut self) -> Option<&mut Datagrams> {
        match self.phase.as_mut()? {
            Phase::Waiting(_, io) | Phase::Over(io) => Some(io),
            Phase::Handshaking(mid) => Some(mid.get_mut()),
            Phase::Open(stream) => Some(stream.get_mut()),
        }
    }

    /// Moves the handshake on as far as the datagrams at hand allow.
    fn drive(&mut self) {
        let Some(active) = self.active else { return };
        let result = match self.phase.take() {
            Some(Phase::Waiting(ssl, io)) => {
                if active {
                    ssl.connect(io)
                } else {
                    ssl.accept(io)
                }
            }
            Some(Phase::Handshaking(mid)) => mid.handshake(),
            other => {
                self.phase = other;
                return;
            }
        };
        match result {
            Ok(stream) => {
                self.opened(&stream);
                self.phase = Some(Phase::Open(stream));
                self.read_application_data();
            }
            Err(HandshakeError::WouldBlock(mid)) => self.phase = Some(Phase::Handshaking(mid)),
            Err(HandshakeError::SetupFailure(e)) => self.fail(format!("DTLS setup failed: {e}"), Datagrams::default()),
            Err(HandshakeError::Failure(mid)) => {
                let reason = format!("DTLS handshake failed: {}", mid.error());
                let mut mid = mid;
                // The alert OpenSSL wrote, if any, still goes out.
                let io = std::mem::take(mid.get_mut());
                self.fail(reason, io);
            }
        }
    }

    fn fail(&mut self, reason: String, io: Datagrams) {
        self.failure = Some(reason);
        self.phase = Some(Phase::Over(Datagrams { incoming: VecDeque::new(), outgoing: io.outgoing }));
    }

    /// The handshake is done: note the peer's certificate and export the SRTP keys.
    fn opened(&mut self, stream: &SslStream<Datagrams>) {
        let ssl = stream.ssl();
        let peer_cert = ssl.peer_certificate().and_then(|c| c.to_der().ok());
        let profile = ssl.selected_srtp_profile().and_then(|p| srtp_profile(p.id()));
        match (peer_cert, profile) {
            (Some(cert), Some(profile)) => {
                let mut keys = vec![0; profile.keying_material_len()];
                if let Err(e) = ssl.export_keying_material(&mut keys, SRTP_EXPORTER_LABEL, None) {
                    self.failure = Some(format!("exporting the SRTP keys failed: {e}"));
                    return;
                }
                self.pending.peer_cert = Some(cert);
                self.pending.keys = Some((keys, profile));
                self.pending.connected = true;
            }
            (None, _) => self.failure = Some("the peer sent no certificate".into()),
            (_, None) => self.failure = Some("no SRTP profile was agreed".into()),
        }
    }

    /// Reads what arrived after the handshake: data-channel records, the
    /// peer's close_notify, and retransmitted handshake flights (which
    /// OpenSSL answers by itself).
    fn read_application_data(&mut self) {
        let Some(Phase::Open(stream)) = self.phase.as_mut() else { return };
        let mut buf = [0u8; 2048];
        loop {
            match stream.ssl_read(&mut buf) {
                Ok(n) => {
                    if self.pending.application_data.len() < MAX_APPLICATION_DATA {
                        self.pending.application_data.push_back(buf[..n].to_vec());
                    }
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.pending.close_notify = true;
                    return;
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => return,
                // A bad record is dropped by OpenSSL; anything else ends the read.
                Err(_) => return,
            }
        }
    }
}

impl DtlsInstance for OpensslDtlsInstance {
    fn set_active(&mut self, active: bool) {
        self.idle_until = None;
        if self.active.is_none() {
            self.active = Some(active);
            // A client speaks first (ClientHello).
            if active {
                self.drive();
            }
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.idle_until = None;
        if self.failure.is_some() || self.pending.close_notify {
            return Ok(());
        }
        // str0m hands an empty packet to a new client to make it speak first;
        // an empty datagram would read as end of file to OpenSSL.
        if !packet.is_empty() {
            let Some(io) = self.datagrams() else { return Ok(()) };
            if io.incoming.len() >= MAX_INCOMING {
                io.incoming.pop_front();
            }
            io.incoming.push_back(packet.to_vec());
        }
        match self.phase {
            Some(Phase::Open(_)) => self.read_application_data(),
            _ => self.drive(),
        }
        if self.failure.is_some() { Err(DtlsImplError::ConnectionClosed) } else { Ok(()) }
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(until) = self.idle_until {
            return DtlsOutput::Timeout(until);
        }
        if let Some(io) = self.datagrams() {
            if let Some(datagram) = io.outgoing.front() {
                if datagram.len() > buf.len() {
                    return DtlsOutput::BufferTooSmall { needed: datagram.len() };
                }
                let datagram = io.outgoing.pop_front().unwrap_or_default();
                buf[..datagram.len()].copy_from_slice(&datagram);
                return DtlsOutput::Packet(&buf[..datagram.len()]);
            }
        }
        if let Some(cert) = self.pending.peer_cert.take() {
            if cert.len() > buf.len() {
                let needed = cert.len();
                self.pending.peer_cert = Some(cert);
                return DtlsOutput::BufferTooSmall { needed };
            }
            buf[..cert.len()].copy_from_slice(&cert);
            return DtlsOutput::PeerCert(&buf[..cert.len()]);
        }
        if let Some((keys, profile)) = self.pending.keys.take() {
            return DtlsOutput::KeyingMaterial(KeyingMaterial::new(&keys), profile);
        }
        if self.pending.connected {
            self.pending.connected = false;
            return DtlsOutput::Connected;
        }
        if let Some(data) = self.pending.application_data.pop_front() {
            if data.len() <= buf.len() {
                buf[..data.len()].copy_from_slice(&data);
                return DtlsOutput::ApplicationData(&buf[..data.len()]);
            }
        }
        if self.pending.close_notify {
            self.pending.close_notify = false;
            self.phase = Some(Phase::Over(Datagrams::default()));
            return DtlsOutput::CloseNotify;
        }
        match self.phase {
            Some(Phase::Waiting(..) | Phase::Handshaking(_)) => DtlsOutput::Timeout(self.retry_at),
            // Nothing to wait for: a day is "never" for a WebRTC session's DTLS.
            _ => {
                let until = self.retry_at + Duration::from_secs(86_400);
                self.idle_until = Some(until);
                DtlsOutput::Timeout(until)
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        if now >= self.retry_at {
            self.idle_until = None;
            self.retry_at = now + RETRY;
            if matches!(self.phase, Some(Phase::Handshaking(_))) {
                self.drive();
            }
        }
        if self.failure.is_some() { Err(DtlsImplError::ConnectionClosed) } else { Ok(()) }
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.idle_until = None;
        if data.is_empty() {
            return Ok(0);
        }
        let Some(Phase::Open(stream)) = self.phase.as_mut() else {
            // Not yet (or no longer): str0m keeps it and tries again.
            return Ok(0);
        };
        match stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.code() == ErrorCode::WANT_WRITE || e.code() == ErrorCode::WANT_READ => Ok(0),
            Err(_) => Err(DtlsImplError::ConnectionClosed),
        }
    }

    fn is_active(&self) -> bool {
        self.active.unwrap_or(false)
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        matches!(self.phase, Some(Phase::Open(_))).then_some(ProtocolVersion::DTLS1_2)
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.idle_until = None;
        if let Some(Phase::Open(stream)) = self.phase.as_mut() {
            // Writes the close_notify alert; the peer's answer is not awaited.
            let _ = stream.shutdown();
        }
        Ok(())
    }
}

fn srtp_profile(id: SrtpProfileId) -> Option<SrtpProfile> {
    match id {
        SrtpProfileId::SRTP_AES128_CM_SHA1_80 => Some(SrtpProfile::AES128_CM_SHA1_80),
        SrtpProfileId::SRTP_AEAD_AES_128_GCM => Some(SrtpProfile::AEAD_AES_128_GCM),
        SrtpProfileId::SRTP_AEAD_AES_256_GCM => Some(SrtpProfile::AEAD_AES_256_GCM),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};

    use super::*;

    /// A self-signed RSA certificate, as GStreamer's webrtcbin makes one.
    fn rsa_certificate() -> DtlsCert {
        let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "gstreamer").expect("cn");
        let name = name.build();
        let mut builder = X509Builder::new().expect("x509");
        builder.set_version(2).expect("version");
        builder.set_serial_number(&BigNum::from_u32(1).expect("bn").to_asn1_integer().expect("serial")).expect("serial");
        builder.set_subject_name(&name).expect("subject");
        builder.set_issuer_name(&name).expect("issuer");
        builder.set_pubkey(&key).expect("pubkey");
        builder.set_not_before(&Asn1Time::days_from_now(0).expect("time")).expect("not before");
        builder.set_not_after(&Asn1Time::days_from_now(30).expect("time")).expect("not after");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        DtlsCert {
            certificate: builder.build().to_der().expect("der"),
            private_key: key.private_key_to_der().expect("key der"),
        }
    }

    fn ecdsa_certificate() -> DtlsCert {
        certificate().expect("the default provider makes certificates")
    }

    #[derive(Debug, Default, PartialEq)]
    struct Seen {
        connected: bool,
        peer_cert: Option<Vec<u8>>,
        keys: Option<(Vec<u8>, SrtpProfile)>,
        application_data: Vec<Vec<u8>>,
    }

    /// Polls `from` dry at `now`: its datagrams go to `to`, its events into `seen`.
    fn pump(from: &mut dyn DtlsInstance, to: &mut dyn DtlsInstance, seen: &mut Seen) {
        let mut buf = vec![0u8; 4096];
        loop {
            match from.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => {
                    let p = p.to_vec();
                    let _ = to.handle_packet(&p);
                }
                DtlsOutput::Connected => seen.connected = true,
                DtlsOutput::PeerCert(c) => seen.peer_cert = Some(c.to_vec()),
                DtlsOutput::KeyingMaterial(k, profile) => seen.keys = Some((k.to_vec(), profile)),
                DtlsOutput::ApplicationData(d) => seen.application_data.push(d.to_vec()),
                DtlsOutput::Timeout(_) => return,
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// Runs a handshake between `client` and `server` as str0m would.
    fn handshake(client: &mut dyn DtlsInstance, server: &mut dyn DtlsInstance, now: Instant) -> (Seen, Seen) {
        let (mut at_client, mut at_server) = (Seen::default(), Seen::default());
        server.set_active(false);
        client.set_active(true);
        client.handle_timeout(now).expect("client timeout");
        let _ = client.handle_packet(&[]);
        for step in 0..50 {
            let t = now + Duration::from_millis(step * 10);
            client.handle_timeout(t).expect("client timeout");
            server.handle_timeout(t).expect("server timeout");
            pump(client, server, &mut at_client);
            pump(server, client, &mut at_server);
            if at_client.connected && at_server.connected {
                break;
            }
        }
        (at_client, at_server)
    }

    fn openssl_instance(cert: &DtlsCert, now: Instant) -> Box<dyn DtlsInstance> {
        OpensslDtls.new_dtls(cert, now, DtlsVersion::Dtls12, Some(1150)).expect("instance")
    }

    #[test]
    fn an_encoder_with_an_rsa_certificate_gets_through() {
        let now = Instant::now();
        let (encoder_cert, server_cert) = (rsa_certificate(), ecdsa_certificate());
        let mut encoder = openssl_instance(&encoder_cert, now);
        let mut server = openssl_instance(&server_cert, now);
        let (at_encoder, at_server) = handshake(encoder.as_mut(), server.as_mut(), now);
        assert!(at_encoder.connected && at_server.connected);
        assert_eq!(at_server.peer_cert.as_deref(), Some(&encoder_cert.certificate[..]), "the server sees the RSA certificate");
        assert_eq!(at_encoder.peer_cert.as_deref(), Some(&server_cert.certificate[..]));
        let keys = at_server.keys.clone().expect("keys");
        assert_eq!(at_encoder.keys, Some(keys.clone()), "both ends export the same SRTP keys");
        assert_eq!(keys.1, SrtpProfile::AEAD_AES_128_GCM);
        assert_eq!(keys.0.len(), SrtpProfile::AEAD_AES_128_GCM.keying_material_len());
        assert_eq!(server.protocol_version(), Some(ProtocolVersion::DTLS1_2));
    }

    #[test]
    fn str0m_s_own_dtls_meets_it_in_either_role() {
        let now = Instant::now();
        let cert = ecdsa_certificate();
        let dimpl = || str0m::crypto::from_feature_flags().dtls_provider.new_dtls(&cert, now, DtlsVersion::Dtls12, Some(1150)).expect("dimpl");
        for openssl_is_server in [true, false] {
            let (mut ours, mut theirs) = (openssl_instance(&cert, now), dimpl());
            let (at_client, at_server) = if openssl_is_server {
                handshake(theirs.as_mut(), ours.as_mut(), now)
            } else {
                handshake(ours.as_mut(), theirs.as_mut(), now)
            };
            assert!(at_client.connected && at_server.connected, "openssl as server: {openssl_is_server}");
            assert!(at_client.keys.is_some());
            assert_eq!(at_client.keys, at_server.keys);
        }
    }

    #[test]
    fn application_data_crosses_once_open() {
        let now = Instant::now();
        let cert = ecdsa_certificate();
        let (mut client, mut server) = (openssl_instance(&cert, now), openssl_instance(&cert, now));
        assert_eq!(client.send_application_data(b"early").expect("queued"), 0, "not before the handshake");
        handshake(client.as_mut(), server.as_mut(), now);
        assert_eq!(client.send_application_data(b"sctp").expect("sent"), 4);
        let mut at_server = Seen::default();
        pump(client.as_mut(), server.as_mut(), &mut Seen::default());
        pump(server.as_mut(), client.as_mut(), &mut at_server);
        assert_eq!(at_server.application_data, vec![b"sctp".to_vec()]);
    }

    #[test]
    fn garbage_never_panics_and_never_connects() {
        let now = Instant::now();
        let mut server = openssl_instance(&ecdsa_certificate(), now);
        server.set_active(false);
        let junk: [&[u8]; 5] = [&[0x16], &[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], &[0xff; 3000], &[0x17; 40], b"hello"];
        for datagram in junk {
            let _ = server.handle_packet(datagram);
        }
        for _ in 0..200 {
            let _ = server.handle_packet(&[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        }
        let mut seen = Seen::default();
        let mut sink = openssl_instance(&ecdsa_certificate(), now);
        pump(server.as_mut(), sink.as_mut(), &mut seen);
        assert!(!seen.connected && seen.keys.is_none());
    }
}
