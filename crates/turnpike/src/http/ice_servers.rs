//! The `RTCIceServer` list this server hands to browsers, in `GET /api/ice-servers` and in the
//! signaling `joined` frame: `stun:` and `turn:` URLs for the first STUN/TURN listener, `turns:`
//! for the first TLS listener, with a TURN REST credential (`EXPIRY:ID`,
//! `base64(HMAC-SHA1(secret, username))`) that the TURN server accepts until it expires. Who
//! gets a credential, and which, is decided in [`super::credentials`].

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::fleet::{FleetView, TurnRecord};

/// One TURN REST credential to hand out: username `EXPIRY:ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unix seconds after which the TURN server refuses it.
    pub expiry_unix: u64,
    /// The user id part of the username: printable, without `:`.
    pub id: String,
}

/// The REST secret TURN credentials are minted with: the first of `rest-secrets` (or the one
/// made up for a run without credentials), replaced by a configuration reload so that a
/// rotation reaches the HTTP API too. Read once per request, never per packet.
#[derive(Clone, Default)]
pub struct MintingSecret(std::sync::Arc<arc_swap::ArcSwapOption<String>>);

impl std::fmt::Debug for MintingSecret {
    /// Says whether there is one, never what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.get().is_some() { "set" } else { "none" };
        write!(f, "MintingSecret({state})")
    }
}

impl MintingSecret {
    /// A secret holding `secret` (`None`: no TURN credentials over HTTP).
    pub fn new(secret: Option<String>) -> MintingSecret {
        MintingSecret(std::sync::Arc::new(arc_swap::ArcSwapOption::new(
            secret.map(std::sync::Arc::new),
        )))
    }

    /// The secret now.
    pub fn get(&self) -> Option<std::sync::Arc<String>> {
        self.0.load_full()
    }

    /// Replaces the secret for the credentials minted from now on.
    pub fn set(&self, secret: Option<String>) {
        self.0.store(secret.map(std::sync::Arc::new));
    }
}

/// What the ICE server list is made of: fixed at start, but for the secret.
#[derive(Clone)]
pub struct IceSettings {
    /// `ice-host`: the host in the URLs (IPv6 without brackets); `None`: the request's host.
    pub host: Option<String>,
    /// The port of the first `listen` address as bound, when UDP or TCP is served.
    pub port: Option<u16>,
    /// UDP is served on `port`.
    pub udp: bool,
    /// TCP is served on `port`.
    pub tcp: bool,
    /// The port of the first TLS listener as bound, when TLS is on.
    pub tls_port: Option<u16>,
    /// The REST secret for the TURN credentials; none: TURN is off, STUN URLs only.
    pub secret: MintingSecret,
    /// How long the credentials stay valid.
    pub ttl: Duration,
    /// With a cluster: the fleet's least-loaded nodes, whose TURN URLs are handed out instead
    /// of this node's own (empty: this node's own).
    pub fleet: FleetView,
}

impl std::fmt::Debug for IceSettings {
    /// Leaves out the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("tls_port", &self.tls_port)
            .field("turn", &self.turn())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl IceSettings {
    /// The host for the URLs: `ice-host` if set, else `request_host` (the host part of the
    /// request's `Host` header, already checked), in URL form (IPv6 in brackets).
    pub fn url_host(&self, request_host: &str) -> String {
        let host = self.host.as_deref().unwrap_or(request_host);
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => host.to_owned(),
        }
    }

    /// Seconds the credentials stay valid.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// TURN credentials can be minted (TURN is on, with a REST secret).
    pub fn turn(&self) -> bool {
        self.secret.get().is_some()
    }

    /// The `RTCIceServer[]` for `url_host` (from [`Self::url_host`]): STUN URLs, and TURN URLs
    /// with `lease` when one is given (and TURN is on).
    pub fn servers(&self, url_host: &str, lease: Option<&Lease>) -> Value {
        let mut servers = Vec::new();
        if let (Some(port), true) = (self.port, self.udp) {
            servers.push(json!({ "urls": [format!("stun:{url_host}:{port}")] }));
        }
        let secret = self.secret.get();
        let (Some(secret), Some(lease)) = (secret.as_deref(), lease) else {
            return Value::Array(servers);
        };
        let fleet = self.fleet.handed_out();
        let own = TurnRecord {
            host: Some(url_host.to_owned()),
            port: self.port,
            tls_port: self.tls_port,
            udp: self.udp,
            tcp: self.tcp,
            addresses: Vec::new(),
            tls_addresses: Vec::new(),
        };
        let nodes = if fleet.is_empty() {
            std::slice::from_ref(&own)
        } else {
            &fleet[..]
        };
        // One credential for every node: the fleet shares its REST secret (docs/cluster.md).
        let urls: Vec<String> = nodes.iter().flat_map(turn_urls).collect();
        if !urls.is_empty() {
            let username = turn::auth::rest::username(lease.expiry_unix, Some(&lease.id));
            let credential = turn::auth::rest::password(secret, &username);
            servers.push(json!({ "urls": urls, "username": username, "credential": credential }));
        }
        Value::Array(servers)
    }

    /// The body of `GET /api/ice-servers`: `{"iceServers": [...], "iceTtl": N}`, N the
    /// seconds `lease` has left at `unix_now` (the configured TTL without one).
    pub fn document(&self, url_host: &str, lease: Option<&Lease>, unix_now: u64) -> Value {
        let ttl = lease.map_or(self.ttl_secs(), |l| l.expiry_unix.saturating_sub(unix_now));
        json!({ "iceServers": self.servers(url_host, lease), "iceTtl": ttl })
    }
}

