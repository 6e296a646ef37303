//! `--send FILE` and `--receive DIR` with a browser: the file's bytes to and from the data
//! channel `file`, in the framing of [`super::file_transfer`]. The sender reads the file in
//! 16 KiB chunks as the channel's buffer drains; the receiver writes `DIR/.NAME.part`, checks
//! size and SHA-256, renames it to `DIR/NAME` and answers with its verdict.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use str0m::channel::ChannelId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::file_transfer::{Control, Receiver, Step, CHUNK, HIGH_WATER};
use super::peer::WebRtcPeer;
use crate::client::p2p::transfer::digest_file;

/// A file being sent.
pub struct Sending {
    file: tokio::fs::File,
    name: String,
    size: u64,
    sha256: String,
    sent: u64,
    /// A chunk read from the file that the channel did not take yet.
    pending: Vec<u8>,
    header_sent: bool,
    end_sent: bool,
    started: Instant,
}

impl Sending {
    /// Opens `path` and hashes it (read once for the digest, once to send).
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let (sha256, size) = digest_file(path).await?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Sending {
            file,
            name,
            size,
            sha256,
            sent: 0,
            pending: Vec::new(),
            header_sent: false,
            end_sent: false,
            started: Instant::now(),
        })
    }

    /// Writes what the channel's buffer has room for: the header, chunks up to [`HIGH_WATER`]
    /// bytes buffered, then the end marker.
    pub async fn pump(&mut self, peer: &mut WebRtcPeer, channel: ChannelId) -> anyhow::Result<()> {
        if !self.header_sent {
            let header = Control::File {
                name: self.name.clone(),
                size: self.size,
                sha256: self.sha256.clone(),
            };
            if !peer.write(channel, false, header.encode().as_bytes())? {
                return Ok(()); // not open yet
            }
            self.header_sent = true;
            self.started = Instant::now();
            println!(
                "sending {} ({} bytes, SHA-256 {})",
                self.name, self.size, self.sha256
            );
        }
        while self.sent < self.size && peer.buffered_amount(channel) < HIGH_WATER {
            if self.pending.is_empty() {
                let mut chunk = vec![0u8; CHUNK];
                let n = self
                    .file
                    .read(&mut chunk)
                    .await
                    .with_context(|| format!("cannot read {}", self.name))?;
                if n == 0 {
                    bail!("{} became shorter while being sent", self.name);
                }
                chunk.truncate(n);
                self.pending = chunk;
            }
            // `false`: SCTP's send buffer (shared by the channels) has no room for it now;
            // the chunk waits for the next call.
            if !peer.write(channel, true, &self.pending)? {
                break;
            }
            self.sent += self.pending.len() as u64;
            self.pending.clear();
        }
        if self.sent >= self.size && !self.end_sent {
            self.end_sent = peer.write(channel, false, Control::End.encode().as_bytes())?;
        }
        Ok(())
    }

    /// A message from the receiver: `Ok(true)` once it verified the file.
    pub fn message(&self, binary: bool, data: &[u8]) -> anyhow::Result<bool> {
        if binary {
            return Ok(false);
        }
        match Control::decode(data)? {
            Control::Verdict { sha256, ok } if ok && sha256 == self.sha256 => {
                let seconds = self.started.elapsed().as_secs_f64();
                println!(
                    "sent {}: {} bytes in {seconds:.1} s, the receiver verified the SHA-256 {}",
                    self.name, self.size, self.sha256
                );
                Ok(true)
            }
            Control::Verdict { sha256, .. } => bail!(
                "the receiver computed SHA-256 {sha256}, not {}: the file was not saved",
                self.sha256
            ),
            _ => Ok(false),
        }
    }
}

/// A file being received into a directory.
pub struct Receiving {
    dir: PathBuf,
    receiver: Receiver,
    file: Option<(tokio::fs::File, PathBuf, PathBuf)>,
}

impl Receiving {
    /// Receives into `dir`.
    pub fn new(dir: &Path) -> Self {
        Receiving {
            dir: dir.to_owned(),
            receiver: Receiver::default(),
            file: None,
        }
    }

    /// One message of the file channel; once the file is complete, `Some` with the verdict
    /// message for the sender and the outcome: a failed check is an error, and the partial
    /// file is deleted.
    pub async fn message(
        &mut self,
        binary: bool,
        data: &[u8],
    ) -> anyhow::Result<Option<(String, anyhow::Result<()>)>> {
        match self.receiver.message(binary, data)? {
            Step::Start { name, size, sha256 } => {
                let part = self.dir.join(format!(".{name}.part"));
                let file = tokio::fs::File::create(&part)
                    .await
                    .with_context(|| format!("cannot create {}", part.display()))?;
                println!("receiving {name} ({size} bytes, SHA-256 {sha256})");
                self.file = Some((file, part, self.dir.join(&name)));
                Ok(None)
            }
            Step::Data => {
                if let Some((file, part, _)) = &mut self.file {
                    file.write_all(data)
                        .await
                        .with_context(|| format!("cannot write {}", part.display()))?;
                }
                Ok(None)
            }
            Step::Done { sha256, ok } => {
                let Some((mut file, part, path)) = self.file.take() else {
                    bail!("the peer ended a file it never started");
                };
                file.flush().await?;
                drop(file);
                let verdict = Control::Verdict {
                    sha256: sha256.clone(),
                    ok,
                }
                .encode();
                if !ok {
                    let _ = tokio::fs::remove_file(&part).await;
                    let failed = anyhow::anyhow!(
                        "the file's size or SHA-256 ({sha256}) does not match what the peer announced: deleted"
                    );
                    return Ok(Some((verdict, Err(failed))));
                }
                tokio::fs::rename(&part, &path).await.with_context(|| {
                    format!("cannot rename {} to {}", part.display(), path.display())
                })?;
                println!(
                    "received {}: {} bytes, SHA-256 {sha256} verified, saved as {}",
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default(),
                    self.receiver.received(),
                    path.display()
                );
                Ok(Some((verdict, Ok(()))))
            }
            Step::Ignore => Ok(None),
        }
    }
}

impl Drop for Receiving {
    /// A transfer that did not finish leaves no partial file behind.
    fn drop(&mut self) {
        if let Some((_, part, _)) = self.file.take() {
            let _ = std::fs::remove_file(part);
        }
    }
}
