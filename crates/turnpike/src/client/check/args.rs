//! The command line of `turnpike check`, and what it names: the servers to check (RFC 7064 /
//! RFC 7065 URIs) and where the TURN credentials come from.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgGroup;
use ice::{StunUri, TurnUri, UriError};

use crate::client::client_args::parse_seconds;
use crate::client::discovery::{DnsArgs, ServerName};

/// Arguments of `turnpike check`. Its `Debug` leaves out the password, the REST secret and
/// the token.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("source").args(["password", "rest_secret"])))]
pub struct CheckArgs {
    /// Servers to check: `stun:`, `stuns:`, `turn:` or `turns:` URIs (RFC 7064, RFC 7065), with
    /// `?transport=udp|tcp` on TURN URIs (`turns:…?transport=udp` is DTLS, RFC 7350). With --ice-servers, the URIs of the list are checked
    /// too.
    #[arg(value_name = "URI", value_parser = parse_target)]
    pub uris: Vec<Target>,
    /// TURN username (with --password), or the user id of a minted REST username (with
    /// --rest-secret).
    #[arg(long, short = 'u', value_name = "NAME")]
    pub user: Option<String>,
    /// TURN password, with --user (visible in `ps`: prefer the environment variable).
    #[arg(
        long,
        short = 'p',
        value_name = "PASSWORD",
        requires = "user",
        env = "TURNPIKE_CHECK_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// A TURN REST secret (`rest-secrets` of the server): mint a username `EXPIRY:USER` and its
    /// password, valid for --rest-ttl (visible in `ps`: prefer the environment variable).
    #[arg(
        long,
        value_name = "SECRET",
        env = "TURNPIKE_CHECK_REST_SECRET",
        hide_env_values = true
    )]
    pub rest_secret: Option<String>,
    /// Lifetime of a minted REST credential, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub rest_ttl: u64,
    /// Fetch the servers and their credentials from this URL (`GET /api/ice-servers`, as a
    /// browser would), and check every URI of the list.
    #[arg(long, value_name = "URL", conflicts_with = "source")]
    pub ice_servers: Option<String>,
    /// Join token for --ice-servers, when the server has a `signaling-secret` (sent as
    /// `Authorization: Bearer`).
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "ice_servers",
        env = "TURNPIKE_CHECK_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The realm the server should announce: a different one is reported (the keys of stored
    /// users are bound to the realm).
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Trust only the certificates of this PEM file for stuns:/turns: (a private CA, or the
    /// server's self-signed certificate) instead of the public CAs.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Go on when the server's certificate does not verify (the problem is still reported).
    #[arg(long)]
    pub insecure: bool,
    /// Datagrams sent through the relay in each direction, per framing (Send/Data, then
    /// ChannelData).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Milliseconds between two of those datagrams.
    #[arg(long, default_value_t = 20, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub interval: u64,
    /// Seconds each step may take before it is given up.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = parse_step_timeout)]
    pub timeout: f64,
    /// Use only an IPv4 address of the server.
    #[arg(long, short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use only an IPv6 address of the server.
    #[arg(long, short = '6')]
    pub ipv6: bool,
    /// Print one JSON object (for monitoring) instead of text.
    #[arg(long)]
    pub json: bool,
    /// DNS for the servers' NAPTR, SRV and address records.
    #[command(flatten)]
    pub dns: DnsArgs,
}

impl std::fmt::Debug for CheckArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |set: bool| if set { "<hidden>" } else { "<none>" };
        f.debug_struct("CheckArgs")
            .field("uris", &self.uris)
            .field("user", &self.user)
            .field("password", &hidden(self.password.is_some()))
            .field("rest_secret", &hidden(self.rest_secret.is_some()))
            .field("ice_servers", &self.ice_servers)
            .field("token", &hidden(self.token.is_some()))
            .finish_non_exhaustive()
    }
}

impl CheckArgs {
    /// The step timeout.
    pub fn step_timeout(&self) -> Duration {
        // Checked by the value parser.
        Duration::try_from_secs_f64(self.timeout).unwrap_or(Duration::from_secs(5))
    }
}

/// The longest step timeout: ten minutes.
const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(600);

