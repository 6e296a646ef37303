//! An ICE peer on one loopback UDP socket, for interop tests against other ICE agents.
//!
//! ```text
//! cargo run -p turnpike-ice --example ice_peer -- --controlling|--controlled [--seconds 30]
//! ```
//! Signalling is JSON lines. On start it prints
//! `{"ufrag":…,"pwd":…,"candidates":["candidate:…"]}` and reads one line of the same shape
//! from stdin (the peer's; candidates with or without the `candidate:` prefix). It then runs
//! the sans-IO agent over a blocking `std::net::UdpSocket` with read timeouts, printing
//! `{"state":…}` on every state change and `{"selected":{"local":…,"remote":…}}` once a
//! pair is selected. It then sends `hello from turnpike` to the peer and echoes back the
//! first datagram it receives (`{"received":…}`), and keeps answering (consent) until stdin
//! closes or `--seconds` pass.

use std::io::{BufRead, Write};
use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ice::{AgentConfig, AgentInput, Candidate, IceAgent, IceConnectionState, IceEvent};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let controlling = match args.first().map(String::as_str) {
        Some("--controlling") => true,
        Some("--controlled") => false,
        _ => return Err("usage: ice_peer --controlling|--controlled [--seconds N]".into()),
    };
    let seconds = match args.get(1).map(String::as_str) {
        Some("--seconds") => args.get(2).ok_or("--seconds needs a value")?.parse()?,
        _ => 30,
    };
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let local = socket.local_addr()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    // A fixed seed: this is a test tool, and reruns should behave alike.
    let mut agent = IceAgent::new(
        start,
        AgentConfig::new(controlling),
        [u8::from(controlling) + 1; 32],
    );
    agent.add_host_candidate(start, local);

    let mut candidates = Vec::new();
    let mut pending_events = Vec::new();
    while let Some(event) = agent.poll_event() {
        match event {
            IceEvent::LocalCandidate(c) => candidates.push(c.to_string()),
            other => pending_events.push(other),
        }
    }
    let (ufrag, pwd) = agent.local_credentials();
    say(&json!({ "ufrag": ufrag, "pwd": pwd, "candidates": candidates }))?;

    // stdin on a thread: the first line is the peer's offer, EOF ends the run.
    let (lines_tx, lines) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) => {
                    if lines_tx.send(Some(line)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = lines_tx.send(None);
    });
    let offer: Value = match lines.recv_timeout(Duration::from_secs(seconds))? {
        Some(line) => serde_json::from_str(&line)?,
        None => return Err("stdin closed before the peer's offer".into()),
    };
    let remote_ufrag = offer["ufrag"].as_str().ok_or("offer without ufrag")?;
    let remote_pwd = offer["pwd"].as_str().ok_or("offer without pwd")?;
    agent.set_remote_credentials(remote_ufrag, remote_pwd);
    let now = Instant::now();
    for text in offer["candidates"]
        .as_array()
        .ok_or("offer without candidates")?
    {
        let text = text.as_str().ok_or("candidate is not a string")?;
        let text = if text.starts_with("candidate:") || text.starts_with("a=") {
            text.to_owned()
        } else {
            format!("candidate:{text}")
        };
        agent.add_remote_candidate(now, text.parse::<Candidate>()?);
    }
    agent.end_of_remote_candidates();

    let mut buf = [0u8; 2048];
    let mut echoed = false;
    let mut greeted = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match lines.try_recv() {
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => break,
            _ => {}
        }
        agent.handle_timeout(now);
        while let Some(t) = agent.poll_transmit() {
            socket.send_to(&t.payload, t.destination)?;
        }
        for event in pending_events
            .drain(..)
            .chain(std::iter::from_fn(|| agent.poll_event()))
        {
            match event {
                IceEvent::StateChanged(state) => {
                    say(&json!({ "state": format!("{state:?}") }))?;
                    if state == IceConnectionState::Failed {
                        return Err("ICE failed".into());
                    }
                }
                IceEvent::SelectedPair { local, remote } => {
                    say(
                        &json!({ "selected": { "local": local.to_string(), "remote": remote.to_string() } }),
                    )?;
                }
                _ => {}
            }
        }
        if !greeted && agent.state() == IceConnectionState::Connected {
            if let Some(t) = agent.send_data(now, b"hello from turnpike") {
                socket.send_to(&t.payload, t.destination)?;
                greeted = true;
            }
        }
        // Sleep in recv until the agent's next timer (at most 50 ms, to watch stdin).
        let wait = agent
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        if let AgentInput::Data(data) = agent.handle_input(now, local, from, &buf[..n]) {
            say(&json!({ "received": String::from_utf8_lossy(data) }))?;
            if !echoed {
                let data = data.to_vec();
                if let Some(t) = agent.send_data(now, &data) {
                    socket.send_to(&t.payload, t.destination)?;
                    echoed = true;
                }
            }
        }
    }
    Ok(())
}

/// One JSON line on stdout, flushed (the peer reads it at once).
fn say(value: &Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}
