//! What two connected peers do over QUIC: send a file, receive one, or chat.
//!
//! Each payload travels on its own unidirectional stream, which starts with one JSON header
//! line (at most [`MAX_HEADER`] bytes): `{"kind":"file","name":…,"size":…,"sha256":…}` or
//! `{"kind":"chat"}`. QUIC makes the bytes reliable, ordered and encrypted; the SHA-256 the
//! sender announces (computed before sending) lets the receiver prove the file it wrote is the
//! file that was sent, end to end. The receiver answers by closing the connection with an
//! application code ([`Verdict`]), which the sender reports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long a sender whose write failed waits for the receiver's close and its reason.
const CLOSE_REASON_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest header line accepted.
pub const MAX_HEADER: usize = 4096;
/// Bytes per read and write while copying a file.
const CHUNK: usize = 64 * 1024;

/// How often the receiver reports its progress to the sender.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The first line of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Header {
    /// A file follows: `size` bytes whose SHA-256 is `sha256` (lower-case hex).
    File {
        name: String,
        size: u64,
        sha256: String,
    },
    /// Chat lines follow, UTF-8, one message per line.
    Chat,
    /// From the receiver of a file: how many of its bytes it has received and written, as
    /// big-endian u64s, so that the sender's progress counts delivered bytes rather than
    /// bytes handed to QUIC (which buffers up to a flow-control window ahead).
    Progress,
}

/// The receiver's verdict, carried as the QUIC application close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The file arrived whole and its SHA-256 matches (also: a chat ended normally).
    Verified = 0,
    /// The bytes did not match the announced size or SHA-256; nothing was kept.
    Mismatch = 1,
    /// The receiver does not accept files (no `--receive`), or the name is unusable.
    Refused = 2,
    /// The receiver could not write the file.
    ReceiverFailed = 3,
    /// The peer stopped before the end: interrupted (SIGINT, SIGTERM), or it gave up. Never 0,
    /// which a dropped connection would send and a sender would read as "verified".
    Aborted = 4,
}

impl Verdict {
    fn from_code(code: u64) -> Option<Verdict> {
        [
            Verdict::Verified,
            Verdict::Mismatch,
            Verdict::Refused,
            Verdict::ReceiverFailed,
            Verdict::Aborted,
        ]
        .into_iter()
        .find(|v| *v as u64 == code)
    }

    /// Closes `connection` with this verdict.
    pub fn close(self, connection: &quinn::Connection, reason: &str) {
        connection.close(quinn::VarInt::from_u32(self as u32), reason.as_bytes());
    }
}

/// What this peer does once connected.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Send this file, then wait for the receiver's verdict.
    Send(PathBuf),
    /// Save the file the peer sends into this directory.
    Receive(PathBuf),
    /// Lines from stdin to the peer, the peer's lines to stdout.
    Chat,
}

/// The SHA-256 (hex) and size of a file, read once before sending.
pub async fn digest_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Sends `path` on a new stream and waits for the receiver's verdict.
pub async fn send_file(connection: &quinn::Connection, path: &Path) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} has no usable file name", path.display()))?
        .to_owned();
    let (sha256, size) = digest_file(path).await?;
    println!("sending {name} ({size} bytes, SHA-256 {sha256})");
    let header = Header::File {
        name: name.clone(),
        size,
        sha256,
    };
    let started = Instant::now();
    let progress = progress_bar(size);
    let reports = tokio::spawn(follow_progress(connection.clone(), progress.clone()));
    let streamed = async {
        let mut stream = connection.open_uni().await?;
        let mut line = serde_json::to_vec(&header)?;
        line.push(b'\n');
        stream.write_all(&line).await?;
        let mut file = File::open(path).await?;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            stream.write_all(&buffer[..n]).await?;
        }
        stream.finish()?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = streamed {
        reports.abort();
        progress.abandon();
        let context = format!(
            "sending {name} failed after {} of {size} bytes reached the receiver",
            progress.position()
        );
        // A write fails on the receiver's STOP_SENDING as well as on its close; the close,
        // which carries the reason ("interrupted"), may arrive just after: prefer it.
        let closed = tokio::time::timeout(CLOSE_REASON_GRACE, connection.closed()).await;
        if let Ok(quinn::ConnectionError::ApplicationClosed(close)) = closed {
            let reason = String::from_utf8_lossy(&close.reason).into_owned();
            bail!("{context}: the receiver stopped: {reason}");
        }
        return Err(error.context(context));
    }
    // The receiver closes the connection once it has checked the digest.
    let reason = connection.closed().await;
    reports.abort();
    progress.finish_and_clear();
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let message = String::from_utf8_lossy(&close.reason).into_owned();
            match Verdict::from_code(close.error_code.into_inner()) {
                Some(Verdict::Verified) => {
                    println!(
                        "sent {name}: {size} bytes in {}, the receiver verified the SHA-256",
                        rate(size, started)
                    );
                    Ok(())
                }
                Some(Verdict::Aborted) => {
                    bail!("the receiver stopped before the end of {name}: {message}")
                }
                _ => bail!("the receiver rejected {name}: {message}"),
            }
        }
        other => bail!("the connection ended before the receiver confirmed {name}: {other}"),
    }
}

