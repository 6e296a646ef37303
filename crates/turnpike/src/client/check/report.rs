//! What `turnpike check` found: each step with its timing and verdict, the facts learnt, the
//! diagnoses, and the outcome with its exit code; printed as text or as one JSON object.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::args::Transport;

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Worked, but something is worth changing (a diagnosis says what).
    Warn,
    /// Failed: the steps after it did not run.
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One step: what was done, how long it took, how it went, and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// A short name: "dns", "connect", "tls", "dtls", "binding", "allocate", ...
    pub name: &'static str,
    /// How it went.
    pub verdict: Verdict,
    /// How long it took, in milliseconds.
    pub ms: f64,
    /// What it saw, in a few words.
    pub detail: String,
}

impl Step {
    /// A step that took `took`.
    pub fn new(name: &'static str, verdict: Verdict, took: Duration, detail: String) -> Step {
        Step {
            name,
            verdict,
            ms: millis(took),
            detail,
        }
    }
}

/// Milliseconds with microsecond resolution.
pub fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// Datagrams relayed between the two allocations in one framing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataStats {
    /// Sent by the first allocation to the second one's relayed address.
    pub sent: u32,
    /// Arrived at the second allocation (first → second).
    pub delivered: u32,
    /// Came back to the first (second → first), echoed.
    pub returned: u32,
    /// Datagrams that did not come back, in percent of those sent.
    pub loss_percent: f64,
    /// Round-trip times through the relay, both ways, in milliseconds.
    pub rtt_ms_min: Option<f64>,
    /// Average round-trip time.
    pub rtt_ms_avg: Option<f64>,
    /// Longest round-trip time.
    pub rtt_ms_max: Option<f64>,
}

/// The server's certificate (stuns:, turns:).
#[derive(Debug, Clone, Serialize)]
pub struct CertificateFacts {
    /// Subject alternative names (DNS names and IPs), or the common name without them.
    pub names: Vec<String>,
    /// Days until it expires (negative: expired that many days ago).
    pub expires_in_days: i64,
    /// Certificates the server sent, the leaf included.
    pub chain_len: usize,
    /// The verification error, if it did not verify.
    pub error: Option<String>,
}

/// What the steps learnt about the server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    /// Our address as the server saw it (Binding, or the Allocate success).
    pub mapped: Option<SocketAddr>,
    /// The realm of the 401 challenge.
    pub realm: Option<String>,
    /// The relayed addresses of the two allocations.
    pub relayed: Vec<SocketAddr>,
    /// The alternate servers an Allocate was sent to by a 300 (Try Alternate), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirected_to: Vec<SocketAddr>,
    /// The allocation lifetime granted, seconds.
    pub lifetime_s: Option<u64>,
    /// The server's certificate.
    pub certificate: Option<CertificateFacts>,
    /// Send and Data indications (RFC 8656 §11).
    pub send_data: Option<DataStats>,
    /// ChannelData (RFC 8656 §12).
    pub channel_data: Option<DataStats>,
}

/// How a check ended, from the first problem found; each has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step passed (warnings included): exit 0.
    Ok,
    /// No answer: DNS, connection, or no response to Binding / Allocate: exit 3.
    Unreachable,
    /// The TLS handshake failed or the certificate did not verify: exit 4.
    Tls,
    /// The server refused the credentials (401 after the challenge), or the realm is not the
    /// expected one: exit 5.
    Auth,
    /// Allocate (or Refresh) failed otherwise (486, 508, ...): exit 6.
    Allocation,
    /// Allocations work but permissions, channels or data through the relay do not: exit 7.
    Relay,
}

impl Outcome {
    /// The process exit code (2 is a usage error, 1 a local failure such as a socket that
    /// cannot be bound).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Unreachable => 3,
            Outcome::Tls => 4,
            Outcome::Auth => 5,
            Outcome::Allocation => 6,
            Outcome::Relay => 7,
        }
    }
}

/// The check of one URI.
#[derive(Debug, Clone, Serialize)]
pub struct UriReport {
    /// The URI as given.
    pub uri: String,
    /// The transport used.
    pub transport: Transport,
    /// The address checked, once resolved.
    pub server: Option<SocketAddr>,
    /// The steps, in order; the check stops at the first failure.
    pub steps: Vec<Step>,
    /// What was learnt.
    pub facts: Facts,
    /// One sentence per problem found, each saying what to change.
    pub diagnoses: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Everything `turnpike check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One entry per URI, in the order given.
    pub results: Vec<UriReport>,
    /// The outcome of the first URI that did not pass, or ok.
    pub outcome: Outcome,
    /// The exit code.
    pub exit_code: u8,
}

impl Report {
    /// The report over `results`.
    pub fn new(results: Vec<UriReport>) -> Report {
        let outcome = results
            .iter()
            .map(|r| r.outcome)
            .find(|o| *o != Outcome::Ok)
            .unwrap_or(Outcome::Ok);
        Report {
            results,
            outcome,
            exit_code: outcome.exit_code(),
        }
    }

    /// Writes the report as one JSON object.
    pub fn write_json(&self, out: &mut impl Write) -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        writeln!(out)?;
        Ok(())
    }

    /// Writes the report for a person: one block per URI, a line per step.
    pub fn write_text(&self, out: &mut impl Write) -> anyhow::Result<()> {
        for (i, result) in self.results.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            match result.server {
                Some(server) => writeln!(
                    out,
                    "{} ({server} over {})",
                    result.uri,
                    result.transport.name()
                )?,
                None => writeln!(out, "{}", result.uri)?,
            }
            for step in &result.steps {
                writeln!(
                    out,
                    "  {:<5} {:<18} {:>9.1} ms  {}",
                    step.verdict.label(),
                    step.name,
                    step.ms,
                    step.detail
                )?;
            }
            for diagnosis in &result.diagnoses {
                writeln!(out, "  -> {diagnosis}")?;
            }
            writeln!(out, "  result: {}", outcome_text(result.outcome))?;
        }
        Ok(())
    }
}

/// The outcome in words.
fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Unreachable => "unreachable (exit 3)",
        Outcome::Tls => "TLS failed (exit 4)",
        Outcome::Auth => "authentication failed (exit 5)",
        Outcome::Allocation => "allocation failed (exit 6)",
        Outcome::Relay => "relay failed (exit 7)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome) -> UriReport {
        UriReport {
            uri: "turn:example.org".into(),
            transport: Transport::Udp,
            server: None,
            steps: vec![Step::new(
                "dns",
                Verdict::Ok,
                Duration::from_micros(1500),
                "192.0.2.1".into(),
            )],
            facts: Facts::default(),
            diagnoses: vec![],
            outcome,
        }
    }

    #[test]
    fn the_first_failure_sets_the_exit_code() {
        let report = Report::new(vec![
            result(Outcome::Ok),
            result(Outcome::Unreachable),
            result(Outcome::Relay),
        ]);
        assert_eq!(
            (report.outcome, report.exit_code),
            (Outcome::Unreachable, 3)
        );
        assert_eq!(Report::new(vec![result(Outcome::Ok)]).exit_code, 0);
        let mut text = Vec::new();
        report.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("  ok    dns                      1.5 ms  192.0.2.1"),
            "{text}"
        );
        let mut json = Vec::new();
        report.write_json(&mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["exit_code"], 3);
        assert_eq!(value["results"][0]["steps"][0]["verdict"], "ok");
        assert_eq!(value["results"][1]["outcome"], "unreachable");
    }
}
