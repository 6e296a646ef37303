//! The cross-check: coturn's own load client, `turnutils_uclient`, relaying to coturn's echo
//! peer `turnutils_peer`, against either server. Its figures are its own (it counts messages
//! sent and echoed, and a mean round trip); it is slower than our generator, so it checks the
//! direction of the comparison rather than the maximum.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::servers::{self, PASSWORD, USERNAME};

/// `turnutils_peer` on loopback, killed when dropped.
#[derive(Debug)]
pub struct UclientPeer {
    child: Child,
    /// Its first port (it also binds the next one).
    pub port: u16,
}

impl UclientPeer {
    /// Starts `turnutils_peer -L 127.0.0.1 -p PORT`, logging to `log`.
    pub fn start(log: &Path) -> anyhow::Result<UclientPeer> {
        let program = servers::which("turnutils_peer")
            .context("turnutils_peer not found (Debian package coturn)")?;
        let port = servers::free_udp_port_pair()?;
        let out = std::fs::File::create(log)?;
        let child = servers::child_command(&program)
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(UclientPeer { child, port })
    }
}

impl Drop for UclientPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How `turnutils_uclient` is run.
#[derive(Debug, Clone, Copy)]
pub struct UclientLoad {
    /// `-m`: clients (one allocation each, `-c`: no RTCP allocation).
    pub clients: u32,
    /// `-n`: messages per client.
    pub messages: u32,
    /// `-l`: message length.
    pub length: u32,
    /// `-z`: ms between a client's messages.
    pub interval_ms: u32,
}

/// What it reported, and the server's CPU meanwhile.
#[derive(Debug, Clone)]
pub struct UclientResult {
    /// Messages sent.
    pub sent: u64,
    /// Echoes received.
    pub received: u64,
    /// Its "Total lost packets … (x%)".
    pub loss_percent: f64,
    /// Its "Average round trip delay", ms.
    pub mean_rtt_ms: f64,
    /// Its "Total transmit time", s (whole seconds).
    pub transmit_s: f64,
    /// Server CPU over the whole run (allocations included).
    pub server_cpu: Duration,
}

/// Runs `turnutils_uclient` against `server` (output saved to `log`).
pub fn run(
    server: &servers::Server,
    peer: &UclientPeer,
    load: UclientLoad,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<UclientResult> {
    let program: PathBuf = servers::which("turnutils_uclient")
        .context("turnutils_uclient not found (Debian package coturn)")?;
    let args: Vec<String> = [
        "-u",
        USERNAME,
        "-w",
        PASSWORD,
        "-e",
        "127.0.0.1",
        "-r",
        &peer.port.to_string(),
        "-p",
        &server.addr.port().to_string(),
        "-m",
        &load.clients.to_string(),
        "-n",
        &load.messages.to_string(),
        "-l",
        &load.length.to_string(),
        "-z",
        &load.interval_ms.to_string(),
        "-c",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = std::fs::File::create(log)?;
    let cpu_before = server.cpu();
    let stdbuf = servers::which("stdbuf").context("stdbuf not found (coreutils)")?;
    let mut child = servers::child_command(&stdbuf)
        .args(["-oL", "-eL"])
        .arg(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .context("starting stdbuf turnutils_uclient")?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "turnutils_uclient did not finish within {timeout:?}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let server_cpu = server.cpu().saturating_sub(cpu_before);
    let text = std::fs::read_to_string(log)?;
    let parsed =
        parse(&text).with_context(|| format!("no final statistics in {}", log.display()))?;
    Ok(UclientResult {
        server_cpu,
        ..parsed
    })
}

/// The final statistics of uclient's output.
fn parse(text: &str) -> Option<UclientResult> {
    let after = |line: &str, key: &str| -> Option<String> {
        line.find(key).map(|at| line[at + key.len()..].to_string())
    };
    let number = |s: &str| -> Option<f64> {
        let digits: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits.parse().ok()
    };
    let mut result = UclientResult {
        sent: 0,
        received: 0,
        loss_percent: f64::NAN,
        mean_rtt_ms: f64::NAN,
        transmit_s: f64::NAN,
        server_cpu: Duration::ZERO,
    };
    let mut found = false;
    for line in text.lines() {
        if let (Some(s), Some(r)) = (
            after(line, "start_mclient: tot_send_msgs="),
            after(line, "tot_recv_msgs="),
        ) {
            result.sent = number(&s)? as u64;
            result.received = number(&r)? as u64;
            found = true;
        }
        if let Some(rest) = after(line, "Total lost packets ") {
            result.loss_percent = after(&rest, "(").and_then(|p| number(&p))?;
        }
        if let Some(rest) = after(line, "Average round trip delay ") {
            result.mean_rtt_ms = number(&rest)?;
        }
        if let Some(rest) = after(line, "Total transmit time is ") {
            result.transmit_s = number(&rest)?;
        }
    }
    found.then_some(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Lines as coturn 4.6.1's turnutils_uclient prints them (see TESTING-NOTES).
    #[test]
    fn parses_the_final_statistics() {
        let text = "\
19: : start_mclient: msz=100, tot_send_msgs=199996, tot_recv_msgs=199996, tot_send_bytes ~ 1, tot_recv_bytes ~ 1
46: : start_mclient: tot_send_msgs=200000, tot_recv_msgs=97851
46: : Total transmit time is 19
46: : Total lost packets 102149 (51.074500%), total send dropped 0 (0.000000%)
46: : Average round trip delay 692.339588 ms; min = 0 ms, max = 1723 ms
";
        let r = parse(text).unwrap();
        assert_eq!((r.sent, r.received), (200_000, 97_851));
        assert!((r.loss_percent - 51.0745).abs() < 1e-6);
        assert!((r.mean_rtt_ms - 692.339588).abs() < 1e-6);
        assert_eq!(r.transmit_s, 19.0);
    }
}
