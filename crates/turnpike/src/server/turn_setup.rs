//! From the validated [`Config`] to the settings of the TURN core: relay addresses (detected
//! when not configured), 1:1 NAT mappings, limits, credentials and the peer policy.
//!
//! ## Relay addresses when `relay-ip` is not set
//! - IPv4, the first that applies: the PRIVATE part of an IPv4 `external-ip`; the listen IP,
//!   when the IPv4 `listen` addresses share exactly one specific IP; the first IPv4 address of
//!   the host's interfaces that is neither loopback nor link-local; else 127.0.0.1, with a
//!   warning that relayed addresses are then only reachable from this host.
//! - IPv6: the PRIVATE part of an IPv6 `external-ip`, else none (IPv6 relaying is only on when
//!   configured).
//!
//! When `relay-ip` is set it is used as given, and a family it does not list is not relayed.
//! It may list several addresses of a family: the first is the main one (the one an
//! `external-ip` maps, which is then its only one), the others take allocations in turn.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::Ipv4Net;
use turn::auth::{AuthConfig, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::TurnConfig;

use crate::config::{Config, ExternalIp};
use crate::users;

/// The lifetime of an allocation when the client asks for less or none (RFC 8656 §7.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// REST secrets shorter than this draw a warning (validation rejects those under 8 bytes).
const REST_SECRET_RECOMMENDED_BYTES: usize = 16;

/// Everything the TURN core needs, built once at start.
#[derive(Debug)]
pub struct TurnSettings {
    /// Relay addresses, ports, lifetimes, quotas and limits.
    pub turn: TurnConfig,
    /// Realm, nonce secret, users, REST secrets, failure limit.
    pub auth: AuthConfig,
    /// The peer-address policy.
    pub policy: PeerPolicy,
}

/// Builds the TURN settings for `config`: detects the relay IP from the host's interfaces when
/// needed, loads the user database, draws a random nonce secret when none is configured, and
/// logs a warning for each risky choice.
pub fn turn_settings(config: &Config) -> anyhow::Result<TurnSettings> {
    let mut settings = configured_settings(config)?;
    if config.turn
        && (config.permission_lifetime != turn::relay::PERMISSION_LIFETIME
            || config.channel_lifetime != turn::relay::CHANNEL_LIFETIME)
    {
        // Clients refresh on RFC 8656's schedule (§9: 300 s, §12: 600 s): shorter lifetimes
        // stop their data between refreshes.
        tracing::warn!(
            permission_lifetime_s = config.permission_lifetime.as_secs(),
            channel_lifetime_s = config.channel_lifetime.as_secs(),
            "`permission-lifetime`/`channel-lifetime` differ from RFC 8656's 300 s / 600 s:              clients that refresh on the RFC's schedule may lose data; meant for tests"
        );
    }
    if config.turn && settings.auth.users.is_empty() && settings.auth.rest_secrets.is_empty() {
        add_ephemeral_credential(&mut settings.auth, &config.realm);
    } else if config.turn && config.http && settings.auth.rest_secrets.is_empty() {
        // An operator who configured users but no REST secrets did not ask for REST
        // credentials: none are minted (issue #10), so the HTTP API cannot become a way
        // around the users the operator chose.
        tracing::info!(
            "TURN users are configured but no `rest-secrets`: /api/ice-servers and the \
             signaling `joined` frame hand out STUN URLs only; set `rest-secrets` to hand out \
             TURN credentials over HTTP"
        );
    }
    Ok(settings)
}

/// [`turn_settings`] with only what the configuration holds (no credential made up): what a
/// configuration reload applies.
pub fn configured_settings(config: &Config) -> anyhow::Result<TurnSettings> {
    let interfaces = if_addrs::get_if_addrs().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot list the network interfaces");
        Vec::new()
    });
    let subnets = host_subnets(&interfaces);
    let interfaces: Vec<IpAddr> = interfaces.iter().map(if_addrs::Interface::ip).collect();
    let db_users = match &config.user_db {
        Some(path) => users::load(path, &config.realm)?,
        None => Vec::new(),
    };
    let mut settings = settings_from(config, &interfaces, db_users, rand::random())?;
    settings.policy = std::mem::take(&mut settings.policy).with_host_subnets(subnets);
    Ok(settings)
}

impl TurnSettings {
    /// The REST secret the HTTP API mints TURN credentials with: the first of `rest-secrets`
    /// (list the new one first while rotating), or the one made up for a run without any
    /// credentials; `None` when TURN is off or only users are configured (STUN URLs only).
    pub fn api_secret(&self) -> Option<String> {
        self.turn
            .enabled
            .then(|| self.auth.rest_secrets.first().cloned())
            .flatten()
    }
}

/// A random REST secret for this run only: 24 bytes, base64.
fn random_rest_secret() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())
}

/// How long the credential printed for a server without configured credentials is valid.
const EPHEMERAL_CREDENTIAL_TTL: u64 = 24 * 3600;

