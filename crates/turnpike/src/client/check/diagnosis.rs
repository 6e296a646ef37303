//! From what the steps saw to what to change: one sentence per classic mistake. Pure
//! functions of [`Evidence`], so every sentence is tested without a server.

use std::net::{IpAddr, SocketAddr};

use super::args::Transport;
use super::tls::CertProblem;

/// Certificates expiring sooner than this many days are reported.
pub const CERT_WARN_DAYS: i64 = 14;

/// What the steps of one URI saw that a diagnosis can use.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The transport.
    pub transport: Option<Transport>,
    /// The host of the URI.
    pub host: String,
    /// The address checked.
    pub server: Option<SocketAddr>,
    /// Name resolution failed: why.
    pub dns_error: Option<String>,
    /// TCP connection refused.
    pub connect_refused: bool,
    /// TCP connection attempt unanswered.
    pub connect_timeout: bool,
    /// No answer at all to STUN requests (Binding, or the first Allocate).
    pub no_answer: bool,
    /// ICMP port unreachable seen on UDP.
    pub icmp_refused: bool,
    /// An address of the host that does not answer, and one of the other family that does.
    pub silent_family: Option<(SocketAddr, SocketAddr)>,
    /// The certificate did not verify.
    pub cert_problem: Option<CertProblem>,
    /// The names the certificate holds.
    pub cert_names: Vec<String>,
    /// Days until the certificate expires.
    pub cert_days: Option<i64>,
    /// The realm asked for with `--realm`.
    pub realm_expected: Option<String>,
    /// The realm the server announced.
    pub realm: Option<String>,
    /// The server answered a signed request with 401: the credentials are wrong for it.
    pub auth_rejected: bool,
    /// The username used.
    pub username: Option<String>,
    /// The credential was minted with `--rest-secret`.
    pub minted: bool,
    /// This machine's clock, Unix seconds.
    pub unix_now: u64,
    /// The Allocate's error response, other than 401.
    pub allocate_error: Option<(u16, String)>,
    /// The first relayed address.
    pub relayed: Option<SocketAddr>,
    /// The error code of a refused CreatePermission, and its peer.
    pub permission_error: Option<(u16, IpAddr)>,
    /// Permissions were installed, yet no datagram came through the relay.
    pub no_data: bool,
    /// Loss in percent when some data came through.
    pub loss_percent: Option<f64>,
}

/// The diagnoses of one URI, in the order of the steps.
pub fn diagnose(e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    let server = e.server.map_or_else(|| e.host.clone(), |s| s.to_string());
    if let Some(error) = &e.dns_error {
        out.push(format!(
            "{} does not resolve ({error}): check the name and its A/AAAA records.",
            e.host
        ));
    }
    if e.connect_refused {
        out.push(format!(
            "Nothing accepts TCP connections on {server}: enable the server's TCP or TLS \
             listener on that port (turnpike: `tcp`, `tls-listen`), or open the port in its \
             firewall."
        ));
    }
    if e.connect_timeout {
        out.push(format!(
            "TCP connections to {server} go unanswered: a firewall drops them; allow the \
             port inbound on the server."
        ));
    }
    if e.no_answer {
        out.push(no_answer(e, &server));
    }
    if let Some((silent, answering)) = e.silent_family {
        let (family, record) = if silent.is_ipv4() {
            ("IPv4", "A")
        } else {
            ("IPv6", "AAAA")
        };
        out.push(format!(
            "{} resolves to {} too, which does not answer, while {} does: clients that try \
             {family} first wait or fail; make the server listen on {} (and open it in the \
             firewall), or remove the {record} record.",
            e.host,
            silent.ip(),
            answering.ip(),
            silent.ip()
        ));
    }
    if let Some(problem) = e.cert_problem {
        out.push(certificate(e, problem));
    } else if let Some(days) = e.cert_days.filter(|d| (0..CERT_WARN_DAYS).contains(d)) {
        out.push(format!(
            "The certificate expires in {days} day{}: renew it (tls-cert, tls-key) and reload \
             the server before it does.",
            plural(days)
        ));
    }
    if let (Some(expected), Some(realm)) = (&e.realm_expected, &e.realm) {
        if expected != realm {
            out.push(format!(
                "The server's realm is \"{realm}\", not \"{expected}\": set `realm = \
                 \"{expected}\"` on the server (stored keys are MD5(user:realm:password), so \
                 users made for \"{expected}\" fail in any other realm), or check with --realm \
                 {realm}."
            ));
        }
    }
    if e.auth_rejected {
        out.push(rejected(e));
    }
    if let Some((code, reason)) = &e.allocate_error {
        out.push(allocate_error(*code, reason));
    }
    if let Some(relayed) = e
        .relayed
        .filter(|r| relayed_is_unreachable(r.ip(), e.server))
    {
        out.push(format!(
            "The relayed address {} is not a public address: clients elsewhere cannot send \
             to it. Behind a 1:1 NAT set `external-ip = \"PUBLIC/{}\"` (coturn: \
             --external-ip PUBLIC/{}).",
            relayed.ip(),
            relayed.ip(),
            relayed.ip()
        ));
    }
    if let Some((code, peer)) = e.permission_error {
        out.push(if code == 403 {
            format!(
                "The server refused a permission for {peer}, the relayed address of another \
                 of its own allocations (403): its peer policy denies that network \
                 (turnpike: `allowed-peers`; coturn: --allow-loopback-peers, \
                 --denied-peer-ip), so peers there cannot be reached either."
            )
        } else {
            format!("The server refused a permission for {peer} with {code}.")
        });
    }
    if e.no_data {
        let port = e.relayed.map_or_else(String::new, |r| format!(" ({r})"));
        out.push(format!(
            "Allocations and permissions work but no datagram came through the relay{port}: \
             the relay port range (turnpike: min-port..max-port; coturn: \
             --min-port/--max-port) is probably blocked by a firewall on the server, or \
             external-ip names an address that does not reach the relay IP."
        ));
    }
    if let Some(loss) = e.loss_percent.filter(|l| *l > 0.0) {
        out.push(format!(
            "{loss:.0} % of the datagrams were lost through the relay: look for a bandwidth \
             cap (max-bps), rate limits or congestion on the way."
        ));
    }
    out
}