fn parse_step_timeout(text: &str) -> Result<f64, String> {
    parse_seconds(text, MAX_STEP_TIMEOUT)
}

/// How the check talks to the server: UDP (RFC 8489 §6.2.1), TCP (§6.2.2), TLS over TCP
/// (§6.2.3) or DTLS over UDP (RFC 7350), the transports of server discovery.
pub use crate::client::discovery::Transport;

/// One server to check, from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URI as written.
    pub uri: String,
    /// `turn:`/`turns:`: allocate and relay; `stun:`/`stuns:`: Binding only.
    pub turn: bool,
    /// The host (a name or an IP literal, without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The transport: the URI's, or UDP for `turn:` without `?transport=` until NAPTR
    /// records say otherwise (RFC 5928 §3).
    pub transport: Transport,
    /// What server discovery looks up (RFC 5928 §3, RFC 8489 §8).
    pub name: ServerName,
}

/// A STUN or TURN URI, with the transport it implies: `stun:` and `turn:` are UDP unless
/// `?transport=tcp`; `stuns:` and `turns:` are TLS over TCP (RFC 7065 §3.2; DTLS is not
/// supported).
pub fn parse_target(text: &str) -> Result<Target, String> {
    let scheme = text
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    let target = |turn, host, port, transport, name| Target {
        uri: text.to_owned(),
        turn,
        host,
        port,
        transport,
        name,
    };
    if scheme == "turn" || scheme == "turns" {
        let uri = TurnUri::parse(text).map_err(|e| e.to_string())?;
        let transport = match (uri.secure, uri.transport.as_deref()) {
            (false, None | Some("udp")) => Transport::Udp,
            (false, Some("tcp")) => Transport::Tcp,
            (true, None | Some("tcp")) => Transport::Tls,
            // RFC 7350: `turns:` over UDP is TURN over DTLS.
            (true, Some("udp")) => Transport::Dtls,
            (_, Some(other)) => {
                return Err(format!(
                    "{text}: unknown transport \"{other}\" (udp or tcp)"
                ))
            }
        };
        // Without ?transport=, `turn:` leaves the choice to NAPTR records (RFC 5928 §3).
        let asked = (uri.secure || uri.transport.is_some()).then_some(transport);
        let name = ServerName::turn(&uri, asked);
        return Ok(target(true, uri.host, uri.port, transport, name));
    }
    let uri = StunUri::parse(text).map_err(|e: UriError| match e {
        UriError::UnexpectedComponent {
            component: "query", ..
        } => format!("{e}; write turn: to check a TURN server"),
        e => e.to_string(),
    })?;
    let transport = if uri.secure {
        Transport::Tls
    } else {
        Transport::Udp
    };
    let name = ServerName::stun(&uri);
    Ok(target(false, uri.host, uri.port, transport, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7065 §3.2: no ?transport means UDP for turn: and TCP (TLS) for turns:.
    #[test]
    fn transports_follow_rfc_7065() {
        let t = parse_target("turn:example.org").unwrap();
        assert_eq!((t.turn, t.transport, t.port), (true, Transport::Udp, 3478));
        let t = parse_target("turn:example.org:80?transport=tcp").unwrap();
        assert_eq!((t.transport, t.port), (Transport::Tcp, 80));
        let t = parse_target("turns:[2001:db8::1]").unwrap();
        assert_eq!(
            (t.transport, t.port, t.host.as_str()),
            (Transport::Tls, 5349, "2001:db8::1")
        );
        let t = parse_target("stuns:example.org").unwrap();
        assert_eq!((t.turn, t.transport), (false, Transport::Tls));
        let t = parse_target("stun:example.org").unwrap();
        assert_eq!((t.turn, t.transport), (false, Transport::Udp));
        // RFC 7350: turns: with transport=udp is DTLS, on the port of TLS.
        let t = parse_target("turns:example.org?transport=udp").unwrap();
        assert_eq!((t.turn, t.transport, t.port), (true, Transport::Dtls, 5349));
        assert!(parse_target("turn:example.org?transport=sctp")
            .unwrap_err()
            .contains("sctp"));
        assert!(parse_target("stun:example.org?transport=tcp")
            .unwrap_err()
            .contains("turn:"));
        assert!(parse_target("http://example.org").is_err());
    }
}
