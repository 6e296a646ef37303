//! The signaling side of `turnpike p2p`: a WebSocket client of our room protocol
//! (docs/signaling.md), and the few frames two p2p peers exchange through it.
//!
//! One task owns the WebSocket. It answers the server's `ping` itself (the server drops a
//! connection silent for 30 s), forwards every other frame to [`Signaling::recv`], and sends
//! what [`Signaling::send`] queues. Peers meet like browsers do: the one that joins second
//! sends an `offer` to the first, the first answers; candidates trickle as `candidate` frames
//! holding the RFC 8839 string, the same `{"candidate": ...}` shape a browser sends.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::ice_servers::IceServer;
use super::webrtc::frames::{BrowserDescription, SdpType};

/// Version tag in our offer/answer, so that a browser's SDP offer in the same room is told
/// apart (and answered in WebRTC) rather than misread.
pub const PROTOCOL: &str = "turnpike-p2p/1";

/// What the server said to our `join`.
#[derive(Debug, Clone, Deserialize)]
pub struct Joined {
    /// Our peer id.
    pub id: String,
    /// The peers already in the room, in join order.
    pub peers: Vec<String>,
    /// STUN/TURN servers with short-lived TURN credentials, as a browser gets them.
    #[serde(rename = "iceServers", default)]
    pub ice_servers: Vec<IceServer>,
}

/// Our offer and answer: the ICE credentials and the certificate fingerprint the peer must
/// present in the QUIC handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Always [`PROTOCOL`].
    pub protocol: String,
    /// ICE username fragment (RFC 8445 §5.3).
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// `sha-256 AB:CD:...` of the sender's QUIC certificate (the SDP `a=fingerprint` form).
    pub fingerprint: String,
    /// What the sender will do once connected, so that two senders (or two receivers) find
    /// out before connecting; absent from the descriptions of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// What a peer does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `--send FILE`.
    Send,
    /// `--receive DIR`.
    Receive,
    /// Neither: chat.
    Chat,
}

/// Why two peers with these roles cannot work together, if they cannot: two senders would
/// each wait for the other to accept a file, two receivers for a file that never comes.
pub fn role_conflict(ours: Role, theirs: Option<Role>) -> Option<&'static str> {
    match (ours, theirs?) {
        (Role::Send, Role::Send) => {
            Some("both peers are sending (--send): give the other peer --receive DIR instead")
        }
        (Role::Receive, Role::Receive) => {
            Some("both peers are receiving (--receive): give the other peer --send FILE instead")
        }
        _ => None,
    }
}

/// A frame from another peer, or news about the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A peer joined after us.
    Joined(String),
    /// A peer left.
    Left(String),
    /// `offer` from a peer.
    Offer(String, Description),
    /// `answer` from a peer.
    Answer(String, Description),
    /// An SDP `offer` from a peer: a browser (the room page), answered in WebRTC.
    BrowserOffer(String, BrowserDescription),
    /// A trickled candidate (`None`: the end of candidates, an empty string on the wire).
    Candidate(String, Option<String>),
    /// `bye` from a peer.
    Bye(String),
}

/// A joined signaling connection.
#[derive(Debug)]
pub struct Signaling {
    outgoing: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<anyhow::Result<Value>>,
    task: tokio::task::JoinHandle<()>,
    /// What the server answered to `join`.
    pub joined: Joined,
}