/// A server started without credentials would refuse every Allocate. Rather than run an open
/// relay, it makes up a REST secret for this run only and prints one credential derived from
/// it, so that the person who started it can use it at once (as Jupyter prints its token).
/// Nothing is written anywhere; the next start makes another one.
fn add_ephemeral_credential(auth: &mut AuthConfig, realm: &str) {
    let secret = random_rest_secret();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let username =
        turn::auth::rest::username(unix_now + EPHEMERAL_CREDENTIAL_TTL, Some("turnpike"));
    let password = turn::auth::rest::password(&secret, &username);
    auth.rest_secrets.push(secret);
    tracing::warn!(
        %realm,
        %username,
        %password,
        "no TURN credentials configured (`users`, `user-db` or `rest-secrets`): made up one for \
         this run, valid 24 h. Configure your own for production"
    );
}

/// [`turn_settings`] with its inputs from the outside world given: the host's interface
/// addresses, the users of the database and a nonce secret to use if none is configured.
pub fn settings_from(
    config: &Config,
    interfaces: &[IpAddr],
    db_users: Vec<StaticUser>,
    random_secret: [u8; 32],
) -> anyhow::Result<TurnSettings> {
    let relay = relay_ips(config, interfaces);
    if relay.loopback_fallback && config.turn {
        tracing::warn!(
            "no IPv4 address found for relaying: relay sockets bind to 127.0.0.1, so relayed \
             addresses are only reachable from this host; set `relay-ip`"
        );
    }
    let (external_v4, external_v6) = external_ips(&config.external_ip, relay.v4, relay.v6)?;
    let turn = TurnConfig {
        enabled: config.turn,
        relay_v4: relay.v4,
        relay_v6: relay.v6,
        more_relay_ips: relay.more.clone(),
        external_v4,
        external_v6,
        port_range: config.relay_ports.clone(),
        default_lifetime: DEFAULT_LIFETIME,
        max_lifetime: config.max_allocation_lifetime,
        user_quota: config.user_quota,
        total_quota: config.total_quota,
        max_permissions: config.max_permissions,
        max_channels: config.max_channels,
        bandwidth: config.max_bps,
        software: config.software.clone(),
        // The relay sockets set DF per datagram (crates/net `set_dont_fragment`).
        dont_fragment: true,
        rfc5766_channel_numbers: config.rfc5766_channel_numbers,
        max_peer_connections: config.max_peer_connections,
        tcp_relay: config.tcp_relay,
        own_ips: own_ips(
            config,
            interfaces,
            &[relay.v4, relay.v6, external_v4, external_v6],
        ),
        service_ports: service_ports(config),
        // Set by `serve` once the XDP program is attached (`xdp-interfaces`).
        fast_path: false,
        permission_lifetime: config.permission_lifetime,
        channel_lifetime: config.channel_lifetime,
    };
    let secret = config.nonce_secret.map_or(random_secret, |secret| secret.0);
    let mut auth = AuthConfig::new(config.realm.clone(), secret);
    auth.nonce_lifetime = config.nonce_lifetime;
    auth.users = merge_users(config, db_users)?;
    auth.rest_secrets = config
        .rest_secrets
        .iter()
        .map(|secret| secret.expose().to_owned())
        .collect();
    auth.failures_allowed = config.auth_failures;
    auth.response_budget = config.amplification_budget;
    warn_about_credentials(config, &auth);
    let policy = PeerPolicy::new(
        config.allowed_peers.iter().copied(),
        config.denied_peers.iter().copied(),
    );
    Ok(TurnSettings { turn, auth, policy })
}

/// The relay IPs chosen, and whether IPv4 fell back to loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayIps {
    /// IPv4 relay address (the first configured).
    pub v4: Option<IpAddr>,
    /// IPv6 relay address (the first configured).
    pub v6: Option<IpAddr>,
    /// The other configured relay addresses, of either family.
    pub more: Vec<IpAddr>,
    /// IPv4 is 127.0.0.1 because nothing better was found.
    pub loopback_fallback: bool,
}

/// The relay IPs by the rules in the [module docs](self).
pub fn relay_ips(config: &Config, interfaces: &[IpAddr]) -> RelayIps {
    let of_family = |ips: &[IpAddr], v4: bool| ips.iter().copied().find(|ip| ip.is_ipv4() == v4);
    if !config.relay_ip.is_empty() {
        let (v4, v6) = (
            of_family(&config.relay_ip, true),
            of_family(&config.relay_ip, false),
        );
        let more = config
            .relay_ip
            .iter()
            .copied()
            .filter(|ip| Some(*ip) != v4 && Some(*ip) != v6)
            .collect();
        return RelayIps {
            v4,
            v6,
            more,
            loopback_fallback: false,
        };
    }
    let private = |v4: bool| {
        let entry = config.external_ip.iter().find(|e| e.public.is_ipv4() == v4);
        entry.and_then(|e| e.private)
    };
    let mut listen_v4: Vec<IpAddr> = config
        .listen
        .iter()
        .map(|address| address.ip())
        .filter(IpAddr::is_ipv4)
        .collect();
    listen_v4.sort();
    listen_v4.dedup();
    let single_listen = match listen_v4[..] {
        [ip] if !ip.is_unspecified() => Some(ip),
        _ => None,
    };
    let interface = interfaces.iter().copied().find(|ip| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(_) => false,
    });
    let v4 = private(true).or(single_listen).or(interface);
    RelayIps {
        v4: Some(v4.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
        v6: private(false),
        more: Vec::new(),
        loopback_fallback: v4.is_none(),
    }
}