/// The sentence for a UDP server, or a TURN server, that never answers.
fn no_answer(e: &Evidence, server: &str) -> String {
    match e.transport {
        Some(Transport::Udp) if e.icmp_refused => format!(
            "{server} answers UDP with ICMP port unreachable: nothing listens there; check \
             the port and that the server's UDP listener is on."
        ),
        Some(Transport::Udp) => format!(
            "No answer over UDP from {server}: the port is probably blocked by a firewall \
             on the way (allow UDP inbound on the server), or nothing listens on that \
             address. Try the same server with ?transport=tcp."
        ),
        Some(Transport::Dtls) if e.icmp_refused => format!(
            "{server} answers UDP with ICMP port unreachable: nothing listens there; check \
             the port and that the server listens for DTLS (dtls-listen, with tls-cert)."
        ),
        Some(Transport::Dtls) => format!(
            "No answer to the DTLS handshake from {server}: UDP is probably blocked by a \
             firewall on the way, or the server does not speak DTLS on that port (dtls-listen; \
             coturn: a TLS listening port without no-dtls). Try the same server with \
             ?transport=tcp for TLS."
        ),
        _ => format!(
            "{server} accepts the connection but does not answer STUN: is it a STUN/TURN \
             server on that port?"
        ),
    }
}

/// The sentence for a certificate that did not verify.
fn certificate(e: &Evidence, problem: CertProblem) -> String {
    match problem {
        CertProblem::NameMismatch => format!(
            "The certificate is for {}, not {}: issue it with {} as a subject alternative \
             name, or connect with a name it holds.",
            if e.cert_names.is_empty() {
                "no name".to_owned()
            } else {
                e.cert_names.join(", ")
            },
            e.host,
            e.host
        ),
        CertProblem::Expired => match e.cert_days {
            Some(days) if days < 0 => format!(
                "The certificate expired {} day{} ago: renew it (tls-cert, tls-key) and reload \
                 the server.",
                -days,
                plural(-days)
            ),
            _ => "The certificate is expired or not valid yet: renew it (tls-cert, tls-key), \
                  and check the clocks of server and client."
                .to_owned(),
        },
        CertProblem::UnknownIssuer => "The certificate is not signed by a CA this client \
             trusts: serve the full chain (leaf and intermediates) in tls-cert, or pass a \
             private CA with --ca-file."
            .to_owned(),
        CertProblem::CaAsLeaf => "The server presents a CA certificate as its own (what \
             `openssl req -x509` makes by default): make a leaf certificate, with \
             basicConstraints CA:FALSE, for the server's name."
            .to_owned(),
        CertProblem::Other => "The certificate was refused; see the tls (or dtls) step.".to_owned(),
    }
}