impl Signaling {
    /// Connects to `url` (`ws://HOST:PORT/ws`, or `wss://` verified against `ca_file`'s
    /// certificates or the public CAs), joins `room` (with `token` when the server requires
    /// one) and waits for `joined`, all before `deadline`: a server that accepts TCP but
    /// never answers, or an address that drops the SYN, fails at the deadline rather than
    /// at the kernel's or the server's own timeouts (minutes).
    pub async fn join(
        url: &str,
        ca_file: Option<&Path>,
        room: &str,
        token: Option<&str>,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        let connector = if url.starts_with("wss://") {
            Some(super::signaling_tls::connector(ca_file)?)
        } else {
            None
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector);
        let (socket, _) = tokio::time::timeout_at(deadline, connecting)
            .await
            .map_err(|_| {
                anyhow!(
                    "no answer within {} (TCP connect, TLS and WebSocket handshake)",
                    seconds(budget)
                )
            })
            .and_then(|connected| connected.map_err(connect_error))
            .with_context(|| format!("cannot connect to the signaling server {url}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let (deliver, mut incoming) = mpsc::unbounded_channel();
        let pong = outgoing.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = to_send.recv() => match frame {
                        Some(text) => {
                            if sink.send(Message::text(text)).await.is_err() { break; }
                        }
                        None => { let _ = sink.close().await; break; }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(&text) {
                            Ok(value) if value["type"] == "ping" => {
                                let _ = pong.send(json!({"type": "pong"}).to_string());
                            }
                            Ok(value) => { let _ = deliver.send(Ok(value)); }
                            Err(e) => { let _ = deliver.send(Err(anyhow!("signaling sent bad JSON: {e}"))); }
                        },
                        Some(Ok(Message::Close(_))) | None => {
                            let _ = deliver.send(Err(anyhow!("the signaling server closed the connection")));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            let _ = deliver.send(Err(anyhow!("signaling connection failed: {e}")));
                            break;
                        }
                    },
                }
            }
        });
        let mut join = json!({"type": "join", "room": room});
        if let Some(token) = token {
            join["token"] = json!(token);
        }
        outgoing
            .send(join.to_string())
            .map_err(|_| anyhow!("the signaling connection closed"))?;
        let frame = tokio::time::timeout_at(deadline, incoming.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "the signaling server {url} did not answer `join` within {}",
                    seconds(budget)
                )
            })?
            .ok_or_else(|| anyhow!("the signaling connection closed before `joined`"))??;
        match frame["type"].as_str() {
            Some("joined") => {}
            Some("error") => bail!(
                "the signaling server refused to join room {room}: {} ({})",
                frame["message"].as_str().unwrap_or(""),
                frame["code"].as_str().unwrap_or("?")
            ),
            _ => bail!("unexpected answer to join: {frame}"),
        }
        let joined: Joined =
            serde_json::from_value(frame).context("the server's `joined` frame is malformed")?;
        Ok(Signaling {
            outgoing,
            incoming,
            task,
            joined,
        })
    }

    /// Sends a directed frame (`offer`, `answer`, `candidate`, `bye`) to peer `to`.
    pub fn send(&self, kind: &str, to: &str, data: Value) -> anyhow::Result<()> {
        let frame = json!({"type": kind, "to": to, "data": data});
        self.outgoing
            .send(frame.to_string())
            .map_err(|_| anyhow!("the signaling connection closed"))
    }

    /// Sends our description as an `offer` or `answer`.
    pub fn send_description(
        &self,
        kind: &str,
        to: &str,
        description: &Description,
    ) -> anyhow::Result<()> {
        self.send(kind, to, serde_json::to_value(description)?)
    }

    /// Trickles one candidate (`None`: end of candidates).
    pub fn send_candidate(&self, to: &str, candidate: Option<&str>) -> anyhow::Result<()> {
        self.send(
            "candidate",
            to,
            json!({"candidate": candidate.unwrap_or("")}),
        )
    }

    /// The next event about the room. Frames this client does not use (`broadcast`,
    /// `message`, `pong`, server errors about a single frame) are skipped; a closed connection
    /// is an error.
    pub async fn recv(&mut self) -> anyhow::Result<PeerEvent> {
        loop {
            let frame = self
                .incoming
                .recv()
                .await
                .ok_or_else(|| anyhow!("the signaling connection closed"))??;
            if let Some(event) = parse_event(&frame)? {
                return Ok(event);
            }
        }
    }

    /// Leaves the room (the others see `peer-left` at once) and closes the connection,
    /// waiting up to a second for the frames to go out.
    pub async fn leave(self) {
        let _ = self.outgoing.send(json!({"type": "leave"}).to_string());
        drop(self.outgoing);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.task).await;
    }
}

/// A WebSocket connect error as one message: tungstenite's I/O and TLS errors print their
/// cause and also return it as their source, so `{:#}` would say it twice ("Connection
/// refused (os error 111): Connection refused (os error 111)"); the cause alone says it all.
fn connect_error(error: tungstenite::Error) -> anyhow::Error {
    match error {
        tungstenite::Error::Io(error) => anyhow::Error::new(error),
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(error)) => {
            anyhow::Error::new(*error)
        }
        other => anyhow::Error::new(other),
    }
}

