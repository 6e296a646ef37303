//! The messages between nodes, carried by Redis pub/sub on each node's own channel.
//!
//! A WebSocket lands on an *edge* node; its room lives on one *home* node (the node that
//! claimed the room in Redis first). The edge forwards the connection's frames to the home,
//! whose hub decides everything (capacity, rate, tokens, resume) exactly as for a local
//! connection, and the home sends the hub's outputs for it back to the edge. Frames are copied
//! verbatim: the hub's `from` stamp is made once, at the home.
//!
//! One message is `TAG \n FROM \n CONN \n REST`: `FROM` is the sender's node id (no newline:
//! `node-id` allows `[A-Za-z0-9._-]` only), `CONN` the edge's connection number, and `REST` the
//! rest of the message as it is (a frame may contain anything, newlines included, so it comes
//! last). Order between two nodes is the order of publishing: each node publishes from one
//! connection in one queue, and Redis delivers one publisher's messages in order.

use std::net::IpAddr;

/// What one message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire<'a> {
    /// Edge → home: a connection of the edge joins a room of the home. `local` and `source`
    /// are the caller as the edge saw it (who gets TURN credentials, and their rate limit);
    /// `host` is the host for the ICE server URLs.
    Open {
        /// The edge's connection.
        conn: u64,
        /// The caller is local (loopback, no proxy header).
        local: bool,
        /// The address the caller's credentials are counted against.
        source: IpAddr,
        /// The host of the ICE URLs the caller gets.
        host: &'a str,
    },
    /// Edge → home: a text frame of the connection.
    Text {
        /// The edge's connection.
        conn: u64,
        /// The frame, verbatim.
        text: &'a str,
    },
    /// Edge → home: the connection's socket ended (the hub's `disconnect`).
    Gone {
        /// The edge's connection.
        conn: u64,
    },
    /// Home → edge: send this frame on the connection.
    Send {
        /// The edge's connection.
        conn: u64,
        /// The frame, verbatim.
        text: &'a str,
    },
    /// Home → edge: close the connection (after the frames sent before), with this
    /// WebSocket close code and reason. The home has forgotten it.
    Close {
        /// The edge's connection.
        conn: u64,
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: &'a str,
    },
}

/// A message and the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The sending node's id.
    pub from: &'a str,
    /// The message.
    pub wire: Wire<'a>,
}

/// Why a message could not be read (a node of another version, or not a node at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not UTF-8, or fewer than the four fields.
    #[error("not a cluster message")]
    Malformed,
    /// A tag this node does not know.
    #[error("unknown message tag `{0}`")]
    UnknownTag(String),
    /// A field that does not parse.
    #[error("bad field `{0}`")]
    BadField(&'static str),
}

impl Wire<'_> {
    /// The message as published by node `from`.
    pub fn encode(&self, from: &str) -> Vec<u8> {
        let (tag, conn, rest) = match self {
            Wire::Open {
                conn,
                local,
                source,
                host,
            } => ("O", conn, format!("{} {source} {host}", u8::from(*local))),
            Wire::Text { conn, text } => ("T", conn, (*text).to_owned()),
            Wire::Gone { conn } => ("G", conn, String::new()),
            Wire::Send { conn, text } => ("S", conn, (*text).to_owned()),
            Wire::Close { conn, code, reason } => ("C", conn, format!("{code} {reason}")),
        };
        format!("{tag}\n{from}\n{conn}\n{rest}").into_bytes()
    }
}

/// Reads one message.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::Malformed)?;
    let mut fields = text.splitn(4, '\n');
    let (Some(tag), Some(from), Some(conn), Some(rest)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(WireError::Malformed);
    };
    let conn: u64 = conn.parse().map_err(|_| WireError::BadField("conn"))?;
    let wire = match tag {
        "O" => {
            let mut parts = rest.splitn(3, ' ');
            let local = match parts.next() {
                Some("1") => true,
                Some("0") => false,
                _ => return Err(WireError::BadField("local")),
            };
            let source = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or(WireError::BadField("source"))?;
            let host = parts.next().ok_or(WireError::BadField("host"))?;
            Wire::Open {
                conn,
                local,
                source,
                host,
            }
        }
        "T" => Wire::Text { conn, text: rest },
        "G" => Wire::Gone { conn },
        "S" => Wire::Send { conn, text: rest },
        "C" => {
            let (code, reason) = rest.split_once(' ').ok_or(WireError::BadField("code"))?;
            let code = code.parse().map_err(|_| WireError::BadField("code"))?;
            Wire::Close { conn, code, reason }
        }
        other => return Err(WireError::UnknownTag(other.to_owned())),
    };
    Ok(Envelope { from, wire })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reads_back_as_written() {
        let frame =
            "{\"type\":\"message\",\"to\":\"ab\",\"data\":\"line 1\\nline 2\"}\nraw newline";
        let messages = [
            Wire::Open {
                conn: 7,
                local: true,
                source: "2001:db8::1".parse().unwrap(),
                host: "[2001:db8::2]",
            },
            Wire::Open {
                conn: 8,
                local: false,
                source: "192.0.2.1".parse().unwrap(),
                host: "turn.example.org",
            },
            Wire::Text {
                conn: u64::MAX,
                text: frame,
            },
            Wire::Text { conn: 1, text: "" },
            Wire::Gone { conn: 3 },
            Wire::Send {
                conn: 4,
                text: frame,
            },
            Wire::Close {
                conn: 5,
                code: 1000,
                reason: "left",
            },
        ];
        for wire in messages {
            let bytes = wire.encode("node-a.1");
            let read = decode(&bytes).unwrap();
            assert_eq!(read.from, "node-a.1");
            assert_eq!(read.wire, wire);
        }
    }

    #[test]
    fn what_is_not_a_message_is_an_error_not_a_panic() {
        let cases: [&[u8]; 7] = [
            b"",
            b"T\nnode\n1",
            b"T\nnode\nx\nframe",
            b"X\nnode\n1\n",
            b"O\nnode\n1\n2 192.0.2.1 host",
            b"C\nnode\n1\nnotacode reason",
            b"\xff\nnode\n1\n",
        ];
        for bytes in cases {
            assert!(decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