/// The sentence for a 401 to the signed request: wrong password, or a REST username that
/// expired (or that the server's clock sees as expired).
fn rejected(e: &Evidence) -> String {
    let realm = e.realm.as_deref().unwrap_or("");
    let expiry = e.username.as_deref().and_then(turn::auth::rest::expiry);
    match expiry {
        Some(expiry) if expiry < e.unix_now => format!(
            "The REST username expired {} ago by this machine's clock: mint a fresh one \
             (the credential's lifetime is too short, or the minting service's clock is \
             behind).",
            span(e.unix_now - expiry)
        ),
        Some(expiry) => {
            let left = expiry - e.unix_now;
            let whose = if e.minted {
                "the --rest-secret is not one of the server's rest-secrets"
            } else {
                "the password was not made with one of the server's rest-secrets"
            };
            let left = span(left);
            format!(
                "The server refused a REST credential that is valid for {left} more by this \
                 machine's clock: {whose}, or the server's clock is more than {left} ahead \
                 (check NTP on both)."
            )
        }
        None => format!(
            "Wrong username or password for realm \"{realm}\": the server answered 401 to a \
             request signed with its fresh nonce, so the key MD5(user:realm:password) does \
             not match (a user created for another realm fails the same way)."
        ),
    }
}

/// The sentence for an Allocate error other than 401.
fn allocate_error(code: u16, reason: &str) -> String {
    match code {
        486 => "The user's allocation quota is reached (486): raise user-quota, or wait for \
                old allocations to expire (clients that do not deallocate hold them for their \
                lifetime)."
            .to_owned(),
        508 => "The server has no relay port free (508): widen min-port..max-port, raise \
                total-quota, or add a relay-ip."
            .to_owned(),
        437 => "An allocation from this address already exists (437): retry from another \
                source port."
            .to_owned(),
        442 => "The server does not relay UDP for this client (442).".to_owned(),
        300 => "The server redirects to another one (300 Try Alternate, RFC 8489 §10): this \
                check does not follow it; check the ALTERNATE-SERVER directly."
            .to_owned(),
        // RFC 8489 §9.2.5 allows the retry; a server that keeps refusing fresh nonces has a
        // nonce problem, not a credential one.
        438 => "The server answered 438 Stale Nonce even to its own fresh nonces: its nonces \
                expire at once; check its clock and nonce-lifetime, and in a cluster that every \
                node shares the same nonce-secret."
            .to_owned(),
        403 => "The server forbids this user to allocate (403).".to_owned(),
        _ => format!("The server refused the Allocate: {code} {reason}."),
    }
}

/// True when `relayed` cannot be reached from the internet while the server could be: a
/// private, loopback, link-local or CGNAT address different from the one we dialled. (On a
/// LAN or loopback test the relay shares the server's address, which is fine.)
pub fn relayed_is_unreachable(relayed: IpAddr, server: Option<SocketAddr>) -> bool {
    let server = server.map(|s| s.ip());
    if server == Some(relayed) {
        return false;
    }
    let both_loopback = relayed.is_loopback() && server.is_some_and(|s| s.is_loopback());
    !both_loopback && !is_global(relayed)
}

/// Not private, loopback, link-local, CGNAT, documentation or unspecified.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let cgnat = a == 100 && (64..128).contains(&b);
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || cgnat)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local)
        }
    }
}

