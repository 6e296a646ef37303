//! A file over a data channel, between `turnpike p2p` and the room page (docs/web.md, "Sending
//! a file"). The page and the CLI both create the channel `file`, pre-negotiated on SCTP stream
//! 1 (RFC 8831 §6.5), and send on it, in order (the channel is reliable and ordered):
//!
//! 1. a string message (RFC 8831 §6.6, PPID 51), the header
//!    `{"type": "file", "name": "report.pdf", "size": 123456, "sha256": "<64 hex digits>"}`;
//! 2. the file's bytes in binary messages (PPID 53) of at most 16 KiB each (the size every
//!    browser delivers whole, RFC 8831 §6.6);
//! 3. a string message `{"type": "end"}`.
//!
//! The receiver hashes what it receives and answers `{"type": "verdict", "sha256": "<what it
//! computed>", "ok": true|false}`; `ok` is true when size and digest match the header. The
//! sender keeps at most [`HIGH_WATER`] bytes buffered in the channel and resumes below
//! [`LOW_WATER`] (the `bufferedAmount` / `bufferedamountlow` flow control of the page).
//!
//! This file is the sans-IO part: message formats and the receiver's checks; the I/O loop
//! reads and writes the file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The channel's label.
pub const FILE_LABEL: &str = "file";
/// Its SCTP stream id.
pub const FILE_STREAM: u16 = 1;
/// Largest binary message.
pub const CHUNK: usize = 16 * 1024;
/// Most bytes left buffered in the channel before the sender waits.
pub const HIGH_WATER: usize = 1024 * 1024;
/// The sender resumes when the buffered amount falls under this.
pub const LOW_WATER: usize = 256 * 1024;
/// Longest control message accepted.
const MAX_CONTROL: usize = 4096;

/// A string message on the file channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Control {
    /// The header.
    File {
        /// The file's name (no directory).
        name: String,
        /// Its size in bytes.
        size: u64,
        /// Its SHA-256, lower-case hex.
        sha256: String,
    },
    /// The last byte was sent.
    End,
    /// The receiver's answer.
    Verdict {
        /// The SHA-256 the receiver computed.
        sha256: String,
        /// Whether size and digest matched the header.
        ok: bool,
    },
}

impl Control {
    /// The message text.
    pub fn encode(&self) -> String {
        // A enum of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a string message.
    pub fn decode(message: &[u8]) -> Result<Self, TransferError> {
        if message.len() > MAX_CONTROL {
            return Err(TransferError::Malformed(format!(
                "a control message of {} bytes",
                message.len()
            )));
        }
        serde_json::from_slice(message).map_err(|e| TransferError::Malformed(e.to_string()))
    }
}

/// What went wrong in a transfer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransferError {
    /// A message that is not of the framing.
    #[error("the peer sent a malformed file message: {0}")]
    Malformed(String),
    /// A message out of order (data before the header, a second header).
    #[error("the peer sent {0} out of order")]
    OutOfOrder(&'static str),
    /// More bytes than the header announced.
    #[error("the peer sent more than the {0} bytes it announced")]
    TooLong(u64),
    /// The file name cannot be used.
    #[error("the peer's file name {0:?} is not a plain file name")]
    BadName(String),
}

/// What the receiver makes of one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A header: open `name` for writing.
    Start {
        /// The (checked) file name.
        name: String,
        /// Bytes to come.
        size: u64,
        /// The announced digest.
        sha256: String,
    },
    /// Bytes to append (the message itself).
    Data,
    /// The end: the verdict to send back and show.
    Done {
        /// The digest computed here.
        sha256: String,
        /// Size and digest matched.
        ok: bool,
    },
    /// Nothing (a message the receiver ignores).
    Ignore,
}

/// The receiving side of one transfer.
#[derive(Debug, Default)]
pub struct Receiver {
    expected: Option<(u64, String)>,
    received: u64,
    hasher: Sha256,
}

