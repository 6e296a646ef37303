//! Who is handed a TURN credential over HTTP (`GET /api/ice-servers` and the signaling `joined`
//! frame), and with what identity and lifetime (issue #10, docs/http.md "Who gets TURN
//! credentials").
//!
//! A TURN credential lets its holder relay traffic through this server; handing one to anyone
//! who can reach the HTTP port would make the server an open relay. So:
//! - `signaling-secret` set: only to a caller with a valid join token. The REST username is
//!   `EXPIRY:ROOM` (the token's room, made safe), so relayed traffic is traceable to a token,
//!   and EXPIRY is at most the token's expiry: a credential never outlives its token.
//! - no secret: only to a local caller (loopback TCP peer, no proxy header), the quick start
//!   on `http://localhost:8080`; others get STUN URLs only. `open-credentials = true` restores
//!   handing credentials to anyone, with a warning at start.
//! - Either way, at most `credential-rate` credentials per source per minute ([`IssueRate`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderName};
use signal::token::{self, TokenError};
use signal::{Grant, IceConfig, IceSource};

use super::ice_servers::{IceSettings, Lease};
use super::issue_rate::IssueRate;

/// The REST user id of credentials handed out without a token (`EXPIRY:turnpike`).
pub const LOCAL_USER_ID: &str = "turnpike";
/// Longest room part of a REST username: usernames travel in every TURN request (RFC 8489
/// §14.3 allows 509 bytes) and in log lines.
const MAX_ID_BYTES: usize = 64;
/// Headers a reverse proxy adds: a request carrying one came through a proxy, so its
/// loopback TCP peer says nothing about the real caller.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Who may be handed credentials.
#[derive(Clone)]
pub enum Issuing {
    /// Callers with a join token signed with this `signaling-secret`.
    Tokens(Vec<u8>),
    /// Local callers only ([`is_local_caller`]).
    LocalCallers,
    /// Anyone (`open-credentials = true`).
    Anyone,
}

impl std::fmt::Debug for Issuing {
    /// Leaves out the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Issuing::Tokens(_) => "Tokens",
            Issuing::LocalCallers => "LocalCallers",
            Issuing::Anyone => "Anyone",
        })
    }
}

/// What a request for ICE servers gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// STUN and TURN URLs with this credential.
    Credential(Lease),
    /// STUN URLs only: TURN is off, or the caller is not entitled to a credential.
    StunOnly,
    /// 401: a token is needed and this one is missing or bad.
    Unauthorized(TokenError),
    /// 429: the source had its share of credentials; retry after this long.
    Limited(Duration),
}

/// The credential policy of the HTTP server.
#[derive(Debug)]
pub struct Credentials {
    /// The ICE server list and its REST secret.
    pub settings: IceSettings,
    /// Who may be handed credentials.
    pub issuing: Issuing,
    /// Credentials per source per minute.
    pub rate: IssueRate,
}

/// A request's caller, as far as credentials go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The caller is local: loopback TCP peer and no proxy header.
    pub local: bool,
    /// The address its credentials are counted against ([`rate_source`]).
    pub source: IpAddr,
}

impl Caller {
    /// Classifies the caller of a request from `peer` with `headers`.
    pub fn of(peer: SocketAddr, headers: &HeaderMap) -> Caller {
        Caller {
            local: is_local_caller(peer.ip(), headers),
            source: rate_source(peer.ip(), headers),
        }
    }
}

impl Credentials {
    /// The decision for `GET /api/ice-servers` from `caller` with `token` (from the
    /// `Authorization: Bearer` header or `?token=`), at `unix_now` / `now`.
    pub fn for_request(
        &self,
        caller: Caller,
        token: Option<&str>,
        unix_now: u64,
        now: Instant,
    ) -> Decision {
        if !self.settings.turn() {
            return Decision::StunOnly;
        }
        let lease = match &self.issuing {
            Issuing::Tokens(secret) => {
                let Some(token) = token else {
                    return Decision::Unauthorized(TokenError::Malformed);
                };
                match token::claims(secret, token, unix_now) {
                    Ok(claims) => self.lease_for(&claims.room, claims.expiry_unix, unix_now),
                    Err(error) => return Decision::Unauthorized(error),
                }
            }
            Issuing::LocalCallers if !caller.local => return Decision::StunOnly,
            Issuing::LocalCallers | Issuing::Anyone => self.lease(unix_now),
        };
        match self.rate.take(caller.source, now) {
            Ok(()) => Decision::Credential(lease),
            Err(wait) => Decision::Limited(wait),
        }
    }

