//! A self-signed certificate for trying HTTPS on a LAN: made once for the
//! listening address and this machine's addresses and names, and kept in the
//! data folder so it (and its key, so its fingerprint) survives restarts.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{CertificateParams, DnType, KeyPair};

const CERT: &str = "self-signed-cert.pem";
const KEY: &str = "self-signed-key.pem";
/// The names the stored certificate was made for, one a line.
const NAMES: &str = "self-signed-names.txt";

/// The names a certificate for this server should carry: `localhost` and
/// the loopback addresses, the listening address (or, when listening on all
/// addresses, every address of this machine), the public IP, and the host
/// name.
pub fn names_for(listen: IpAddr, public_ip: Option<IpAddr>) -> Vec<String> {
    let mut names = BTreeSet::new();
    names.insert("localhost".to_owned());
    names.insert("127.0.0.1".to_owned());
    names.insert("::1".to_owned());
    if listen.is_unspecified() {
        for ip in interface_addresses() {
            names.insert(ip.to_string());
        }
    } else {
        names.insert(listen.to_string());
    }
    if let Some(ip) = public_ip {
        names.insert(ip.to_string());
    }
    if let Some(host) = host_name() {
        names.insert(format!("{host}.local"));
        names.insert(host);
    }
    names.into_iter().collect()
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    let usable = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    usable.then_some(name)
}

/// This machine's unicast addresses (link-local ones cannot be named in a
/// URL without a zone, so they are left out).
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|a| a.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_link_local(),
            IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_unicast_link_local(),
        })
        .collect()
}

/// The certificate and key files in `folder`, made (or remade, with the same
/// key, when names were added) so they cover `names`.
pub fn ensure(folder: &Path, names: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let (cert_path, key_path, names_path) = (folder.join(CERT), folder.join(KEY), folder.join(NAMES));
    let stored: BTreeSet<String> =
        std::fs::read_to_string(&names_path).unwrap_or_default().lines().map(str::to_owned).filter(|l| !l.is_empty()).collect();
    let key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => Some(KeyPair::from_pem(&pem).with_context(|| format!("{} is not a usable key; delete it to make a new one", key_path.display()))?),
        Err(_) => None,
    };
    if key.is_some() && cert_path.exists() && names.iter().all(|n| stored.contains(n)) {
        return Ok((cert_path, key_path));
    }
    // Names the old certificate had stay, so addresses that come and go do
    // not make it change every time.
    let all: Vec<String> = stored.into_iter().chain(names.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    let key = match key {
        Some(key) => key,
        None => KeyPair::generate().context("cannot make a key for the self-signed certificate")?,
    };
    let mut params = CertificateParams::new(all.clone()).context("a name for the self-signed certificate")?;
    params.distinguished_name.push(DnType::CommonName, "confcast (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).context("cannot make the self-signed certificate")?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).with_context(|| format!("cannot write {}", cert_path.display()))?;
    std::fs::write(&names_path, all.join("\n") + "\n").with_context(|| format!("cannot write {}", names_path.display()))?;
    tracing::info!(cert = %cert_path.display(), names = %all.join(","), "made a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs;

    #[test]
    fn made_once_kept_and_remade_with_the_same_key_for_new_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = names_for("192.0.2.10".parse().expect("ip"), None);
        assert!(names.contains(&"192.0.2.10".to_owned()) && names.contains(&"localhost".to_owned()), "{names:?}");
        let (cert, key) = ensure(dir.path(), &names).expect("made");
        let first = std::fs::read(&cert).expect("cert");
        let spki = certs::spki_sha256(&certs::load(&cert, &key).expect("loads"));
        ensure(dir.path(), &names).expect("kept");
        assert_eq!(std::fs::read(&cert).expect("cert"), first, "not remade on a restart");
        let more = names_for("192.0.2.10".parse().expect("ip"), Some("198.51.100.7".parse().expect("ip")));
        ensure(dir.path(), &more).expect("remade");
        assert_ne!(std::fs::read(&cert).expect("cert"), first, "remade for a new name");
        assert_eq!(certs::spki_sha256(&certs::load(&cert, &key).expect("loads")), spki, "with the same key");
        let stored = std::fs::read_to_string(dir.path().join(NAMES)).expect("names");
        assert!(stored.contains("198.51.100.7") && stored.contains("192.0.2.10"));
    }
}