impl Receiver {
    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// One message of the channel (`binary`: PPID 53).
    pub fn message(&mut self, binary: bool, data: &[u8]) -> Result<Step, TransferError> {
        if binary {
            let Some((size, _)) = &self.expected else {
                return Err(TransferError::OutOfOrder("file data before the header"));
            };
            self.received += data.len() as u64;
            if self.received > *size {
                return Err(TransferError::TooLong(*size));
            }
            self.hasher.update(data);
            return Ok(Step::Data);
        }
        match Control::decode(data)? {
            Control::File { name, size, sha256 } => {
                if self.expected.is_some() {
                    return Err(TransferError::OutOfOrder("a second header"));
                }
                let name = crate::client::p2p::transfer::safe_name(&name)
                    .ok_or(TransferError::BadName(name.clone()))?
                    .to_owned();
                self.expected = Some((size, sha256.to_ascii_lowercase()));
                Ok(Step::Start { name, size, sha256 })
            }
            Control::End => {
                let Some((size, expected)) = self.expected.take() else {
                    return Err(TransferError::OutOfOrder("the end before the header"));
                };
                let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
                let ok = self.received == size && sha256 == expected;
                Ok(Step::Done { sha256, ok })
            }
            Control::Verdict { .. } => Ok(Step::Ignore),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(size: u64, data: &[u8]) -> Vec<u8> {
        Control::File {
            name: "a.bin".into(),
            size,
            sha256: hex(&Sha256::digest(data)),
        }
        .encode()
        .into_bytes()
    }

    #[test]
    fn a_file_in_chunks_is_verified() {
        let data = vec![7u8; 40_000];
        let mut receiver = Receiver::default();
        let start = receiver.message(false, &header(40_000, &data)).unwrap();
        assert!(matches!(start, Step::Start { ref name, size: 40_000, .. } if name == "a.bin"));
        for chunk in data.chunks(CHUNK) {
            assert_eq!(receiver.message(true, chunk).unwrap(), Step::Data);
        }
        let Step::Done { sha256, ok } = receiver.message(false, br#"{"type":"end"}"#).unwrap()
        else {
            panic!("not done");
        };
        assert!(ok);
        assert_eq!(sha256, hex(&Sha256::digest(&data)));
    }

    #[test]
    fn a_corrupted_or_short_file_fails_the_check() {
        let data = vec![1u8; 100];
        let mut receiver = Receiver::default();
        receiver.message(false, &header(100, &data)).unwrap();
        receiver.message(true, &[2u8; 100]).unwrap();
        let done = receiver.message(false, br#"{"type":"end"}"#).unwrap();
        assert!(matches!(done, Step::Done { ok: false, .. }));
        let mut short = Receiver::default();
        short.message(false, &header(100, &data)).unwrap();
        short.message(true, &data[..50]).unwrap();
        let done = short.message(false, br#"{"type":"end"}"#).unwrap();
        assert!(matches!(done, Step::Done { ok: false, .. }));
    }

    #[test]
    fn bad_input_is_a_clear_error_never_a_panic() {
        let mut receiver = Receiver::default();
        assert!(matches!(
            receiver.message(true, b"data"),
            Err(TransferError::OutOfOrder(_))
        ));
        assert!(matches!(
            receiver.message(false, b"{not json"),
            Err(TransferError::Malformed(_))
        ));
        let evil = Control::File {
            name: "../../etc/passwd".into(),
            size: 1,
            sha256: String::new(),
        };
        assert!(matches!(
            receiver.message(false, evil.encode().as_bytes()),
            Err(TransferError::BadName(_))
        ));
        let mut receiver = Receiver::default();
        receiver.message(false, &header(2, b"ab")).unwrap();
        assert_eq!(
            receiver.message(true, b"abc"),
            Err(TransferError::TooLong(2))
        );
        assert!(matches!(
            Receiver::default().message(false, &vec![b' '; MAX_CONTROL + 1]),
            Err(TransferError::Malformed(_))
        ));
    }
}