/// The addresses advertised instead of the relay IPs (`external_v4`, `external_v6`).
pub fn external_ips(
    entries: &[ExternalIp],
    relay_v4: Option<IpAddr>,
    relay_v6: Option<IpAddr>,
) -> anyhow::Result<(Option<IpAddr>, Option<IpAddr>)> {
    let relay: Vec<IpAddr> = [relay_v4, relay_v6].into_iter().flatten().collect();
    let mut mapped = (None, None);
    for entry in entries {
        crate::config::external_for(entry, &relay, true)
            .map_err(anyhow::Error::msg)
            .context("external-ip")?;
        if entry.public.is_ipv4() {
            mapped.0 = Some(entry.public);
        } else {
            mapped.1 = Some(entry.public);
        }
    }
    Ok(mapped)
}

/// The IPv4 subnets of the host's interfaces, whose broadcast addresses the peer policy
/// denies (issue #10: only the kernel's missing SO_BROADCAST stopped a relay to them).
fn host_subnets(interfaces: &[if_addrs::Interface]) -> Vec<Ipv4Net> {
    interfaces
        .iter()
        .filter_map(|i| match &i.addr {
            if_addrs::IfAddr::V4(v4) => Ipv4Net::new(v4.ip, v4.prefixlen).ok(),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect()
}

/// This server's own addresses, which peers may not use to reach its service ports: specific
/// listen and TLS addresses, the RFC 5780 alternate IP, relay and external IPs, and every
/// interface address of a family with a wildcard listener (which answers on all of them).
pub fn own_ips(config: &Config, interfaces: &[IpAddr], extra: &[Option<IpAddr>]) -> Vec<IpAddr> {
    let tls = config
        .tls
        .as_ref()
        .map_or(&[][..], |_| &config.tls_listen[..]);
    let listeners: Vec<IpAddr> = config.listen.iter().chain(tls).map(|a| a.ip()).collect();
    let wildcard = |v4: bool| {
        listeners
            .iter()
            .any(|ip| ip.is_unspecified() && ip.is_ipv4() == v4)
    };
    let mut ips: Vec<IpAddr> = listeners
        .iter()
        .copied()
        .filter(|ip| !ip.is_unspecified())
        .collect();
    ips.extend(config.alternate_ip);
    ips.extend(extra.iter().flatten());
    ips.extend(interfaces.iter().filter(|ip| wildcard(ip.is_ipv4())));
    ips.sort();
    ips.dedup();
    ips
}

/// This server's service ports: the STUN/TURN, TLS and RFC 5780 alternate ports (port 0, "any
/// free port", is left out: the I/O layer knows the bound port).
pub fn service_ports(config: &Config) -> Vec<u16> {
    let tls = config
        .tls
        .as_ref()
        .map_or(&[][..], |_| &config.tls_listen[..]);
    let mut ports: Vec<u16> = config.listen.iter().chain(tls).map(|a| a.port()).collect();
    ports.extend(config.alternate_port);
    ports.retain(|&port| port != 0);
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The users of the configuration followed by those of the database; a name in both is an
/// error (which password would be meant?).
fn merge_users(config: &Config, db_users: Vec<StaticUser>) -> anyhow::Result<Vec<StaticUser>> {
    let mut all = config.users.clone();
    for user in db_users {
        if all.iter().any(|known| known.username == user.username) {
            let db = config.user_db.as_deref().unwrap_or("user-db".as_ref());
            bail!(
                "user `{}` is defined both in `users` and in the user database `{}`",
                user.username,
                db.display()
            );
        }
        all.push(user);
    }
    Ok(all)
}

/// Warns about credentials that make TURN useless or weak. Never names a user.
fn warn_about_credentials(config: &Config, auth: &AuthConfig) {
    if !config.turn {
        return;
    }
    let short = auth
        .rest_secrets
        .iter()
        .filter(|secret| secret.len() < REST_SECRET_RECOMMENDED_BYTES)
        .count();
    if short > 0 {
        tracing::warn!(
            count = short,
            "REST secrets shorter than {REST_SECRET_RECOMMENDED_BYTES} bytes can be guessed; \
             use `openssl rand -base64 24`"
        );
    }
    tracing::info!(
        realm = %auth.realm,
        users = auth.users.len(),
        rest_secrets = auth.rest_secrets.len(),
        shared_nonce_secret = config.nonce_secret.is_some(),
        "TURN credentials"
    );
}

#[cfg(test)]
mod tests;
