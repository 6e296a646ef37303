//! The `iceServers` the signaling server hands out (an `RTCIceServer[]`), turned into the STUN
//! and TURN server addresses of the ICE agent.
//!
//! Only what our agent can use is kept: `stun:` URIs (RFC 7064) and `turn:` URIs (RFC 7065)
//! over UDP. `turns:` and `?transport=tcp` are skipped: the agent's TURN client speaks UDP.

use std::net::SocketAddr;

use anyhow::bail;
use ice::{StunUri, TurnCredentials, TurnUri};
use serde::Deserialize;

use crate::client::discovery::{self, Dns, ServerName, Transport};

/// One `RTCIceServer`.
#[derive(Debug, Clone, Deserialize)]
pub struct IceServer {
    /// One URL or several.
    pub urls: Urls,
    /// TURN username (REST credentials: `expiry:user`).
    #[serde(default)]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default)]
    pub credential: Option<String>,
}

/// `urls` is a string or an array of strings in the WebRTC API.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    /// A single URL.
    One(String),
    /// Several URLs.
    Many(Vec<String>),
}

impl Urls {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let urls: &[String] = match self {
            Urls::One(url) => std::slice::from_ref(url),
            Urls::Many(urls) => urls,
        };
        urls.iter().map(String::as_str)
    }
}

/// A server the agent can use, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsableServer {
    /// A STUN server.
    Stun { name: ServerName },
    /// A TURN server over UDP, with its credentials.
    Turn {
        name: ServerName,
        username: String,
        password: String,
    },
}

/// The servers of `list` that the agent can use, in order, without duplicates.
pub fn usable(list: &[IceServer]) -> Vec<UsableServer> {
    let mut servers = Vec::new();
    for server in list {
        for url in server.urls.iter() {
            if let Some(found) = usable_url(url, server) {
                if !servers.contains(&found) {
                    servers.push(found);
                }
            }
        }
    }
    servers
}

fn usable_url(url: &str, server: &IceServer) -> Option<UsableServer> {
    if url.starts_with("stun:") {
        let uri = StunUri::parse(url).ok()?;
        return Some(UsableServer::Stun {
            name: ServerName::stun(&uri),
        });
    }
    let uri = TurnUri::parse(url).ok()?;
    // The agent's TURN client speaks UDP only (RFC 7065 §3.2: no transport means UDP).
    if uri.secure || uri.transport.as_deref().is_some_and(|t| t != "udp") {
        return None;
    }
    Some(UsableServer::Turn {
        // SRV `_turn._udp` (RFC 5928 §3: the transport is known, no NAPTR).
        name: ServerName::turn(&uri, Some(Transport::Udp)),
        username: server.username.clone()?,
        password: server.credential.clone()?,
    })
}

/// The resolved servers, ready for [`ice::AgentConfig`].
#[derive(Debug, Default)]
pub struct Resolved {
    /// STUN servers.
    pub stun: Vec<SocketAddr>,
    /// TURN servers and their credentials.
    pub turn: Vec<(SocketAddr, TurnCredentials)>,
}

/// Resolves the servers (RFC 8489 §8 and RFC 5928 §3: SRV, then A/AAAA), keeping the first
/// IPv4 address of each (the p2p client gathers IPv4 candidates).
pub async fn resolve(servers: &[UsableServer], dns: &Dns) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    for server in servers {
        let name = match server {
            UsableServer::Stun { name } | UsableServer::Turn { name, .. } => name,
        };
        let resolution = discovery::resolve(dns, name, &[Transport::Udp]).await;
        if resolution.candidates.is_empty() {
            bail!("cannot resolve {}: {}", name.host, resolution.error());
        }
        let address = resolution
            .first_per_target(SocketAddr::is_ipv4)
            .first()
            .copied();
        let Some(address) = address else { continue };
        match server {
            UsableServer::Stun { .. } => resolved.stun.push(address),
            UsableServer::Turn {
                username, password, ..
            } => resolved.turn.push((
                address,
                TurnCredentials {
                    username: username.clone(),
                    password: password.clone(),
                },
            )),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stun(uri: &str) -> ServerName {
        ServerName::stun(&StunUri::parse(uri).unwrap())
    }

    #[test]
    fn keeps_stun_and_udp_turn_and_skips_what_the_agent_cannot_use() {
        // The shape our own server's `joined` frame carries (docs/signaling.md).
        let list: Vec<IceServer> = serde_json::from_str(
            r#"[{"urls":["stun:turn.example.org:3478"]},
                {"urls":["turn:turn.example.org:3478?transport=udp","turn:turn.example.org:3478?transport=tcp","turns:turn.example.org:5349"],
                 "username":"1900086400:turnpike","credential":"secret"},
                {"urls":"stun:[2001:db8::1]"},
                {"urls":"turn:nocreds.example.org"}]"#,
        )
        .unwrap();
        assert_eq!(
            usable(&list),
            vec![
                UsableServer::Stun {
                    name: stun("stun:turn.example.org:3478")
                },
                UsableServer::Turn {
                    name: ServerName::turn(
                        &TurnUri::parse("turn:turn.example.org:3478").unwrap(),
                        Some(Transport::Udp)
                    ),
                    username: "1900086400:turnpike".into(),
                    password: "secret".into()
                },
                UsableServer::Stun {
                    name: stun("stun:[2001:db8::1]")
                },
            ]
        );
    }
}