/// A number of seconds as a person reads it: "90 s", "5 min", "3 h", "12 days".
fn span(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// "s" unless one.
fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Diagnoses that compare URIs: UDP unanswered while TCP or TLS to the same host worked.
pub fn across(results: &[(String, Transport, bool, bool)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, (host, transport, unanswered, _)) in results.iter().enumerate() {
        if *transport != Transport::Udp || !unanswered {
            continue;
        }
        let stream_ok = results
            .iter()
            .find(|(h, t, _, passed)| h == host && *t != Transport::Udp && *passed);
        if let Some((_, t, _, _)) = stream_ok {
            out.push((
                i,
                format!(
                    "UDP is blocked but {} to the same host works: open UDP (the listening \
                     port and the relay range) in the firewall; meanwhile clients fall back to \
                     TURN over {}.",
                    t.name().to_uppercase(),
                    t.name().to_uppercase()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence() -> Evidence {
        Evidence {
            transport: Some(Transport::Udp),
            host: "turn.example.org".into(),
            server: Some("203.0.113.10:3478".parse().unwrap()),
            unix_now: 1_800_000_000,
            ..Evidence::default()
        }
    }

    fn one(e: &Evidence) -> String {
        let found = diagnose(e);
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn a_clean_run_has_nothing_to_say() {
        let mut e = evidence();
        e.relayed = Some("203.0.113.10:50000".parse().unwrap());
        e.cert_days = Some(60);
        e.realm = Some("example.org".into());
        e.realm_expected = Some("example.org".into());
        assert!(diagnose(&e).is_empty());
    }

    // The missing external-ip: a server on a public address handing out a private relay.
    #[test]
    fn private_relayed_address_behind_a_public_server() {
        let mut e = evidence();
        e.relayed = Some("10.0.0.10:50000".parse().unwrap());
        assert!(one(&e).contains("external-ip = \"PUBLIC/10.0.0.10\""));
        assert!(relayed_is_unreachable(
            "10.0.0.10".parse().unwrap(),
            Some("127.0.0.1:3478".parse().unwrap())
        ));
        assert!(!relayed_is_unreachable(
            "127.0.0.1".parse().unwrap(),
            Some("127.0.0.1:3478".parse().unwrap())
        ));
        assert!(!relayed_is_unreachable(
            "192.168.1.5".parse().unwrap(),
            Some("192.168.1.5:3478".parse().unwrap())
        ));
        assert!(relayed_is_unreachable("100.64.1.1".parse().unwrap(), None));
        assert!(relayed_is_unreachable("fd00::1".parse().unwrap(), None));
        assert!(!relayed_is_unreachable(
            "2001:db8::1".parse().unwrap(),
            None
        ));
    }

    #[test]
    fn realm_mismatch_names_both_realms() {
        let mut e = evidence();
        e.realm = Some("other.org".into());
        e.realm_expected = Some("example.org".into());
        let text = one(&e);
        assert!(
            text.contains("\"other.org\", not \"example.org\""),
            "{text}"
        );
    }

    // Wrong password vs an expired REST username vs a server clock ahead of ours.
    #[test]
    fn rejected_credentials_are_told_apart() {
        let mut e = evidence();
        e.auth_rejected = true;
        e.realm = Some("example.org".into());
        e.username = Some("alice".into());
        assert!(one(&e).starts_with("Wrong username or password for realm \"example.org\""));
        e.username = Some("1799999900:alice".into());
        assert!(one(&e).contains("expired 100 s ago"));
        e.username = Some("1800000060:alice".into());
        e.minted = true;
        let text = one(&e);
        assert!(
            text.contains("--rest-secret") && text.contains("more than 60 s ahead"),
            "{text}"
        );
    }

    #[test]
    fn udp_silence_and_icmp_refusal_differ() {
        let mut e = evidence();
        e.no_answer = true;
        assert!(one(&e).contains("?transport=tcp"));
        e.icmp_refused = true;
        assert!(one(&e).contains("ICMP port unreachable"));
    }

    // RFC 7350: an unanswered DTLS handshake is UDP silence too, but the listener to check is
    // the DTLS one.
    #[test]
    fn dtls_silence_and_icmp_refusal_name_the_dtls_listener() {
        let mut e = evidence();
        e.transport = Some(Transport::Dtls);
        e.no_answer = true;
        let text = one(&e);
        assert!(
            text.contains("DTLS handshake") && text.contains("?transport=tcp"),
            "{text}"
        );
        e.icmp_refused = true;
        let text = one(&e);
        assert!(
            text.contains("ICMP port unreachable") && text.contains("dtls-listen"),
            "{text}"
        );
    }

    // A name with an A and an AAAA record, one of which leads nowhere.
    #[test]
    fn one_family_silent() {
        let mut e = evidence();
        e.silent_family = Some((
            "[2001:db8::1]:3478".parse().unwrap(),
            "203.0.113.10:3478".parse().unwrap(),
        ));
        let text = one(&e);
        assert!(
            text.contains("resolves to 2001:db8::1 too") && text.contains("AAAA record"),
            "{text}"
        );
        e.silent_family = Some((
            "203.0.113.10:3478".parse().unwrap(),
            "[2001:db8::1]:3478".parse().unwrap(),
        ));
        assert!(one(&e).contains("try IPv4 first"));
    }

    #[test]
    fn certificate_problems() {
        let mut e = evidence();
        e.cert_problem = Some(CertProblem::NameMismatch);
        e.cert_names = vec!["other.example.org".into()];
        assert!(one(&e).contains("for other.example.org, not turn.example.org"));
        e.cert_problem = Some(CertProblem::Expired);
        e.cert_days = Some(-3);
        assert!(one(&e).contains("expired 3 days ago"));
        e.cert_problem = None;
        e.cert_days = Some(1);
        assert!(one(&e).contains("expires in 1 day:"));
    }

    #[test]
    fn relay_problems() {
        let mut e = evidence();
        e.permission_error = Some((403, "203.0.113.10".parse().unwrap()));
        assert!(one(&e).contains("peer policy"));
        let mut e = evidence();
        e.no_data = true;
        assert!(one(&e).contains("relay port range"));
        let mut e = evidence();
        e.allocate_error = Some((508, "Insufficient Capacity".into()));
        assert!(one(&e).contains("no relay port free"));
        e.allocate_error = Some((438, "Stale Nonce".into()));
        assert!(one(&e).contains("nonce-secret"));
    }

    #[test]
    fn udp_blocked_but_tcp_works() {
        let results = [
            ("h".to_owned(), Transport::Udp, true, false),
            ("h".to_owned(), Transport::Tcp, false, true),
            ("other".to_owned(), Transport::Udp, true, false),
        ];
        let found = across(&results);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 0);
        assert!(found[0].1.contains("TCP to the same host works"));
    }
}