    /// Where the `joined` frames of a WebSocket from `caller`, reached as `url_host`, get
    /// their ICE servers. Credentials are minted when `joined` is sent (with tokens: from the
    /// token the hub checked), counted against the caller's source; a caller over its rate, or
    /// not entitled, gets STUN URLs only (the room still works for direct and STUN paths).
    pub fn ice_source(self: &Arc<Self>, caller: Caller, url_host: String) -> IceSource {
        let stun_only = |this: &Credentials, host: &str| IceConfig {
            servers: raw(&this.settings.servers(host, None)),
            ttl: this.settings.ttl_secs(),
        };
        let entitled = match self.issuing {
            Issuing::Tokens(_) | Issuing::Anyone => true,
            Issuing::LocalCallers => caller.local,
        };
        if !self.settings.turn() || !entitled {
            return IceSource::Fixed(stun_only(self, &url_host));
        }
        let this = Arc::clone(self);
        IceSource::Minted(Box::new(move |grant: Option<Grant<'_>>, unix_now| {
            let lease = match (&this.issuing, grant) {
                (Issuing::Tokens(_), Some(grant)) => {
                    this.lease_for(grant.room, grant.expiry_unix, unix_now)
                }
                // The hub admits nobody without a token when it has a secret; for safety.
                (Issuing::Tokens(_), None) => return stun_only(&this, &url_host),
                _ => this.lease(unix_now),
            };
            if lease.expiry_unix <= unix_now
                || this.rate.take(caller.source, Instant::now()).is_err()
            {
                return stun_only(&this, &url_host);
            }
            IceConfig {
                ttl: lease.expiry_unix - unix_now,
                servers: raw(&this.settings.servers(&url_host, Some(&lease))),
            }
        }))
    }

    /// A credential without a token: `now + ice-ttl`, user id `turnpike`.
    fn lease(&self, unix_now: u64) -> Lease {
        Lease {
            expiry_unix: unix_now.saturating_add(self.settings.ttl_secs()),
            id: LOCAL_USER_ID.to_owned(),
        }
    }

    /// A credential for a token of `room` expiring at `token_expiry`: never beyond it.
    fn lease_for(&self, room: &str, token_expiry: u64, unix_now: u64) -> Lease {
        Lease {
            expiry_unix: unix_now
                .saturating_add(self.settings.ttl_secs())
                .min(token_expiry),
            id: rest_user_id(room),
        }
    }
}

/// The ICE server list as the hub takes it.
fn raw(servers: &serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(servers.to_string())
        .unwrap_or_else(|_| IceConfig::empty().servers)
}

/// The REST user id for a room: REST usernames are `EXPIRY:ID` (draft-uberti-behave-turn-rest
/// §2.2), so the id must hold no `:`; it is also kept printable (it is logged) and short.
/// Bytes other than ASCII letters, digits, `-`, `.` and `_` become `_`.
pub fn rest_user_id(room: &str) -> String {
    let id: String = room
        .chars()
        .take(MAX_ID_BYTES)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        "_".to_owned()
    } else {
        id
    }
}

/// A caller is local when its TCP peer is a loopback address (127.0.0.0/8, `::1`, or
/// `::ffff:127.x.y.z`) and the request carries no proxy header: a reverse proxy on the same
/// host would otherwise make every internet caller look local.
pub fn is_local_caller(peer: IpAddr, headers: &HeaderMap) -> bool {
    is_loopback(peer) && !has_proxy_header(headers)
}

/// Loopback, also in its IPv4-mapped IPv6 form (a dual-stack socket shows IPv4 that way).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The request carries a header a reverse proxy adds.
fn has_proxy_header(headers: &HeaderMap) -> bool {
    PROXY_HEADERS
        .iter()
        .any(|name| headers.contains_key(HeaderName::from_static(name)))
}

/// The address a request's credentials are counted against: the TCP peer, except for a
/// loopback peer with proxy headers (a reverse proxy on this host, which would otherwise put
/// every caller in one bucket): then the client address the proxy added last (`X-Real-IP`,
/// else the last `X-Forwarded-For` entry, else the last `Forwarded: for=`). A remote caller's
/// own proxy headers are never believed.
pub fn rate_source(peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_loopback(peer) {
        return peer;
    }
    let last_value = |name: HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .map(str::trim)
            .map(str::to_owned)
    };
    let real_ip = last_value(HeaderName::from_static("x-real-ip"));
    let forwarded_for = last_value(HeaderName::from_static("x-forwarded-for"));
    let forwarded = last_value(header::FORWARDED).and_then(|element| {
        element
            .split(';')
            .find_map(|pair| pair.trim().strip_prefix("for=").map(str::to_owned))
    });
    [real_ip, forwarded_for, forwarded]
        .into_iter()
        .flatten()
        .find_map(|text| parse_node(&text))
        .unwrap_or(peer)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, or any of them in quotes (RFC 7239 §6).
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests;
