//! A small TURN probe over a blocking `std::net::UdpSocket` driving the sans-IO
//! [`ice::TurnClient`]: allocate, install a permission or bind a channel to a peer, send
//! datagrams to it through the relay, count the echoes that come back, deallocate. One JSON
//! object per line on stdout; exit status 0 when every datagram came back.
//!
//! ```text
//! cargo run -p turnpike-ice --example turn_probe -- --server 127.0.0.1:3478 --user u \
//!     --password p --peer 127.0.0.1:5000 [--channel] [--count 5] [--rto-ms 500] [--timeout-s 10]
//! ```
//! Used by tests/interop/test_turn_client_coturn.py against coturn's `turnserver` and its echo
//! peer `turnutils_peer`, as an independent check of the client.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ice::{RetransmitTiming, TurnClient, TurnClientConfig, TurnCredentials, TurnEvent, TurnInput};

/// The command line.
struct Args {
    server: SocketAddr,
    username: String,
    password: String,
    peer: SocketAddr,
    channel: bool,
    count: usize,
    rto: Duration,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: "127.0.0.1:3478".parse().map_err(|e| format!("{e}"))?,
        username: String::new(),
        password: String::new(),
        peer: "127.0.0.1:5000".parse().map_err(|e| format!("{e}"))?,
        channel: false,
        count: 5,
        rto: Duration::from_millis(500),
        timeout: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--channel" {
            args.channel = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--server" => args.server = value.parse().map_err(|e| bad(&e))?,
            "--user" => args.username = value,
            "--password" => args.password = value,
            "--peer" => args.peer = value.parse().map_err(|e| bad(&e))?,
            "--count" => args.count = value.parse().map_err(|e| bad(&e))?,
            "--rto-ms" => {
                args.rto = Duration::from_millis(value.parse().map_err(|e| bad(&e))?);
            }
            "--timeout-s" => {
                args.timeout = Duration::from_secs(value.parse().map_err(|e| bad(&e))?);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// A JSON string literal (the values here are addresses and short words).
fn json_str(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The blocking run loop around the client.
struct Probe {
    socket: UdpSocket,
    turn: TurnClient,
    buf: Vec<u8>,
    /// Datagrams that reached us from a peer: (peer, payload, came as ChannelData).
    received: Vec<(SocketAddr, Vec<u8>, bool)>,
}

impl Probe {
    /// Sends what the client has queued, handles one datagram or timer, and returns the
    /// events that followed.
    fn step(&mut self) -> std::io::Result<Vec<TurnEvent>> {
        while let Some(t) = self.turn.poll_transmit() {
            self.socket.send_to(&t.payload, t.destination)?;
        }
        let now = Instant::now();
        let wait = match self.turn.poll_timeout() {
            Some(at) => at.saturating_duration_since(now),
            None => Duration::from_millis(100),
        };
        let wait = wait.clamp(Duration::from_millis(1), Duration::from_millis(100));
        self.socket.set_read_timeout(Some(wait))?;
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                let packet = &self.buf[..n];
                if let TurnInput::Data { peer, payload } =
                    self.turn.handle_input(Instant::now(), from, packet)
                {
                    let channel_data = packet.first().is_some_and(|b| b >> 6 == 0b01);
                    self.received.push((peer, payload.to_vec(), channel_data));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        self.turn.handle_timeout(Instant::now());
        while let Some(t) = self.turn.poll_transmit() {
            self.socket.send_to(&t.payload, t.destination)?;
        }
        Ok(std::iter::from_fn(|| self.turn.poll_event()).collect())
    }

    /// Steps until `done` says so for an event (true), or `deadline` passes (false).
    fn wait_for(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&TurnEvent) -> Result<bool, String>,
    ) -> Result<bool, String> {
        while Instant::now() < deadline {
            for event in self.step().map_err(|e| e.to_string())? {
                println!("{}", describe(&event));
                if done(&event)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// An event as a JSON line.
fn describe(event: &TurnEvent) -> String {
    match event {
        TurnEvent::Allocated {
            relayed,
            mapped,
            lifetime,
        } => format!(
            "{{\"event\":\"allocated\",\"relayed\":{},\"mapped\":{},\"lifetime\":{}}}",
            json_str(&relayed.to_string()),
            json_str(&mapped.to_string()),
            lifetime.as_secs()
        ),
        TurnEvent::AllocationFailed(error) => format!(
            "{{\"event\":\"allocation_failed\",\"code\":{},\"error\":{}}}",
            error.code().map_or("null".into(), |c| c.to_string()),
            json_str(&error.to_string())
        ),
        TurnEvent::ChannelBound { peer, channel } => format!(
            "{{\"event\":\"channel_bound\",\"peer\":{},\"channel\":{channel}}}",
            json_str(&peer.to_string())
        ),
        other => format!(
            "{{\"event\":\"other\",\"detail\":{}}}",
            json_str(&format!("{other:?}"))
        ),
    }
}

fn run(args: Args) -> Result<bool, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let config = TurnClientConfig {
        timing: RetransmitTiming::with_rto(args.rto),
        ..TurnClientConfig::default()
    };
    // The seed only draws transaction ids; mix the time in so that runs differ.
    let mut seed = [7u8; 32];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    seed[..16].copy_from_slice(&nanos.to_le_bytes());
    let credentials = TurnCredentials {
        username: args.username.clone(),
        password: args.password.clone(),
    };
    let turn = TurnClient::with_config(Instant::now(), args.server, credentials, seed, config);
    let mut probe = Probe {
        socket,
        turn,
        buf: vec![0u8; 65536],
        received: Vec::new(),
    };
    let deadline = Instant::now() + args.timeout;

    let allocated = probe.wait_for(deadline, |e| match e {
        TurnEvent::Allocated { .. } => Ok(true),
        TurnEvent::AllocationFailed(error) => Err(format!("allocation failed: {error}")),
        _ => Ok(false),
    })?;
    if !allocated {
        return Err("no allocation before the deadline".into());
    }

    let peer = args.peer;
    let now = Instant::now();
    if args.channel {
        probe.turn.bind_channel(now, peer);
        let bound = probe.wait_for(deadline, |e| match e {
            TurnEvent::ChannelBound { .. } => Ok(true),
            TurnEvent::ChannelFailed { .. } => Err("channel bind failed".into()),
            _ => Ok(false),
        })?;
        if !bound {
            return Err("no channel before the deadline".into());
        }
    } else {
        probe.turn.create_permission(now, peer);
        while !probe.turn.has_permission(Instant::now(), peer) {
            if Instant::now() >= deadline {
                return Err("no permission before the deadline".into());
            }
            for event in probe.step().map_err(|e| e.to_string())? {
                println!("{}", describe(&event));
            }
        }
    }

    for i in 0..args.count {
        let data = format!("turnpike-probe-{i}");
        let t = probe.turn.send_to(Instant::now(), peer, data.as_bytes());
        let channel_data = t.payload.first().is_some_and(|b| b >> 6 == 0b01);
        probe
            .socket
            .send_to(&t.payload, t.destination)
            .map_err(|e| e.to_string())?;
        println!(
            "{{\"event\":\"sent\",\"seq\":{i},\"channel_data\":{channel_data},\"len\":{}}}",
            data.len()
        );
        let echoed = |received: &[(SocketAddr, Vec<u8>, bool)]| {
            received.iter().any(|(_, p, _)| p == data.as_bytes())
        };
        let until = Instant::now() + Duration::from_secs(2);
        while !echoed(&probe.received) && Instant::now() < until.min(deadline) {
            for event in probe.step().map_err(|e| e.to_string())? {
                println!("{}", describe(&event));
            }
        }
    }
    for (from, payload, channel_data) in &probe.received {
        println!(
            "{{\"event\":\"received\",\"peer\":{},\"channel_data\":{channel_data},\"payload\":{}}}",
            json_str(&from.to_string()),
            json_str(&String::from_utf8_lossy(payload))
        );
    }
    let all = (0..args.count).all(|i| {
        let data = format!("turnpike-probe-{i}");
        probe.received.iter().any(|(_, p, _)| p == data.as_bytes())
    });

    probe.turn.deallocate(Instant::now());
    let closed = probe.wait_for(Instant::now() + Duration::from_secs(5), |e| {
        Ok(matches!(e, TurnEvent::Deallocated))
    })?;
    println!(
        "{{\"event\":\"done\",\"sent\":{},\"received\":{},\"deallocated\":{closed}}}",
        args.count,
        probe.received.len()
    );
    Ok(all && closed)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("turn_probe: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("{{\"event\":\"error\",\"error\":{}}}", json_str(&e));
            ExitCode::FAILURE
        }
    }
}