/// Serves the peer's streams until the connection ends: a file is saved into `dir` (when
/// given) and the connection closed with the verdict; chat lines are printed.
pub async fn receive(connection: &quinn::Connection, dir: Option<&Path>) -> anyhow::Result<()> {
    loop {
        let mut stream = match connection.accept_uni().await {
            Ok(stream) => stream,
            Err(quinn::ConnectionError::ApplicationClosed(_))
            | Err(quinn::ConnectionError::LocallyClosed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (header, rest) = read_header(&mut stream).await?;
        match header {
            Header::Chat => {
                tokio::spawn(print_chat(stream, rest));
            }
            // Only a sender asks for these.
            Header::Progress => {}
            Header::File { name, size, sha256 } => {
                let Some(dir) = dir else {
                    Verdict::Refused.close(connection, "not receiving files (no --receive DIR)");
                    bail!("the peer sent a file ({name}) but --receive DIR was not given");
                };
                return receive_file(connection, stream, rest, dir, &name, size, &sha256).await;
            }
        }
    }
}

async fn receive_file(
    connection: &quinn::Connection,
    mut stream: quinn::RecvStream,
    first: Vec<u8>,
    dir: &Path,
    name: &str,
    size: u64,
    expected: &str,
) -> anyhow::Result<()> {
    let Some(name) = safe_name(name) else {
        Verdict::Refused.close(connection, "unusable file name");
        bail!("the peer sent an unusable file name {name:?}");
    };
    println!("receiving {name} ({size} bytes, SHA-256 {expected})");
    let final_path = dir.join(name);
    let partial = dir.join(format!(".{name}.part"));
    let result = async {
        let mut file = File::create(&partial)
            .await
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut hasher = Sha256::new();
        let progress = progress_bar(size);
        let mut reporter = ProgressReporter::open(connection).await;
        let started = Instant::now();
        let mut received = first.len() as u64;
        hasher.update(&first);
        file.write_all(&first).await?;
        let mut buffer = vec![0u8; CHUNK];
        while let Some(n) = stream.read(&mut buffer).await? {
            received += n as u64;
            if received > size {
                break;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await?;
            progress.inc(n as u64);
            reporter.report(received).await;
        }
        file.flush().await?;
        progress.finish_and_clear();
        anyhow::Ok((received, hex(&hasher.finalize()), started))
    }
    .await;
    let (received, actual, started) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Verdict::ReceiverFailed.close(connection, "the receiver could not write the file");
            return Err(error);
        }
    };
    if received != size || !actual.eq_ignore_ascii_case(expected) {
        let _ = tokio::fs::remove_file(&partial).await;
        Verdict::Mismatch.close(connection, "SHA-256 or size mismatch");
        bail!(
            "{name}: got {received} bytes with SHA-256 {actual}, the sender announced {size} bytes with {expected}; discarded"
        );
    }
    tokio::fs::rename(&partial, &final_path).await?;
    Verdict::Verified.close(connection, "SHA-256 verified");
    println!(
        "received {name}: {size} bytes in {}, SHA-256 verified, saved to {}",
        rate(size, started),
        final_path.display()
    );
    Ok(())
}

/// The receiver's end of the [`Header::Progress`] stream.
struct ProgressReporter {
    stream: Option<quinn::SendStream>,
    last: Instant,
}

impl ProgressReporter {
    /// Opens the stream; without it (an old peer, a closing connection) reports are skipped.
    async fn open(connection: &quinn::Connection) -> ProgressReporter {
        let stream = async {
            let mut stream = connection.open_uni().await?;
            let mut line = serde_json::to_vec(&Header::Progress)?;
            line.push(b'\n');
            stream.write_all(&line).await?;
            anyhow::Ok(stream)
        }
        .await
        .ok();
        ProgressReporter {
            stream,
            last: Instant::now(),
        }
    }

    /// Tells the sender `received`, at most every [`PROGRESS_EVERY`].
    async fn report(&mut self, received: u64) {
        if self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        if let Some(stream) = &mut self.stream {
            if stream.write_all(&received.to_be_bytes()).await.is_err() {
                self.stream = None;
            }
        }
    }
}

/// The sender's end: moves `progress` to what the receiver reports having received.
async fn follow_progress(connection: quinn::Connection, progress: ProgressBar) {
    let Ok(mut stream) = connection.accept_uni().await else {
        return;
    };
    let Ok((Header::Progress, mut pending)) = read_header(&mut stream).await else {
        return;
    };
    let mut buffer = [0u8; 256];
    loop {
        while let Some((count, _)) = pending.split_first_chunk::<8>() {
            progress.set_position(u64::from_be_bytes(*count));
            pending.drain(..8);
        }
        match stream.read(&mut buffer).await {
            Ok(Some(n)) => pending.extend_from_slice(&buffer[..n]),
            _ => return,
        }
    }
}

/// Chat: our stdin lines to the peer until EOF, while printing the peer's lines.
pub async fn chat(connection: &quinn::Connection) -> anyhow::Result<()> {
    let mut stream = connection.open_uni().await?;
    let mut line = serde_json::to_vec(&Header::Chat)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let incoming = {
        let connection = connection.clone();
        tokio::spawn(async move { receive(&connection, None).await })
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => match line? {
                Some(line) => {
                    stream.write_all(line.as_bytes()).await?;
                    stream.write_all(b"\n").await?;
                }
                None => break,
            },
            reason = connection.closed() => {
                println!("the peer closed the chat ({reason})");
                return Ok(());
            }
        }
    }
    stream.finish()?;
    // Let the peer read the last lines before the close overtakes them.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.stopped()).await;
    Verdict::Verified.close(connection, "bye");
    incoming.abort();
    Ok(())
}

