//! The fast path in native XDP mode on a veth between two network namespaces made per test:
//! server side `vs` (server and relay sockets, the program), client side `vc` (client and peer
//! sockets, on two addresses).
//!
//! ```text
//!   netns …-c                                  netns …-s
//!   client 10.201.0.2 / fd20::2   vc ──── vs    server, relay 10.201.0.1 / fd20::1
//!   peer   10.201.0.3 / fd20::3                 XDP (native): XDP_TX back out of vs
//! ```
//!
//! Checksums, found here (kernel 6.18): a datagram sent back with XDP_TX reaches `vc` as an XDP
//! frame, which the client side turns into a socket buffer without checksum state, so its UDP
//! stack verifies the checksum and drops a wrong one (delivery alone is a check). The test also
//! captures every relayed frame with a packet socket on the client side and verifies the IPv4
//! header and UDP checksums and the decremented TTL itself.
//!
//! XDP_TX on a veth needs the receiving veth to run NAPI, which it does only with an XDP program
//! of its own (or GRO): an empty FastPath on `vc` passes everything and provides that.

#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::net::{IpAddr, SocketAddr};

use common::scenario::*;
use common::*;
use nix::sched::CloneFlags;
use xdp::{AttachMode, FastPath};

/// The two namespaces of one test, deleted when it ends however it ends.
struct Namespaces {
    server: String,
    client: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

fn setup(tag: &str) -> Namespaces {
    let pid = std::process::id();
    let ns = Namespaces {
        server: format!("tpx-{pid}-{tag}-s"),
        client: format!("tpx-{pid}-{tag}-c"),
    };
    let (s, c) = (ns.server.as_str(), ns.client.as_str());
    run(&["ip", "netns", "add", s]);
    run(&["ip", "netns", "add", c]);
    run(&[
        "ip", "-n", s, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", c,
    ]);
    run(&["ip", "-n", s, "addr", "add", "10.201.0.1/24", "dev", "vs"]);
    run(&[
        "ip",
        "-n",
        s,
        "addr",
        "add",
        "fd20::1/64",
        "dev",
        "vs",
        "nodad",
    ]);
    for addr in ["10.201.0.2/24", "10.201.0.3/24"] {
        run(&["ip", "-n", c, "addr", "add", addr, "dev", "vc"]);
    }
    for addr in ["fd20::2/64", "fd20::3/64"] {
        run(&["ip", "-n", c, "addr", "add", addr, "dev", "vc", "nodad"]);
    }
    for (n, dev) in [(s, "vs"), (c, "vc"), (s, "lo"), (c, "lo")] {
        run(&["ip", "-n", n, "link", "set", dev, "up"]);
    }
    ns
}

/// Runs `f` on a thread inside network namespace `ns`: sockets it opens and interfaces it
/// names belong to that namespace.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(format!("/run/netns/{ns}")).expect("netns file");
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("the thread in the namespace panicked")
    })
}

fn relay_over_veth(tag: &str, server_ip: &str, client_ip: &str, peer_ip: &str) {
    require_root();
    let ns = setup(tag);
    let ip = |text: &str| -> IpAddr { text.parse().expect("literal") };
    let (server, relay) = in_netns(&ns.server, || {
        (
            udp(SocketAddr::new(ip(server_ip), 0)),
            udp(SocketAddr::new(ip(server_ip), 0)),
        )
    });
    let (client, peer, raw_client, raw_peer, capture) = in_netns(&ns.client, || {
        (
            udp(SocketAddr::new(ip(client_ip), 0)),
            udp(SocketAddr::new(ip(peer_ip), 0)),
            raw_udp(ip(client_ip)),
            raw_udp(ip(peer_ip)),
            packet_capture(),
        )
    });
    let s = Sockets {
        raw_client,
        raw_peer,
        client,
        server,
        relay,
        peer,
    };
    let channel = channel_of(&s);

    let mut fast =
        in_netns(&ns.server, || FastPath::attach(&["vs".to_string()], 1500)).expect("attach to vs");
    assert_eq!(
        fast.modes()[0].mode,
        AttachMode::Native,
        "veth supports native XDP"
    );
    let receiver =
        in_netns(&ns.client, || FastPath::attach(&["vc".to_string()], 0)).expect("attach to vc");
    fast.install(&channel).expect("install");

    let bytes = relay_both_ways(&s, &fast, &channel);
    let relayed = drain_capture(&capture);
    for (from, to) in [
        (channel.relay, channel.peer),
        (channel.server, channel.client),
    ] {
        let frames: Vec<&Captured> = relayed
            .iter()
            .filter(|c| c.src == from && c.dst == to)
            .collect();
        assert_eq!(frames.len(), ROUNDS, "captured {from} -> {to}");
        for frame in frames {
            assert!(
                frame.ip_checksum_ok && frame.udp_checksum_ok,
                "bad checksum: {frame:?}"
            );
            assert_eq!(frame.ttl, 63, "TTL / hop limit decremented once: {frame:?}");
        }
    }
    passes_what_is_not_a_channel(&s, &fast, &channel);
    removed_channel_goes_to_userspace(&s, &mut fast, &channel, bytes);
    drop(fast);
    drop(receiver);
    assert!(
        !has_xdp(Some(&ns.server), "vs"),
        "dropping the FastPath detaches it from vs"
    );
    assert!(!has_xdp(Some(&ns.client), "vc"));
}

#[test]
fn relays_ipv4_over_veth_in_native_mode() {
    relay_over_veth("4", "10.201.0.1", "10.201.0.2", "10.201.0.3");
}

#[test]
fn relays_ipv6_over_veth_in_native_mode() {
    relay_over_veth("6", "fd20::1", "fd20::2", "fd20::3");
}
