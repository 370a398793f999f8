//! Who the client is and whether it came over HTTPS, also behind a reverse
//! proxy: `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when
//! the TCP peer is inside one of the `--trusted-proxy` networks, and then
//! only as far as the chain of trusted proxies reaches. Every request gets a
//! `ClientInfo` (used by login rate limits, logs and cookies), and HTTPS
//! responses carry HSTS.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use clap::Args;
use ipnet::IpNet;

use crate::state::AppState;

/// The reverse-proxy flag (part of `serve`'s settings).
#[derive(Args, Debug, Clone, Default)]
pub struct ProxyArgs {
    /// A network (CIDR, or one address) of reverse proxies whose
    /// X-Forwarded-For and X-Forwarded-Proto are believed. Repeatable, or
    /// comma-separated. From any other peer those headers are ignored.
    #[arg(long = "trusted-proxy", env = "CONFCAST_TRUSTED_PROXY", value_name = "CIDR", value_delimiter = ',',
        value_parser = parse_network)]
    pub trusted_proxy: Vec<IpNet>,
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not a network (like 10.0.0.0/8 or 2001:db8::/32) or an address"))
}

/// The networks whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client as the server understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the TCP peer, or (behind trusted proxies) the
    /// rightmost address in X-Forwarded-For not inside a trusted network.
    pub addr: IpAddr,
    /// Whether the client's connection is HTTPS: ours, or the trusted
    /// proxy's as it says in X-Forwarded-Proto.
    pub https: bool,
}

/// Works out the client from the TCP peer and the request's headers.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies, tls: bool) -> ClientInfo {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return ClientInfo { addr: peer, https: tls };
    }
    // Hops in the order they were appended: the client first, each proxy
    // adding the address it received from. Walk back from the right while
    // the hop we stand on is a trusted proxy.
    let hops: Vec<&str> = list_values(headers, &X_FORWARDED_FOR).collect();
    let mut addr = peer;
    for hop in hops.iter().rev() {
        if !trusted.contains(addr) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => addr = ip,
            None => break,
        }
    }
    // The nearest proxy's word (a proxy that sets the header replaces it;
    // one that appends puts its own last).
    let https = match list_values(headers, &X_FORWARDED_PROTO).last() {
        Some(proto) => proto.eq_ignore_ascii_case("https"),
        None => tls,
    };
    ClientInfo { addr, https }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Every comma-separated item of every instance of a header, in order.
fn list_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// One X-Forwarded-For item: an address, perhaps with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(with_port) = hop.parse::<SocketAddr>() {
        return Some(with_port.ip().to_canonical());
    }
    hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).and_then(|h| h.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical())
}

/// HTTPS responses tell browsers to use nothing else for a year.
pub const HSTS: &str = "max-age=31536000";

