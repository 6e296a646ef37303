"""The kernel fast path (`xdp-interfaces`, issue 15) with coturn's `turnutils_uclient` and
`turnutils_peer` as the independent client and peer, across a veth pair in namespaces.

    namespace "<run>xdp-s": `turnpike serve` on 10.77.0.1 / fd77::1, XDP (native) on its veth
    namespace "<run>xdp-c": the client and the echo peer on 10.77.0.2 / fd77::2

Found on this machine (crates/xdp/README.md): a socket sending over a veth leaves its UDP
checksum to "the device" (CHECKSUM_PARTIAL), which no in-flight rewrite can complete, so the
program passes such datagrams to userspace; the client side turns checksum offload off
(`ethtool -K tx off`), as traffic from a real NIC arrives with full checksums. And XDP_TX on a
veth is delivered only when the other end runs NAPI: the client's veth gets an XDP program of its
own (the same object, empty maps: it passes everything).

What is checked: ChannelData relayed both ways in the kernel with no loss (the program's counters
equal what uclient sent and got back, and the core's relay counters, which add the kernel's
read-back, equal them: userspace relayed none); the session log of each allocation carries that
traffic; Send indications (-s) stay in userspace; IPv4 and IPv6; SIGTERM leaves no program
attached; Refresh(0) takes the channels out of the maps; a reload (SIGHUP) that forbids the peer
stops kernel relaying in the middle of a uclient run; an unknown interface or a server without
root gives one warning and userspace serves. Expiry of permissions (300 s) and channels (600 s) is checked on the core
(crates/turn/tests/relay/fast_path.rs) with a hand-moved clock: too long for a live test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, RUN, delete_namespace, sh, turnpike_bin

SERVER_NS = f"{RUN}xdp-s"
CLIENT_NS = f"{RUN}xdp-c"
SERVER_IF = f"tpx{os.getpid() % 10_000_000}s"
CLIENT_IF = f"tpx{os.getpid() % 10_000_000}c"
V4 = ("10.77.0.1", "10.77.0.2")
V6 = ("fd77::1", "fd77::2")
METRICS = "10.77.0.1:9100"
OBJECT = REPO / "crates" / "xdp" / "bpf" / "relay.o"
USER, PASSWORD = "alice", "xdp-secret"
CLIENTS, MESSAGES = 2, 200

pytestmark = pytest.mark.timeout(120)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run scripts/install-test-deps", pytrace=False)
    return path


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


@pytest.fixture
def veth():
    for ns in (SERVER_NS, CLIENT_NS):
        delete_namespace(ns)
        sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", SERVER_IF, "netns", SERVER_NS, "type", "veth", "peer", "name", CLIENT_IF,
           "netns", CLIENT_NS)
        for ns, dev, (v4, v6) in ((SERVER_NS, SERVER_IF, (V4[0], V6[0])), (CLIENT_NS, CLIENT_IF, (V4[1], V6[1]))):
            sh("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(*in_ns(CLIENT_NS, tool("ethtool"), "-K", CLIENT_IF, "tx", "off"))
        sh("ip", "-n", CLIENT_NS, "link", "set", "dev", CLIENT_IF, "xdpdrv", "obj", str(OBJECT), "sec", "xdp")
        yield
    finally:
        for ns in (SERVER_NS, CLIENT_NS):
            delete_namespace(ns)


class Server:
    def __init__(
        self, tmp: Path, allowed: tuple[str, ...] = ("10.77.0.0/24", "fd77::/64"), interface: str = SERVER_IF,
        as_user: tuple[str, ...] = (), config: Path | None = None,
    ) -> None:
        self.log = tmp / "turnpike.log"
        cmd = [
            str(turnpike_bin()), "serve", "--listen", f"{V4[0]}:3478", "--listen", f"[{V6[0]}]:3478",
            "--relay-ip", V4[0], "--relay-ip", V6[0], "--users", f"{USER}:{PASSWORD}",
            *(a for net in allowed for a in ("--allowed-peers", net)),
            *(("--config", str(config)) if config else ()),
            "--xdp-interfaces", interface, "--metrics-listen", METRICS, "--http", "false",
            "--drain-timeout", "0", "--min-port", "50000", "--max-port", "50200", "--log-level", "info",
        ]
        self.proc = subprocess.Popen(in_ns(SERVER_NS, *as_user, *cmd), stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("w"), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while "ready" not in self.log.read_text():
            assert self.proc.poll() is None, f"turnpike exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"turnpike not ready:\n{self.log.read_text()}"
            time.sleep(0.1)

    def metrics(self) -> dict[str, float]:
        text = sh(*in_ns(SERVER_NS, "curl", "-sf", f"http://{METRICS}/metrics")).stdout
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.log.read_text()


@pytest.fixture
def server(veth, tmp_path):
    servers: list[Server] = []
    yield lambda **kw: servers.append(Server(tmp_path, **kw)) or servers[-1]
    for s in servers:
        s.stop()


def attached(ns: str, dev: str) -> bool:
    return " xdp" in sh("ip", "-n", ns, "link", "show", dev).stdout


def relay(family: tuple[str, str], *flags: str) -> str:
    """uclient in the client namespace, through the server, to turnutils_peer; its output."""
    server_ip, peer_ip = family
    peer = subprocess.Popen(in_ns(CLIENT_NS, tool("turnutils_peer"), "-L", peer_ip, "-p", "4000"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        done = subprocess.run(
            in_ns(CLIENT_NS, "stdbuf", "-oL", tool("turnutils_uclient"), "-e", peer_ip, "-r", "4000", "-u", USER,
                  "-w", PASSWORD, "-m", str(CLIENTS), "-n", str(MESSAGES), "-l", "120", "-z", "5", "-c",
                  *flags, "-p", "3478", server_ip),
            capture_output=True, text=True, timeout=60,
        )
    finally:
        peer.kill()
        peer.wait(5)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def totals(out: str) -> tuple[int, int]:
    # uclient prints running totals; the final line ("start_mclient: tot_send_msgs=…") is last.
    found = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    assert found, out
    return int(found[-1][0]), int(found[-1][1])


def counter(metrics: dict[str, float], name: str, **labels: str) -> float:
    key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    assert key in metrics, f"{key} not among {sorted(k for k in metrics if name in k)}"
    return metrics[key]


def core_relayed(metrics: dict[str, float], direction: str) -> float:
    return counter(metrics, "turnpike_relayed_packets_total", direction=direction, transport="udp")


def xdp_relayed(metrics: dict[str, float], direction: str) -> float:
    return counter(metrics, "turnpike_xdp_relayed_packets_total", direction=direction)


@pytest.mark.parametrize("family", [V4, V6], ids=["ipv4", "ipv6"])
def test_channel_data_relays_in_the_kernel_both_ways(server, family):
    s = server()
    assert attached(SERVER_NS, SERVER_IF), "the program is attached while the server runs"
    out = relay(family)
    sent, received = totals(out)
    assert (sent, received) == (CLIENTS * MESSAGES, CLIENTS * MESSAGES), out
    m = s.metrics()
    # Every datagram of the bound channels went through the kernel, both ways...
    assert xdp_relayed(m, "to-peer") == sent
    assert xdp_relayed(m, "to-client") == received
    # ...and the core's counters, which add what the kernel relayed, show nothing more: the
    # userspace relay moved none of them.
    assert core_relayed(m, "to_peer") == sent
    assert core_relayed(m, "to_client") == received
    log = s.stop()
    # uclient deletes its allocations at the end (Refresh 0): each session line carries the
    # kernel's traffic, read back as its channels left the maps.
    ended = re.findall(r"allocation ended .*to_peer_packets=(\d+) .*to_client_packets=(\d+)", log)
    relayed = [e for e in ended if e != ("0", "0")]  # uclient's probe allocation relays nothing
    assert relayed == [(str(MESSAGES), str(MESSAGES))] * CLIENTS, log
    assert not attached(SERVER_NS, SERVER_IF), "SIGTERM leaves no program attached"


def test_deleted_allocations_leave_the_kernel(server):
    # uclient ends with Refresh(LIFETIME 0) on each allocation (RFC 8656 §7.2/§8): their
    # channels must be out of the maps, or the kernel would relay for allocations that are gone.
    s = server()
    relay(V4)
    assert counter(s.metrics(), "turnpike_xdp_channels") == 0


def test_a_reload_that_forbids_the_peer_stops_kernel_relaying(server, tmp_path):
    # The peer policy is checked per datagram in userspace (RFC 8656 §9's permission is not
    # enough once the operator forbids a network): the kernel must stop at the reload, not at
    # the permission's expiry 300 s later.
    config = tmp_path / "turnpike.toml"
    config.write_text('allowed-peers = ["10.77.0.0/24"]\n')
    s = server(allowed=(), config=config)
    peer = subprocess.Popen(in_ns(CLIENT_NS, tool("turnutils_peer"), "-L", V4[1], "-p", "4000"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = subprocess.Popen(
            in_ns(CLIENT_NS, "stdbuf", "-oL", tool("turnutils_uclient"), "-e", V4[1], "-r", "4000", "-u", USER,
                  "-w", PASSWORD, "-m", "1", "-n", "1000", "-l", "120", "-z", "10", "-c", "-p", "3478", V4[0]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 30
        while xdp_relayed(s.metrics(), "to-peer") < 100:
            assert time.monotonic() < deadline and client.poll() is None, "no traffic in the kernel"
            time.sleep(0.2)
        config.write_text("# the peer network is no longer allowed\n")
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while counter(s.metrics(), "turnpike_xdp_channels") != 0:
            assert time.monotonic() < deadline, "the channel stayed in the kernel after the reload"
            time.sleep(0.1)
        stopped = xdp_relayed(s.metrics(), "to-peer")
        time.sleep(1.0)
        # uclient keeps sending every 10 ms: nothing more goes through the kernel, and userspace
        # drops it (the policy), so the echoes stop.
        assert xdp_relayed(s.metrics(), "to-peer") == stopped
        assert client.poll() is None, "uclient ended early"
    finally:
        peer.kill()
        peer.wait(5)
        if "client" in locals():
            client.kill()
            client.wait(5)


def test_send_indications_stay_in_userspace(server):
    s = server()
    out = relay(V4, "-s")
    sent, received = totals(out)
    assert (sent, received) == (CLIENTS * MESSAGES, CLIENTS * MESSAGES), out
    m = s.metrics()
    assert xdp_relayed(m, "to-peer") == 0
    assert xdp_relayed(m, "to-client") == 0
    assert core_relayed(m, "to_peer") == sent
    assert counter(m, "turnpike_xdp_channels") == 0


def test_a_forbidden_peer_gets_no_entry(server):
    # Without allowed-peers the private peer is refused (deny by default): 403 on ChannelBind,
    # and nothing reaches the maps.
    s = server(allowed=())
    peer_ip = V4[1]
    done = subprocess.run(
        in_ns(CLIENT_NS, tool("turnutils_uclient"), "-e", peer_ip, "-r", "4000", "-u", USER, "-w", PASSWORD,
              "-m", "1", "-n", "5", "-c", "-p", "3478", V4[0]),
        capture_output=True, text=True, timeout=60,
    )
    assert "403" in done.stdout + done.stderr
    m = s.metrics()
    assert counter(m, "turnpike_xdp_channels") == 0
    assert xdp_relayed(m, "to-peer") == 0


@pytest.mark.parametrize("why", ["unknown-interface", "not-root"])
def test_without_the_fast_path_one_warning_and_userspace_serves(server, why):
    # An interface that does not exist, or a server without CAP_BPF/CAP_NET_ADMIN: one warning
    # that says why, and the userspace path relays everything as without `xdp-interfaces`.
    if why == "unknown-interface":
        s = server(interface="tpxnosuch0")
        reason = "tpxnosuch0"
    else:
        nobody = ("setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all")
        s = server(as_user=nobody)
        reason = "permission"
    log = s.log.read_text()
    warnings = [line for line in log.splitlines() if "XDP fast path off" in line]
    assert len(warnings) == 1, log
    assert reason in warnings[0].lower(), warnings[0]
    sent, received = totals(relay(V4))
    assert (sent, received) == (CLIENTS * MESSAGES, CLIENTS * MESSAGES)
    m = s.metrics()
    assert not any(k.startswith("turnpike_xdp_") for k in m), "no XDP metrics without the program"
    assert core_relayed(m, "to_peer") == sent
