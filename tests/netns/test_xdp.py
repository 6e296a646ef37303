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
root gives one warning and userspace serves. Expiry: with `permission-lifetime` or
`channel-lifetime` shortened to 6 s (RFC 8656 fixes 300 s and 600 s; the hand-moved clock of
crates/turn/tests/relay/fast_path.rs checks those), a permission's or a channel's expiry takes
the channel out of the kernel at that time, what is still allowed goes on in userspace, and a new
permission or binding puts it back; driven by turnraw (tests/interop), whose sockets are opened in
the client namespace.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REPO, RUN, delete_namespace, sh, turnpike_bin

sys.path.insert(0, str(REPO / "tests" / "interop"))
import turnraw  # noqa: E402  (an independent TURN client: shares no code with Turnpike)

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
        as_user: tuple[str, ...] = (), config: Path | None = None, extra: tuple[str, ...] = (),
    ) -> None:
        self.log = tmp / "turnpike.log"
        cmd = [
            str(turnpike_bin()), "serve", "--listen", f"{V4[0]}:3478", "--listen", f"[{V6[0]}]:3478",
            "--relay-ip", V4[0], "--relay-ip", V6[0], "--users", f"{USER}:{PASSWORD}",
            *(a for net in allowed for a in ("--allowed-peers", net)),
            *(("--config", str(config)) if config else ()),
            "--xdp-interfaces", interface, "--metrics-listen", METRICS, "--http", "false",
            "--drain-timeout", "0", "--min-port", "50000", "--max-port", "50200", "--log-level", "info",
            *extra,
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


CLONE_NEWNET = 0x40000000
LIFETIME = 6  # seconds, for the one shortened lifetime of each expiry test
CHANNEL = 0x4001


@contextmanager
def in_netns(ns: str):
    """Runs the block in network namespace `ns` (this thread only, setns(2)): sockets opened in
    it stay there, so a test can drive a client on the far side of the veth itself."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        assert libc.setns(target, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        try:
            yield
        finally:
            assert libc.setns(home, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(target)
        os.close(home)


def wait_for(what: str, check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Session:
    """One turnraw client with an allocation, and an echo peer socket, in the client namespace."""

    def __init__(self) -> None:
        with in_netns(CLIENT_NS):
            self.client = turnraw.TurnClient((V4[0], 3478), username=USER, password=PASSWORD, local_ip=V4[1])
            self.peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.peer.bind((V4[1], 0))
        self.peer.settimeout(1.0)
        self.relayed = self.client.allocate_ok()

    def close(self) -> None:
        self.client.close()
        self.peer.close()

    def to_peer(self, data: bytes, channel: bool = True) -> bytes | None:
        """ChannelData (or a Send indication) to the peer: what the peer got within 1 s."""
        if channel:
            self.client.send_channel(CHANNEL, data)
        else:
            self.client.send_to(self.peer.getsockname(), data)
        try:
            got, source = self.peer.recvfrom(2048)
        except TimeoutError:
            return None
        assert tuple(source[:2]) == tuple(self.relayed), (source, self.relayed)
        return got

    def round_trip(self, data: bytes, channel: bool = True) -> str:
        """`data` to the peer and echoed back; how it came back ("channel-data" or
        "data-indication"), checked to be the same bytes."""
        assert self.to_peer(data, channel) == data
        self.peer.sendto(data, tuple(self.relayed))
        back = self.client.recv_relayed(timeout=2.0)
        assert back is not None and back.data == data, back
        return back.kind


def channels(s: Server) -> float:
    return counter(s.metrics(), "turnpike_xdp_channels")


def relayed_in_kernel(s: Server) -> tuple[float, float]:
    m = s.metrics()
    return xdp_relayed(m, "to-peer"), xdp_relayed(m, "to-client")


def bind_and_use(s: Server, session: Session) -> float:
    """Binds CHANNEL to the peer, waits for the kernel entry, makes one round trip; returns the
    monotonic time taken just before the ChannelBind (the lifetimes count from after it)."""
    bound_at = time.monotonic()
    response = session.client.channel_bind(CHANNEL, session.peer.getsockname())
    assert response.cls == turnraw.stunraw.SUCCESS, turnraw.describe(response)
    # The maps are updated right after the worker's batch, which holds the response: wait for the
    # entry, or the first datagram may still take the userspace path.
    wait_for("the channel never reached the kernel", lambda: channels(s) == 1)
    assert session.round_trip(b"through the kernel") == "channel-data"
    return bound_at


def until_expiry(s: Server, session: Session, what: str) -> None:
    """Binds and uses the channel, then waits for `what` (the permission or the channel) to
    expire: the entry leaves the kernel, not before its lifetime, with the round trip counted."""
    bound_at = bind_and_use(s, session)
    wait_for(f"the expired {what} stayed in the kernel", lambda: channels(s) == 0)
    assert time.monotonic() - bound_at >= LIFETIME, f"removed before the {what} expired"
    # The round trip went through the kernel (its counters were read back at the removal).
    assert relayed_in_kernel(s) == (1, 1)


def test_an_expired_permission_stops_kernel_relaying(server):
    # RFC 8656 §9: data to or from a peer needs a live permission; ChannelBind installs one
    # (§12.2) for the permission lifetime, here 6 s instead of 300, while the channel (600 s)
    # lives on.
    s = server(extra=("--permission-lifetime", str(LIFETIME)))
    session = Session()
    try:
        until_expiry(s, session, "permission")
        # The channel is still bound, so userspace relays ChannelData to the peer (RFC 8656 §12.6
        # asks no permission for it), but the peer's answer is dropped: data from a peer needs
        # one (§9, §11.3). The kernel does neither.
        data = b"after the permission expired"
        assert session.to_peer(data) == data
        session.peer.sendto(data, tuple(session.relayed))
        assert session.client.recv_relayed(timeout=1.0) is None, "relayed without a permission"
        assert relayed_in_kernel(s) == (1, 1)
        assert core_relayed(s.metrics(), "to_peer") == 2, "one by the kernel, one by userspace"
        # A new permission puts the channel back in the kernel.
        response = session.client.create_permission(session.peer.getsockname())
        assert response.cls == turnraw.stunraw.SUCCESS, turnraw.describe(response)
        wait_for("the renewed permission did not reinstall the channel", lambda: channels(s) == 1)
        assert session.round_trip(b"through the kernel again") == "channel-data"
        wait_for("the second round trip did not go through the kernel", lambda: relayed_in_kernel(s) == (2, 2))
        # The core's counters take the kernel's per-channel counts at its next read-back (2 s).
        core = lambda: (core_relayed(s.metrics(), "to_peer"), core_relayed(s.metrics(), "to_client"))  # noqa: E731
        wait_for("the kernel's counts never reached the core's counters", lambda: core() == (3, 2))
    finally:
        session.close()


def test_an_expired_channel_stops_kernel_relaying(server):
    # RFC 8656 §12: a channel binding lasts its lifetime (600 s; here 6 s) unless refreshed; the
    # permission (300 s) outlives it, so Send indications still relay, in userspace.
    s = server(extra=("--channel-lifetime", str(LIFETIME)))
    session = Session()
    try:
        until_expiry(s, session, "channel")
        assert session.to_peer(b"on an expired channel") is None
        # The permission is live: a Send indication goes out, and the peer's answer comes back
        # as a Data indication (no channel any more), all in userspace.
        assert session.round_trip(b"by indication", channel=False) == "data-indication"
        assert relayed_in_kernel(s) == (1, 1)
        # Binding the same number to the same peer again is allowed during the cool-down
        # (§12.2) and puts the channel back in the kernel.
        bind_and_use(s, session)
        wait_for("the rebound channel did not relay in the kernel", lambda: relayed_in_kernel(s) == (2, 2))
    finally:
        session.close()
