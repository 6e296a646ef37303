//! coturn directives into Turnpike keys: what carries over, what means something else, what
//! is dropped and why. Values are checked here (a bad port or address is a problem naming the
//! line and the key); the Turnpike rules between keys are left to `config check`, which the
//! command runs on the result.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use toml_edit::{Array, Value};

use super::keys::{self, Arg};
use super::parse::{boolean, Directive};
use super::ranges::{subtract, IpRange};
use crate::config::suggest::closest_key;
use crate::config::ExternalIp;

/// coturn's default `listening-port` and `tls-listening-port`.
const STUN_PORT: u16 = 3478;
const TLS_PORT: u16 = 5349;
/// Turnpike's `nonce-lifetime` and `max-allocation-lifetime` bounds, seconds.
const NONCE_LIFETIME: (u64, u64) = (30, 86_400);
const ALLOCATION_LIFETIME: (u64, u64) = (600, 86_400);
/// Turnpike's `permission-lifetime` and `channel-lifetime` bounds, seconds.
const BINDING_LIFETIME: (u64, u64) = (1, 3600);
/// The largest `total-quota`: the nearest thing to coturn's "0, no limit".
const TOTAL_QUOTA_MAX: u64 = 10_000_000;

/// A line that cannot be translated: an unknown option or a value coturn itself would not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// The option as written.
    pub key: String,
    /// Why, never quoting a secret.
    pub why: String,
}

/// A comment of the output: a coturn key dropped, or translated with another meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The line of the coturn key, `None` when the note is about a key the file leaves unset.
    pub line: Option<usize>,
    /// The coturn key.
    pub key: String,
    /// What happened to it.
    pub why: String,
    /// Also written above the Turnpike key it concerns.
    pub attached: bool,
}

/// One Turnpike key of the output.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value, as TOML.
    pub value: Value,
    /// The coturn keys it comes from, with their lines.
    pub from: Vec<(&'static str, usize)>,
    /// How its meaning differs from coturn's, one line each.
    pub differs: Vec<String>,
}

/// The translation of a whole file.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// Turnpike keys to write.
    pub entries: BTreeMap<&'static str, Entry>,
    /// Keys dropped, one note each.
    pub dropped: Vec<Note>,
    /// Translated keys whose meaning differs, and differences of defaults (also in `entries`).
    pub differs: Vec<Note>,
}

/// The directives of one file, grouped by option; values borrowed from the directives.
struct Seen<'a> {
    by_key: BTreeMap<&'static str, Vec<(usize, &'a str)>>,
}

impl<'a> Seen<'a> {
    fn all(&self, key: &str) -> &[(usize, &'a str)] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }

    /// The last occurrence: coturn lets a repeated single-valued option overwrite the earlier.
    fn last(&self, key: &str) -> Option<(usize, &'a str)> {
        self.all(key).last().copied()
    }

    /// A flag's last value; checked to be a boolean when the file was read.
    fn flag(&self, key: &str) -> Option<(usize, bool)> {
        self.last(key)
            .map(|(line, value)| (line, boolean(value).unwrap_or(true)))
    }

    fn on(&self, key: &str) -> bool {
        self.flag(key).is_some_and(|(_, on)| on)
    }
}

/// Translates `directives`; relative paths are taken from `base` (the coturn file's
/// directory). Every problem is returned, not only the first.
pub fn translate(directives: &[Directive], base: &Path) -> Result<Translation, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut seen = Seen {
        by_key: BTreeMap::new(),
    };
    for directive in directives {
        match check_directive(directive) {
            Ok(name) => seen
                .by_key
                .entry(name)
                .or_default()
                .push((directive.line, directive.value.as_str())),
            Err(problem) => problems.push(problem),
        }
    }
    let mut out = Out::default();
    listeners(&seen, &mut out, base);
    relay(&seen, &mut out);
    credentials(&seen, &mut out);
    limits(&seen, &mut out);
    binding_lifetimes(&seen, &mut out);
    peers(&seen, &mut out);
    service(&seen, &mut out);
    problems.append(&mut out.problems);
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    // Whatever no rule above used is dropped, with the table's reason.
    for (name, occurrences) in &seen.by_key {
        if out.used.contains(name) {
            continue;
        }
        let why = keys::find(name).map_or("", |key| key.note);
        for (line, _) in occurrences {
            out.drop(name, *line, why);
        }
    }
    out.translation.dropped.sort_by_key(|note| note.line);
    Ok(out.translation)
}

/// The table's name for the directive's option, after checking that it takes its value the way
/// coturn would.
fn check_directive(directive: &Directive) -> Result<&'static str, Problem> {
    let problem = |why: String| Problem {
        line: directive.line,
        key: directive.key.clone(),
        why,
    };
    let Some(key) = keys::find(&directive.key) else {
        let hint = closest_key(&directive.key, keys::KEYS.iter().map(|k| k.name))
            .map(|name| format!("; did you mean `{name}`?"))
            .unwrap_or_default();
        return Err(problem(format!("not a coturn option{hint}")));
    };
    match key.arg {
        Arg::Flag if boolean(&directive.value).is_none() => {
            let value = if key.secret {
                "the value"
            } else {
                &directive.value
            };
            Err(problem(format!(
                "`{value}` is not a boolean: use on/off, yes/no, 1/0 or true/false, or the bare flag"
            )))
        }
        Arg::Value if directive.value.is_empty() => Err(problem("needs a value".to_owned())),
        _ => Ok(key.name),
    }
}