/// Middleware: puts the `ClientInfo` into the request, and HSTS on HTTPS
/// responses.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let client = client_of(request.extensions(), request.headers(), &state);
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https {
        response
            .headers_mut()
            .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

fn client_of(extensions: &axum::http::Extensions, headers: &HeaderMap, state: &AppState) -> ClientInfo {
    // The listener always records the peer; only an application driven
    // without a socket (unit tests) lacks it, and those share one address.
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip());
    resolve(peer, headers, &state.settings.trusted_proxies, state.settings.secure_cookies)
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ClientInfo, Self::Rejection> {
        Ok(match parts.extensions.get::<ClientInfo>() {
            Some(client) => *client,
            None => client_of(&parts.extensions, &parts.headers, state),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| parse_network(n).expect("network")).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn forged_headers_from_an_untrusted_peer_are_ignored() {
        let forged = headers(&[("x-forwarded-for", "10.9.9.9"), ("x-forwarded-proto", "https")]);
        let client = resolve(ip("203.0.113.5"), &forged, &trusted(&["127.0.0.1/32"]), false);
        assert_eq!(client, ClientInfo { addr: ip("203.0.113.5"), https: false });
        let client = resolve(ip("203.0.113.5"), &forged, &TrustedProxies::default(), false);
        assert_eq!(client.addr, ip("203.0.113.5"), "no proxy trusted: headers never count");
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let via = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]);
        let client = resolve(ip("127.0.0.1"), &via, &trusted(&["127.0.0.1/32"]), false);
        assert_eq!(client, ClientInfo { addr: ip("198.51.100.7"), https: true });
        let plain = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "http")]);
        assert!(!resolve(ip("127.0.0.1"), &plain, &trusted(&["127.0.0.1"]), false).https);
        // Without the headers the peer is the client.
        assert_eq!(resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted(&["127.0.0.1"]), true), ClientInfo { addr: ip("127.0.0.1"), https: true });
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged a first hop; the edge proxy (10.1.1.1) appended
        // the real client, and the inner proxy appended the edge proxy.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(resolve(ip("127.0.0.1"), &chain, &proxies, false).addr, ip("198.51.100.7"));
        // The same chain split over several header lines.
        let lines = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "198.51.100.7"), ("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(resolve(ip("127.0.0.1"), &lines, &proxies, false).addr, ip("198.51.100.7"));
        // Every hop trusted: the leftmost one is the client.
        let inside = headers(&[("x-forwarded-for", "10.2.2.2, 10.1.1.1")]);
        assert_eq!(resolve(ip("127.0.0.1"), &inside, &proxies, false).addr, ip("10.2.2.2"));
        // Garbage is never taken for an address: the walk stops before it.
        let garbage = headers(&[("x-forwarded-for", "not-an-ip, 10.1.1.1")]);
        assert_eq!(resolve(ip("127.0.0.1"), &garbage, &proxies, false).addr, ip("10.1.1.1"));
        let garbage_last = headers(&[("x-forwarded-for", "1.2.3.4, unknown")]);
        assert_eq!(resolve(ip("127.0.0.1"), &garbage_last, &proxies, false).addr, ip("127.0.0.1"));
        // Ports are tolerated.
        let ports = headers(&[("x-forwarded-for", "198.51.100.7:4711, [2001:db8::9]:443")]);
        assert_eq!(resolve(ip("127.0.0.1"), &ports, &trusted(&["127.0.0.1", "2001:db8::/32"]), false).addr, ip("198.51.100.7"));
    }

    #[test]
    fn ipv6_networks_and_mapped_addresses() {
        let proxies = trusted(&["2001:db8:1::/48", "192.0.2.0/24"]);
        let via = headers(&[("x-forwarded-for", "2001:db8:ffff::42"), ("x-forwarded-proto", "https")]);
        assert_eq!(resolve(ip("2001:db8:1::5"), &via, &proxies, false), ClientInfo { addr: ip("2001:db8:ffff::42"), https: true });
        assert_eq!(resolve(ip("2001:db8:2::5"), &via, &proxies, false).addr, ip("2001:db8:2::5"), "outside the /48");
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(resolve(ip("::ffff:192.0.2.1"), &via, &proxies, false).addr, ip("2001:db8:ffff::42"));
        let mapped_client = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(resolve(ip("192.0.2.1"), &mapped_client, &proxies, false).addr, ip("198.51.100.7"));
    }

    #[test]
    fn the_nearest_proxy_says_the_scheme() {
        let proxies = trusted(&["127.0.0.1"]);
        let appended = headers(&[("x-forwarded-proto", "http, https")]);
        assert!(resolve(ip("127.0.0.1"), &appended, &proxies, false).https);
        let forged_first = headers(&[("x-forwarded-proto", "https"), ("x-forwarded-proto", "http")]);
        assert!(!resolve(ip("127.0.0.1"), &forged_first, &proxies, false).https);
    }

    #[test]
    fn networks_parse_from_cidr_or_an_address() {
        assert_eq!(parse_network("10.1.2.3/8").expect("cidr").to_string(), "10.0.0.0/8");
        assert_eq!(parse_network("127.0.0.1").expect("address").to_string(), "127.0.0.1/32");
        assert_eq!(parse_network("::1").expect("address").to_string(), "::1/128");
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("proxy.example").expect_err("name").contains("not a network"));
    }
}