async fn print_chat(mut stream: quinn::RecvStream, first: Vec<u8>) {
    let mut pending = first;
    let mut buffer = vec![0u8; 4096];
    loop {
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            println!("peer> {}", String::from_utf8_lossy(&line[..end]));
        }
        match stream.read(&mut buffer).await {
            Ok(Some(n)) => pending.extend_from_slice(&buffer[..n]),
            _ => return,
        }
    }
}

/// Reads the header line; returns it and the bytes read past it.
async fn read_header(stream: &mut quinn::RecvStream) -> anyhow::Result<(Header, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        if let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let header: Header = serde_json::from_slice(&bytes[..end])
                .context("the peer sent a malformed stream header")?;
            return Ok((header, bytes[end + 1..].to_vec()));
        }
        if bytes.len() > MAX_HEADER {
            bail!("the peer's stream header is longer than {MAX_HEADER} bytes");
        }
        match stream.read(&mut buffer).await? {
            Some(n) => bytes.extend_from_slice(&buffer[..n]),
            None => bail!("the peer's stream ended inside its header"),
        }
    }
}

/// The announced name, if it is a plain file name: no directory part, not hidden-relative
/// (`.`/`..`), no NUL — the receiver writes only inside its `--receive` directory.
pub fn safe_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0']);
    ok.then_some(name)
}

fn progress_bar(size: u64) -> ProgressBar {
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise), so logs
    // and tests see just the summary lines.
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        // Decimal units (MB/s), as the summary line.
        "{bar:40} {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn rate(size: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    format!("{secs:.1} s ({:.2} MB/s)", size as f64 / secs / 1e6)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_names_that_leave_the_directory_are_refused() {
        assert_eq!(safe_name("report.pdf"), Some("report.pdf"));
        assert_eq!(safe_name(".bashrc"), Some(".bashrc"));
        for bad in ["", ".", "..", "../etc/passwd", "a/b", "a\\b", "nul\0"] {
            assert_eq!(safe_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_are_one_tagged_json_object() {
        let header = Header::File {
            name: "a.bin".into(),
            size: 3,
            sha256: "ab".into(),
        };
        let text = serde_json::to_string(&header).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"file","name":"a.bin","size":3,"sha256":"ab"}"#
        );
        assert_eq!(serde_json::from_str::<Header>(&text).unwrap(), header);
        assert_eq!(
            serde_json::from_str::<Header>(r#"{"kind":"chat"}"#).unwrap(),
            Header::Chat
        );
    }

    #[test]
    fn verdict_codes_round_trip() {
        for v in [
            Verdict::Verified,
            Verdict::Mismatch,
            Verdict::Refused,
            Verdict::ReceiverFailed,
            Verdict::Aborted,
        ] {
            assert_eq!(Verdict::from_code(v as u64), Some(v));
        }
        assert_eq!(Verdict::from_code(99), None);
    }
}