/// The translation under construction.
#[derive(Default)]
struct Out {
    translation: Translation,
    /// coturn keys accounted for by a rule.
    used: BTreeSet<&'static str>,
    problems: Vec<Problem>,
}

impl Out {
    /// Sets `key` from the coturn keys `from` (each with all its lines).
    fn set(
        &mut self,
        key: &'static str,
        value: impl Into<Value>,
        seen: &Seen<'_>,
        from: &[&'static str],
    ) {
        let mut sources: Vec<(&'static str, usize)> = from
            .iter()
            .flat_map(|name| seen.all(name).iter().map(move |(line, _)| (*name, *line)))
            .collect();
        sources.sort_by_key(|(_, line)| *line);
        self.used.extend(from);
        self.translation.entries.insert(
            key,
            Entry {
                value: value.into(),
                from: sources,
                differs: Vec::new(),
            },
        );
    }

    /// Notes that `key` (already set) means something else than coturn's `coturn`.
    fn differs(&mut self, key: &'static str, coturn: &str, line: Option<usize>, why: String) {
        let attached = match self.translation.entries.get_mut(key) {
            Some(entry) => {
                entry.differs.push(why.clone());
                true
            }
            None => false,
        };
        self.translation.differs.push(Note {
            line,
            key: coturn.to_owned(),
            why,
            attached,
        });
    }

    /// A difference that belongs to no single output key (a default, a missing key).
    fn note_differs(&mut self, coturn: &str, line: Option<usize>, why: String) {
        self.differs("", coturn, line, why);
    }

    /// Drops coturn's `key` on `line`, saying why.
    fn drop(&mut self, key: &'static str, line: usize, why: &str) {
        self.used.insert(key);
        self.translation.dropped.push(Note {
            line: Some(line),
            key: key.to_owned(),
            why: why.to_owned(),
            attached: false,
        });
    }

    /// Drops every occurrence of `key`.
    fn drop_all(&mut self, seen: &Seen<'_>, key: &'static str, why: &str) {
        for (line, _) in seen.all(key) {
            self.drop(key, *line, why);
        }
    }

    fn problem(&mut self, line: usize, key: &str, why: String) {
        self.problems.push(Problem {
            line,
            key: key.to_owned(),
            why,
        });
    }

    /// Parses the last value of `key` as an integer within `max`.
    fn number(&mut self, seen: &Seen<'_>, key: &str, max: u64) -> Option<(usize, u64)> {
        let (line, value) = seen.last(key)?;
        match value.trim().parse::<u64>() {
            Ok(n) if n <= max => Some((line, n)),
            _ => {
                self.problem(
                    line,
                    key,
                    format!("`{value}` is not a whole number up to {max}"),
                );
                None
            }
        }
    }

    fn port(&mut self, seen: &Seen<'_>, key: &str) -> Option<(usize, u16)> {
        self.number(seen, key, u64::from(u16::MAX))
            .map(|(line, n)| (line, u16::try_from(n).unwrap_or(u16::MAX)))
    }

    /// Every value of `key` parsed as an IP address.
    fn ips(&mut self, seen: &Seen<'_>, key: &str) -> Vec<IpAddr> {
        let mut ips = Vec::new();
        for (line, value) in seen.all(key) {
            match value.trim().parse() {
                Ok(ip) => ips.push(ip),
                Err(_) => self.problem(*line, key, format!("`{value}` is not an IP address")),
            }
        }
        ips
    }
}

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|item| item.to_string())
            .collect::<Array>(),
    )
}

