//! HTTPS through the real binary: certificates that cannot be used stop the
//! start with a clear error and nothing served; a good pair is served, and
//! replaced when its files change or on SIGHUP, while a bad replacement is
//! logged and the old certificate stays.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{confcast, free_port};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};


/// A certificate for 127.0.0.1 and its key, as PEM.
fn pair() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `serve` with these TLS arguments, expecting it to refuse to start.
fn refused(dir: &Path, args: &[&str]) -> String {
    let data = dir.join("data-refused");
    let port = free_port();
    let out = confcast()
        .args(["serve", "--media-port", "0", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {args:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens");
    assert!(!data.join("confcast.sqlite").exists(), "nothing was opened");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unusable_certificates_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = pair();
    let (_, key_b) = pair();
    let cert = write(dir.path(), "cert.pem", &cert_a);
    let key = write(dir.path(), "key.pem", &key_a);
    let other_key = write(dir.path(), "other-key.pem", &key_b);
    let garbage = write(dir.path(), "garbage.pem", "this is not PEM\n");
    let (c, k, o, g) = (cert.to_str().unwrap(), key.to_str().unwrap(), other_key.to_str().unwrap(), garbage.to_str().unwrap());
    let missing = dir.path().join("missing.pem");
    let m = missing.to_str().unwrap();

    let text = refused(dir.path(), &["--tls-cert", m, "--tls-key", k]);
    assert!(text.contains("cannot read the TLS certificate") && text.contains("missing.pem"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", c, "--tls-key", m]);
    assert!(text.contains("cannot read the TLS key"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", g, "--tls-key", k]);
    assert!(text.contains("garbage.pem holds no certificate"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", c, "--tls-key", c]);
    assert!(text.contains("holds no usable private key"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", c, "--tls-key", o]);
    assert!(text.contains("other-key.pem does not belong to the certificate"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", c]);
    assert!(text.contains("--tls-cert needs --tls-key"), "{text}");
    let text = refused(dir.path(), &["--tls-cert", c, "--tls-key", k, "--tls-self-signed"]);
    assert!(text.contains("exclude each other"), "{text}");
}

/// Accepts any certificate: the test looks at which one it was given.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// GET /healthz over TLS: the certificate presented and the response head.
fn fetch(port: u16) -> Option<(Vec<u8>, String)> {
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    let connection = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap()).ok()?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply);
    let cert = tls.conn.peer_certificates()?.first()?.as_ref().to_vec();
    Some((cert, String::from_utf8_lossy(&reply).into_owned()))
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().as_ref().to_vec()
}

/// Waits until the server presents `want`.
fn presents(port: u16, want: &[u8], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if fetch(port).is_some_and(|(cert, _)| cert == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_certificate_is_served_and_reloaded_and_a_bad_one_is_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = pair();
    let cert = write(dir.path(), "cert.pem", &cert_a);
    let key = write(dir.path(), "key.pem", &key_a);
    let log = dir.path().join("log.txt");
    let port = free_port();
    let server = Server(
        confcast()
            .args(["serve", "--media-port", "0", "--log-format", "json", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(presents(port, &der(&cert_a), Duration::from_secs(20)), "serves the first certificate");
    let (_, head) = fetch(port).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("strict-transport-security: max-age="), "HSTS: {head}");

    // A new pair, written key first: the certificate follows within seconds.
    let (cert_b, key_b) = pair();
    std::fs::write(&key, &key_b).unwrap();
    std::fs::write(&cert, &cert_b).unwrap();
    assert!(presents(port, &der(&cert_b), Duration::from_secs(15)), "the changed files were loaded");

    // A certificate whose key is not there: logged, and the old one stays.
    let (cert_c, _) = pair();
    std::fs::write(&cert, &cert_c).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&log).unwrap().contains("TLS certificate not reloaded") {
        assert!(Instant::now() < deadline, "the failed reload is logged: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("does not belong to the certificate"), "{text}");
    assert_eq!(fetch(port).unwrap().0, der(&cert_b), "still the last good certificate");

    // SIGHUP reloads at once.
    std::fs::write(&cert, &cert_b).unwrap();
    let status = Command::new("kill").args(["-HUP", &server.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap().contains("\"reason\":\"SIGHUP\"") {
        assert!(Instant::now() < deadline, "SIGHUP reloads: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fetch(port).unwrap().0, der(&cert_b));
    drop(server);
}