/// "5 s", "0.5 s".
fn seconds(duration: Duration) -> String {
    format!("{} s", (duration.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Reads one server frame; `Ok(None)` for frames p2p does not use.
pub fn parse_event(frame: &Value) -> anyhow::Result<Option<PeerEvent>> {
    let from = || frame["from"].as_str().unwrap_or_default().to_owned();
    let event = match frame["type"].as_str().unwrap_or_default() {
        "peer-joined" => PeerEvent::Joined(frame["id"].as_str().unwrap_or_default().to_owned()),
        "peer-left" => PeerEvent::Left(frame["id"].as_str().unwrap_or_default().to_owned()),
        kind @ ("offer" | "answer") if BrowserDescription::is_sdp(&frame["data"]) => {
            let description = BrowserDescription::parse(kind, &frame["data"])
                .with_context(|| format!("peer {} sent a malformed {kind}", from()))?;
            match description.kind {
                SdpType::Offer => PeerEvent::BrowserOffer(from(), description),
                // We never offer SDP, so an SDP answer answers nothing of ours.
                SdpType::Answer => {
                    tracing::debug!(from = %from(), "unexpected SDP answer ignored");
                    return Ok(None);
                }
            }
        }
        kind @ ("offer" | "answer") => {
            let description: Description = match serde_json::from_value(frame["data"].clone()) {
                Ok(d) => d,
                Err(_) => bail!(
                    "peer {} sent an {kind} that is not from turnpike p2p (a browser?)",
                    from()
                ),
            };
            if description.protocol != PROTOCOL {
                bail!(
                    "peer {} speaks {}, we speak {PROTOCOL}",
                    from(),
                    description.protocol
                );
            }
            if kind == "offer" {
                PeerEvent::Offer(from(), description)
            } else {
                PeerEvent::Answer(from(), description)
            }
        }
        "candidate" => {
            let text = frame["data"]["candidate"].as_str().unwrap_or_default();
            let candidate = (!text.is_empty()).then(|| text.to_owned());
            PeerEvent::Candidate(from(), candidate)
        }
        // The room page's `bye {reset: true}` asks the impolite side to replace the connection
        // (its relay-only switch), it does not leave; we keep ours (docs/client.md).
        "bye" if frame["data"]["reset"] == true => return Ok(None),
        "bye" => PeerEvent::Bye(from()),
        "error" => {
            tracing::warn!(code = ?frame["code"], message = ?frame["message"], "signaling error");
            return Ok(None);
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn description() -> Description {
        Description {
            protocol: PROTOCOL.into(),
            ufrag: "abcd".into(),
            pwd: "0123456789abcdefghijkl".into(),
            fingerprint: "sha-256 AB:CD".into(),
            role: Some(Role::Send),
        }
    }

    #[test]
    fn two_senders_or_two_receivers_are_a_conflict_with_the_fix_named() {
        let both_send = role_conflict(Role::Send, Some(Role::Send)).unwrap();
        assert!(both_send.contains("--receive DIR"), "{both_send}");
        let both_receive = role_conflict(Role::Receive, Some(Role::Receive)).unwrap();
        assert!(both_receive.contains("--send FILE"), "{both_receive}");
        for (ours, theirs) in [
            (Role::Send, Some(Role::Receive)),
            (Role::Receive, Some(Role::Send)),
            (Role::Chat, Some(Role::Chat)),
            // An older peer does not say: nothing to compare.
            (Role::Send, None),
        ] {
            assert_eq!(role_conflict(ours, theirs), None, "{ours:?} {theirs:?}");
        }
    }

    #[test]
    fn the_role_is_optional_on_the_wire() {
        let old = json!({"protocol": PROTOCOL, "ufrag": "abcd", "pwd": "p", "fingerprint": "f"});
        let description: Description = serde_json::from_value(old).unwrap();
        assert_eq!(description.role, None);
        let text = serde_json::to_value(super::tests::description()).unwrap();
        assert_eq!(text["role"], "send");
    }

    #[test]
    fn offers_answers_and_candidates_are_read_from_server_frames() {
        let offer = json!({"type": "offer", "from": "3f9a0c1d", "data": description()});
        assert_eq!(
            parse_event(&offer).unwrap(),
            Some(PeerEvent::Offer("3f9a0c1d".into(), description()))
        );
        let candidate = json!({"type": "candidate", "from": "3f9a0c1d",
            "data": {"candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host"}});
        assert_eq!(
            parse_event(&candidate).unwrap(),
            Some(PeerEvent::Candidate(
                "3f9a0c1d".into(),
                Some("candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host".into())
            ))
        );
        let end = json!({"type": "candidate", "from": "3f9a0c1d", "data": {"candidate": ""}});
        assert_eq!(
            parse_event(&end).unwrap(),
            Some(PeerEvent::Candidate("3f9a0c1d".into(), None))
        );
        assert_eq!(parse_event(&json!({"type": "pong"})).unwrap(), None);
    }

    #[test]
    fn a_browser_offer_is_told_apart_and_other_descriptions_are_refused_with_a_reason() {
        let offer = json!({"type": "offer", "from": "b71e22a0",
            "data": {"type": "offer", "sdp": "v=0", "sid": "s1"}});
        let Some(PeerEvent::BrowserOffer(from, sdp_offer)) = parse_event(&offer).unwrap() else {
            panic!("not a browser offer");
        };
        assert_eq!((from.as_str(), sdp_offer.sdp.as_str()), ("b71e22a0", "v=0"));
        let bad = json!({"type": "offer", "from": "b71e22a0", "data": {"sdp": 7}});
        let error = format!("{:#}", parse_event(&bad).unwrap_err());
        assert!(error.contains("malformed offer"), "{error}");
        let neither = json!({"type": "offer", "from": "b71e22a0", "data": {"type": "offer"}});
        let error = parse_event(&neither).unwrap_err().to_string();
        assert!(error.contains("not from turnpike p2p"), "{error}");
        let mut other = description();
        other.protocol = "turnpike-p2p/9".into();
        let offer = json!({"type": "offer", "from": "b71e22a0", "data": other});
        assert!(parse_event(&offer).is_err());
    }
}