fn int(n: u64) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `listening-port`, `listening-ip`, `aux-server`, TLS.
fn listeners(seen: &Seen<'_>, out: &mut Out, base: &Path) {
    let port = out.port(seen, "listening-port");
    let ips = out.ips(seen, "listening-ip");
    let mut aux = Vec::new();
    for (line, value) in seen.all("aux-server") {
        match value.trim().parse::<SocketAddr>() {
            Ok(addr) => aux.push(addr),
            Err(_) => out.problem(*line, "aux-server", format!("`{value}` is not IP:PORT")),
        }
    }
    let wildcard = [IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    let hosts: &[IpAddr] = if ips.is_empty() { &wildcard } else { &ips };
    let at = |port: u16| hosts.iter().map(move |ip| SocketAddr::new(*ip, port));
    if port.is_some() || !ips.is_empty() || !aux.is_empty() {
        let port = port.map_or(STUN_PORT, |(_, port)| port);
        let listen: Vec<SocketAddr> = at(port).chain(aux).collect();
        out.set(
            "listen",
            strings(listen),
            seen,
            &["listening-port", "listening-ip", "aux-server"],
        );
        if ips.is_empty() {
            let why = format!(
                "without listening-ip coturn listened on every IPv4 and IPv6 address; this \
                 listens on IPv4 only: add \"[::]:{port}\" for IPv6"
            );
            out.differs("listen", "listening-ip", None, why);
        }
    }

    let tls_port = out.port(seen, "tls-listening-port");
    let (cert, key) = (seen.last("cert"), seen.last("pkey"));
    if let Some((line, true)) = seen.flag("no-tls") {
        for name in ["cert", "pkey", "tls-listening-port"] {
            out.drop_all(seen, name, "no-tls is set: TLS stays off");
        }
        out.drop(
            "no-tls",
            line,
            "honoured: `tls-cert` and `tls-key` are left out, so TLS is off",
        );
        return;
    }
    out.used.insert("no-tls");
    match (cert, key) {
        (Some((_, cert)), Some((_, key))) => {
            let absolute = |path: &str| base.join(path).display().to_string();
            out.set("tls-cert", absolute(cert), seen, &["cert"]);
            out.set("tls-key", absolute(key), seen, &["pkey"]);
            if tls_port.is_some() || !ips.is_empty() {
                let port = tls_port.map_or(TLS_PORT, |(_, port)| port);
                out.set(
                    "tls-listen",
                    strings(at(port)),
                    seen,
                    &["tls-listening-port", "listening-ip"],
                );
            }
            if !seen.on("no-dtls") {
                // Both serve DTLS on the TLS port by default (RFC 7350); dimpl takes ECDSA
                // keys only.
                let why = "DTLS is served on the TLS port as in coturn, with an ECDSA key only: \
                           with an RSA key DTLS stays off (one warning at start)"
                    .to_owned();
                out.differs("tls-cert", "no-dtls", None, why);
            }
            if [cert, key].iter().any(|path| Path::new(path).is_relative()) {
                let why = "relative paths are taken from the coturn file's directory".to_owned();
                out.differs("tls-cert", "cert", None, why);
            }
        }
        (None, None) => out.drop_all(
            seen,
            "tls-listening-port",
            "coturn starts no TLS listener without cert and pkey, and neither does Turnpike",
        ),
        _ => {
            let why = "cert and pkey go together (coturn filled in turn_server_cert.pem or \
                       turn_server_pkey.pem); set both `tls-cert` and `tls-key`";
            for name in ["cert", "pkey", "tls-listening-port"] {
                out.drop_all(seen, name, why);
            }
        }
    }
}

/// `relay-ip`, `external-ip`, ports, threads.
fn relay(seen: &Seen<'_>, out: &mut Out) {
    let relay_ips = out.ips(seen, "relay-ip");
    if !relay_ips.is_empty() {
        out.set("relay-ip", strings(relay_ips), seen, &["relay-ip"]);
    }
    let mut external: Vec<ExternalIp> = Vec::new();
    for (line, value) in seen.all("external-ip") {
        match value.parse::<ExternalIp>() {
            Ok(ip)
                if external
                    .iter()
                    .any(|e| e.public.is_ipv4() == ip.public.is_ipv4()) =>
            {
                out.drop(
                    "external-ip",
                    *line,
                    "Turnpike maps one external IP per address family; the first is kept",
                );
            }
            Ok(ip) => external.push(ip),
            Err(why) => out.problem(*line, "external-ip", why),
        }
    }
    if !external.is_empty() {
        out.set("external-ip", strings(&external), seen, &["external-ip"]);
    }
    for key in ["min-port", "max-port"] {
        if let Some((_, port)) = out.port(seen, key) {
            out.set(key, int(u64::from(port)), seen, &[key]);
        }
    }
    if let Some((line, threads)) = out.number(seen, "relay-threads", 1024) {
        out.set("workers", int(threads.max(1)), seen, &["relay-threads"]);
        let why = "coturn's relay threads came on top of its listener and auth threads; each \
                   Turnpike worker does all three (0 would mean one per core)";
        out.differs("workers", "relay-threads", Some(line), why.to_owned());
    }
}

/// Users, REST secrets, realm.
fn credentials(seen: &Seen<'_>, out: &mut Out) {
    if let Some((_, realm)) = seen.last("realm") {
        out.set("realm", realm, seen, &["realm"]);
    }
    let mut users: Vec<(String, String)> = Vec::new();
    for (line, value) in seen.all("user") {
        let Some((name, password)) = value.split_once(':') else {
            out.problem(
                *line,
                "user",
                "is not NAME:PASSWORD or NAME:0xKEY (the value is not shown: it is a secret)"
                    .to_owned(),
            );
            continue;
        };
        if password.starts_with("0x") {
            let why = format!(
                "`{name}` has a precomputed MD5 key (0x…), which cannot give the SHA-256 key \
                 Turnpike also keeps: re-create the user with `turnpike user add {name}`"
            );
            out.drop("user", *line, &why);
            continue;
        }
        // coturn keeps the last definition of a name; Turnpike refuses a name twice.
        users.retain(|(known, _)| known != name);
        users.push((name.to_owned(), password.to_owned()));
    }
    let secrets: Vec<&str> =
        seen.all("static-auth-secret")
            .iter()
            .fold(Vec::new(), |mut kept, (_, s)| {
                if !kept.contains(s) {
                    kept.push(s);
                }
                kept
            });
    if !users.is_empty() {
        let entries = users
            .iter()
            .map(|(name, password)| format!("{name}:{password}"));
        out.set("users", strings(entries), seen, &["user"]);
        if !secrets.is_empty() {
            let why = "coturn ignored user= accounts while a static-auth-secret was set; \
                       Turnpike accepts both";
            out.differs("users", "user", None, why.to_owned());
        }
    }
    if !secrets.is_empty() {
        out.set(
            "rest-secrets",
            strings(secrets),
            seen,
            &["static-auth-secret", "use-auth-secret"],
        );
    } else if let Some((line, true)) = seen.flag("use-auth-secret") {
        let why = "without static-auth-secret coturn read the secret from its database: put it \
                   in `rest-secrets`";
        out.drop("use-auth-secret", line, why);
    }
    let has_db = !seen.all("userdb").is_empty() || !seen.all("db").is_empty();
    let credentials = !users.is_empty() || out.translation.entries.contains_key("rest-secrets");
    if !credentials && !has_db {
        let why = "coturn relays for anyone without credentials (no-auth); Turnpike refuses \
                   every Allocate until `users`, `user-db` or `rest-secrets` is set";
        out.note_differs("user", None, why.to_owned());
    }
    if credentials && seen.last("realm").is_none() {
        let why = "coturn's realm defaulted to the host's domain name; Turnpike's is \
                   \"turnpike\": set `realm` if clients or keys depend on it";
        out.note_differs("realm", None, why.to_owned());
    }
}

/// Quotas, bandwidth, lifetimes.
fn limits(seen: &Seen<'_>, out: &mut Out) {
    if let Some((_, quota)) = out.number(seen, "user-quota", 10_000_000) {
        out.set("user-quota", int(quota), seen, &["user-quota"]);
    }
    if let Some((line, quota)) = out.number(seen, "total-quota", TOTAL_QUOTA_MAX) {
        out.set(
            "total-quota",
            int(if quota == 0 { TOTAL_QUOTA_MAX } else { quota }),
            seen,
            &["total-quota"],
        );
        if quota == 0 {
            let why = format!(
                "coturn's 0 is no limit; Turnpike has none, {TOTAL_QUOTA_MAX} is its largest"
            );
            out.differs("total-quota", "total-quota", Some(line), why);
        }
    }
    if let Some((line, bps)) = out.number(seen, "max-bps", u64::MAX / 2) {
        out.set("max-bps", int(bps * 2), seen, &["max-bps"]);
        if bps > 0 {
            let why = format!(
                "coturn capped each direction at {bps} bytes/s; Turnpike caps both together, \
                 so this is twice that"
            );
            out.differs("max-bps", "max-bps", Some(line), why);
        }
    }
    if let Some((line, value)) = seen.last("stale-nonce") {
        let seconds = if value.is_empty() {
            Some((line, 600))
        } else {
            out.number(seen, "stale-nonce", u64::MAX)
        };
        if let Some((line, seconds)) = seconds {
            let wanted = if seconds == 0 { u64::MAX } else { seconds };
            let kept = wanted.clamp(NONCE_LIFETIME.0, NONCE_LIFETIME.1);
            out.set("nonce-lifetime", int(kept), seen, &["stale-nonce"]);
            if kept != wanted {
                let why = format!("{seconds} s (0 is unlimited in coturn) is outside Turnpike's 30..=86400; {kept} s is used");
                out.differs("nonce-lifetime", "stale-nonce", Some(line), why);
            }
        }
    }
    if let Some((line, seconds)) = out.number(seen, "max-allocate-lifetime", u64::MAX) {
        let kept = seconds.clamp(ALLOCATION_LIFETIME.0, ALLOCATION_LIFETIME.1);
        out.set(
            "max-allocation-lifetime",
            int(kept),
            seen,
            &["max-allocate-lifetime"],
        );
        if kept != seconds {
            let why = format!("{seconds} s is outside Turnpike's 600..=86400; {kept} s is used");
            out.differs(
                "max-allocation-lifetime",
                "max-allocate-lifetime",
                Some(line),
                why,
            );
        }
    }
}

/// `permission-lifetime`, `channel-lifetime`: the same names in Turnpike; coturn's 0 is its
/// default (the RFC's value), which needs no key.
fn binding_lifetimes(seen: &Seen<'_>, out: &mut Out) {
    for key in ["permission-lifetime", "channel-lifetime"] {
        let Some((line, seconds)) = out.number(seen, key, u64::MAX) else {
            continue;
        };
        if seconds == 0 {
            continue;
        }
        let kept = seconds.clamp(BINDING_LIFETIME.0, BINDING_LIFETIME.1);
        out.set(key, int(kept), seen, &[key]);
        if kept != seconds {
            let why = format!("{seconds} s is outside Turnpike's 1..=3600; {kept} s is used");
            out.differs(key, key, Some(line), why);
        }
    }
}

/// `denied-peer-ip`, `allowed-peer-ip`, `allow-loopback-peers`.
fn peers(seen: &Seen<'_>, out: &mut Out) {
    let mut read = |key: &str| -> Vec<IpRange> {
        let mut ranges = Vec::new();
        for (line, value) in seen.all(key) {
            match IpRange::parse(value) {
                Ok(range) => ranges.push(range),
                Err(why) => out.problem(*line, key, why),
            }
        }
        ranges
    };
    let denied = read("denied-peer-ip");
    let allowed = read("allowed-peer-ip");
    // coturn: an allowed address is allowed whatever the denied list says. Turnpike: the
    // longest prefix decides. Cutting the allowed addresses out of the denied ranges gives
    // the same answer for every address the lists name.
    let kept = subtract(&denied, &allowed);
    let nets = |ranges: &[IpRange]| -> Vec<String> {
        ranges
            .iter()
            .flat_map(IpRange::networks)
            .map(|net| net.to_string())
            .collect()
    };
    if !denied.is_empty() {
        out.set(
            "denied-peers",
            strings(nets(&kept)),
            seen,
            &["denied-peer-ip"],
        );
        if denied.iter().any(|d| allowed.iter().any(|a| a.overlaps(d))) {
            let why = "the allowed-peer-ip addresses are cut out of the denied ranges, because in \
                       coturn an allowed address wins while in Turnpike the longest prefix does";
            out.differs("denied-peers", "denied-peer-ip", None, why.to_owned());
        }
    }
    let mut allowed_nets = nets(&allowed);
    if let Some((line, true)) = seen.flag("allow-loopback-peers") {
        allowed_nets.extend(["127.0.0.0/8".to_owned(), "::1/128".to_owned()]);
        let why = "loopback peers are allowed: for tests only, never in production";
        out.note_differs("allow-loopback-peers", Some(line), why.to_owned());
    }
    out.used.insert("allow-loopback-peers");
    if !allowed_nets.is_empty() {
        out.set(
            "allowed-peers",
            strings(allowed_nets),
            seen,
            &["allowed-peer-ip", "allow-loopback-peers"],
        );
    }
    let why = "coturn relays to every address not denied; Turnpike denies private, loopback, \
               link-local, CGNAT and multicast peers by default (docs/turn.md, \"Peer policy\"): \
               open what your peers need with `allowed-peers`";
    out.note_differs("denied-peer-ip", None, why.to_owned());
}

/// Logging, STUN-only, metrics, alternate servers.
fn service(seen: &Seen<'_>, out: &mut Out) {
    let level = if seen.on("Verbose") {
        Some("trace")
    } else if seen.on("verbose") {
        Some("debug")
    } else {
        None
    };
    if let Some(level) = level {
        out.set("log-level", level, seen, &["verbose", "Verbose"]);
    }
    // Turned off explicitly, they leave the default level: nothing to write or drop.
    out.used.extend(["verbose", "Verbose"]);
    let flags = [
        ("no-udp", "udp"),
        ("no-tcp", "tcp"),
        ("no-tcp-relay", "tcp-relay"),
        ("no-dtls", "dtls"),
    ];
    for (coturn, turnpike) in flags {
        if let Some((_, off)) = seen.flag(coturn) {
            out.set(turnpike, !off, seen, &[coturn]);
        }
    }
    if let Some((_, stun_only)) = seen.flag("stun-only") {
        out.set("turn", !stun_only, seen, &["stun-only"]);
    }
    let port = out.port(seen, "prometheus-port");
    let address = out.ips(seen, "prometheus-address").pop();
    if seen.on("prometheus") {
        let ip = address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listen = SocketAddr::new(ip, port.map_or(9641, |(_, port)| port));
        out.set(
            "metrics-listen",
            listen.to_string(),
            seen,
            &["prometheus", "prometheus-port", "prometheus-address"],
        );
        if address.is_none() {
            let why = "coturn served metrics on every address; this keeps them on loopback";
            out.differs("metrics-listen", "prometheus", None, why.to_owned());
        }
    } else {
        let why =
            "prometheus is off in this file; Turnpike serves metrics on 127.0.0.1:9641 anyway";
        out.drop_all(seen, "prometheus-port", why);
        out.drop_all(seen, "prometheus-address", why);
    }
    alternate_servers(seen, out, "alternate-server", STUN_PORT);
    alternate_servers(seen, out, "tls-alternate-server", TLS_PORT);
}

/// `alternate-server` or `tls-alternate-server`: the same key in Turnpike, one per family, a
/// bare IP taking coturn's default port (`default_port`).
fn alternate_servers(seen: &Seen<'_>, out: &mut Out, key: &'static str, default_port: u16) {
    let mut alternates: Vec<SocketAddr> = Vec::new();
    for (line, value) in seen.all(key) {
        let value = value.trim();
        let parsed = value.parse::<SocketAddr>().or_else(|_| {
            value
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, default_port))
        });
        match parsed {
            Ok(addr) if alternates.iter().any(|a| a.is_ipv4() == addr.is_ipv4()) => {
                out.drop(
                    key,
                    *line,
                    "Turnpike takes one alternate server per address family; the first is kept",
                );
            }
            Ok(addr) => alternates.push(addr),
            Err(_) => out.problem(*line, key, format!("`{value}` is not IP or IP:PORT")),
        }
    }
    if !alternates.is_empty() {
        out.set(key, strings(alternates), seen, &[key]);
        let why = "coturn sent every Allocate to these servers (load balancing); Turnpike sends \
                   new clients there only when it is full (quota, ports) or drains (docs/turn.md)";
        out.differs(key, key, None, why.to_owned());
    }
}