/// The `turn:` and `turns:` URLs of one node.
fn turn_urls(node: &TurnRecord) -> Vec<String> {
    let mut urls = Vec::new();
    let Some(host) = &node.host else {
        return urls;
    };
    if let Some(port) = node.port {
        if node.udp {
            urls.push(format!("turn:{host}:{port}?transport=udp"));
        }
        if node.tcp {
            urls.push(format!("turn:{host}:{port}?transport=tcp"));
        }
    }
    if let Some(port) = node.tls_port {
        urls.push(format!("turns:{host}:{port}?transport=tcp"));
    }
    urls
}

/// The host part of a `Host` header (`localhost:8080` → `localhost`, `[::1]:8080` → `::1`),
/// when it is a plain host name or IP address; `None` for anything else, which must not end
/// up in a URL.
pub fn host_of_header(header: &str) -> Option<String> {
    let header = header.trim();
    let host = if let Some(rest) = header.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return ip
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string());
    } else {
        match header.split_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return None,
            None => header,
        }
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then(|| host.to_ascii_lowercase())
}

/// Digits that make a port.
fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IceSettings {
        IceSettings {
            host: None,
            port: Some(3478),
            udp: true,
            tcp: true,
            tls_port: None,
            secret: MintingSecret::new(Some("0123456789abcdef".to_owned())),
            ttl: Duration::from_secs(86_400),
            fleet: FleetView::default(),
        }
    }

    #[test]
    fn with_a_fleet_the_least_loaded_nodes_urls_share_one_credential() {
        use crate::cluster::fleet::NodeRecord;
        let node = |id: &str, allocations: u64, host: &str| NodeRecord {
            id: id.to_owned(),
            allocations,
            turn: Some(TurnRecord {
                host: Some(host.to_owned()),
                port: Some(3478),
                udp: true,
                tls_port: Some(5349),
                ..TurnRecord::default()
            }),
            ..NodeRecord::default()
        };
        let settings = settings();
        settings.fleet.update(&[
            node("a", 9, "a.example"),
            node("b", 1, "b.example"),
            node("c", 5, "c.example"),
        ]);
        let lease = Lease {
            expiry_unix: 10,
            id: "room".to_owned(),
        };
        let servers = settings.servers("self.example", Some(&lease));
        assert_eq!(servers[0]["urls"], json!(["stun:self.example:3478"]));
        assert_eq!(
            servers[1]["urls"],
            json!([
                "turn:b.example:3478?transport=udp",
                "turns:b.example:5349?transport=tcp",
                "turn:c.example:3478?transport=udp",
                "turns:c.example:5349?transport=tcp",
            ]),
            "the two least-loaded nodes, best first"
        );
        assert_eq!(servers[1]["username"], "10:room");
    }

    #[test]
    fn the_host_comes_from_the_header_unless_configured() {
        assert_eq!(
            host_of_header("localhost:8080").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            host_of_header("Example.ORG").as_deref(),
            Some("example.org")
        );
        assert_eq!(host_of_header("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host_of_header("192.0.2.1:80").as_deref(), Some("192.0.2.1"));
        for bad in ["", "a/b", "a:b", "[::1", "[zz]:1", "a b", "[::1]x", "a\"b"] {
            assert_eq!(host_of_header(bad), None, "{bad}");
        }
        let s = settings();
        assert_eq!(s.url_host("::1"), "[::1]");
        assert_eq!(s.url_host("localhost"), "localhost");
        let fixed = IceSettings {
            host: Some("2001:db8::1".to_owned()),
            ..settings()
        };
        assert_eq!(fixed.url_host("localhost"), "[2001:db8::1]");
    }

    #[test]
    fn stun_and_turn_urls_with_rest_credentials() {
        let lease = Lease {
            expiry_unix: 87_400,
            id: "turnpike".to_owned(),
        };
        let doc = settings().document("localhost", Some(&lease), 1_000);
        assert_eq!(doc["iceTtl"], 86_400);
        let servers = doc["iceServers"].as_array().unwrap();
        assert_eq!(servers[0], json!({ "urls": ["stun:localhost:3478"] }));
        assert_eq!(
            servers[1]["urls"],
            json!([
                "turn:localhost:3478?transport=udp",
                "turn:localhost:3478?transport=tcp"
            ])
        );
        let username = servers[1]["username"].as_str().unwrap();
        assert_eq!(username, "87400:turnpike");
        assert_eq!(
            servers[1]["credential"].as_str().unwrap(),
            turn::auth::rest::password("0123456789abcdef", username)
        );
    }

    #[test]
    fn tls_adds_turns_and_no_secret_means_stun_only() {
        let tls = IceSettings {
            tcp: false,
            tls_port: Some(5349),
            ..settings()
        };
        let lease = Lease {
            expiry_unix: 10,
            id: "room".to_owned(),
        };
        let servers = tls.servers("[::1]", Some(&lease));
        assert_eq!(
            servers[1]["urls"],
            json!([
                "turn:[::1]:3478?transport=udp",
                "turns:[::1]:5349?transport=tcp"
            ])
        );
        let stun_only = IceSettings {
            secret: MintingSecret::default(),
            ..settings()
        };
        assert_eq!(
            stun_only.servers("h", Some(&lease)),
            json!([{ "urls": ["stun:h:3478"] }])
        );
        let nothing = IceSettings {
            port: None,
            tls_port: None,
            ..settings()
        };
        assert_eq!(nothing.servers("h", Some(&lease)), json!([]));
        assert_eq!(
            settings().servers("h", None),
            json!([{ "urls": ["stun:h:3478"] }]),
            "no lease: STUN only"
        );
    }
}
