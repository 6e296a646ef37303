"""Real Linux NATs in network namespaces, for `turnpike nat` (RFC 5780 behaviour discovery).

One topology per test session, built with `ip netns`, veth pairs, a bridge and nftables
(the recipes of /work/shared/TESTING-NOTES.md, "Real NATs in network namespaces"):

    namespace "pub": bridge br0 with the servers' addresses (documentation range 203.0.113.0/24)
        203.0.113.1:3478 + alternate 203.0.113.2, port 3479  `turnpike serve` (RFC 5780)
        203.0.113.3:3478, 203.0.113.4:3478                    `turnpike serve` (plain STUN)
    routers, WAN 203.0.113.1x on br0, LAN 10.99.x.0/24 to one client namespace each:
        full      snat + dnat (endpoint-independent mapping and filtering), with hairpinning
        prc       snat + input drop of new (port-restricted cone)
        sym       masquerade random + input drop of new (symmetric)
        rc        snat + dnat only from IPs the client sent to (an nft set: restricted cone)
        life      as prc, with conntrack UDP timeouts of 5 s (new) and 12 s (stream): binding lifetimes
    clients directly on br0:
        open      203.0.113.21, no NAT, no firewall (open internet)
        fw        203.0.113.22, no NAT, a stateful firewall (symmetric UDP firewall)

Everything is named `tpnat-<pid>-<name>`, so concurrent runs do not collide; namespaces of a
run whose process is gone are removed at start, and this run's are removed at the end even when
tests fail (fixture finalizer, plus atexit and SIGTERM as a fallback). Needs root, `ip` and
`nft`: without them the tests FAIL with the reason, they are never skipped.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "turnpike"
PREFIX = "tpnat-"
RUN = f"{PREFIX}{os.getpid()}-"
COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 20.0

SERVER_IP = "203.0.113.1"
ALTERNATE_IP = "203.0.113.2"
PLAIN_SERVERS = ["203.0.113.3", "203.0.113.4"]
SERVER_URI = f"stun:{SERVER_IP}"
#: The server with `alternate-ip` and no `alternate-port`.
SINGLE_PORT = 3480
SINGLE_PORT_URI = f"stun:{SERVER_IP}:{SINGLE_PORT}"
#: STUN + TURN + signaling for `turnpike p2p`.
P2P_SERVER_IP = "203.0.113.5"
P2P_SIGNAL = f"ws://{P2P_SERVER_IP}:8080/ws"
#: Its signaling secret: the peers join with tokens, and their TURN credentials come from them.
P2P_SIGNALING_SECRET = "netns-p2p-signaling-secret"


def sh(*args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs a command; on failure, fails the test with its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(args)}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def nft(ns: str, ruleset: str) -> None:
    """Loads an nftables ruleset (one statement per line) into namespace `ns`."""
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
        input=ruleset,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nft in {ns} failed:\n{result.stderr}\n{ruleset}")


# --------------------------------------------------------------------------------------------
# Preconditions and cleanup
# --------------------------------------------------------------------------------------------


def check_preconditions() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces and nftables need CAP_NET_ADMIN)")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found: install Debian's `{package}` (scripts/install-test-deps)")
    if problems:
        pytest.fail("netns NAT tests cannot run: " + "; ".join(problems), pytrace=False)


def list_namespaces() -> list[str]:
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_namespace(ns: str) -> None:
    pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    sh("ip", "netns", "del", ns, check=False)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers() -> None:
    """Removes namespaces of earlier runs (same prefix) whose process is gone."""
    for ns in list_namespaces():
        match = re.match(rf"^{re.escape(PREFIX)}(\d+)-", ns)
        if match and not ns.startswith(RUN) and not pid_alive(int(match.group(1))):
            delete_namespace(ns)


def clean_this_run() -> None:
    for ns in list_namespaces():
        if ns.startswith(RUN):
            delete_namespace(ns)


# --------------------------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------------------------


@dataclass
class Client:
    """A namespace to run `turnpike nat` in."""

    name: str
    ns: str
    ip: str
    #: The address the outside sees (the router's WAN address, or the client's own).
    public_ip: str
    #: A router namespace whose state a test may need to reset, and how.
    router: str | None = None
    reset: str | None = None


@dataclass
class Server:
    proc: subprocess.Popen
    log: Path
    argv: list[str]

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class Topology:
    def __init__(self, binary: Path, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self.pub = RUN + "pub"
        self.clients: dict[str, Client] = {}
        self.servers: list[Server] = []
        self.next_port = 1

    # -- building blocks --

    def add_ns(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def attach_to_public(self, ns: str, ifname: str, address: str) -> None:
        """A veth from `ns` (as `ifname`) to the public bridge, with `address`/24."""
        port = f"p{self.next_port}"
        self.next_port += 1
        sh("ip", "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", port, "netns", self.pub)
        sh("ip", "-n", self.pub, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", ifname)
        sh("ip", "-n", ns, "link", "set", ifname, "up")

    def build_public(self) -> None:
        self.add_ns(self.pub)
        sh("ip", "-n", self.pub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.pub, "link", "set", "br0", "up")
        for address in [SERVER_IP, ALTERNATE_IP, *PLAIN_SERVERS, P2P_SERVER_IP]:
            sh("ip", "-n", self.pub, "addr", "add", f"{address}/24", "dev", "br0")

    def router(self, name: str, index: int, ruleset: str, sysctls: tuple[str, ...] = ()) -> Client:
        """A router namespace (WAN 203.0.113.1<index>, LAN 10.99.<index>.1/24) and a client
        namespace behind it (10.99.<index>.2); `ruleset` may use {wan}, {client}, {lan}."""
        router, client = RUN + "r-" + name, RUN + name
        wan = f"203.0.113.{10 + index}"
        client_ip = f"10.99.{index}.2"
        self.add_ns(router)
        self.add_ns(client)
        self.attach_to_public(router, "wan", wan)
        sh("ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", client)
        sh("ip", "-n", router, "addr", "add", f"10.99.{index}.1/24", "dev", "lan")
        sh("ip", "-n", router, "link", "set", "lan", "up")
        sh("ip", "-n", client, "addr", "add", f"{client_ip}/24", "dev", "eth0")
        sh("ip", "-n", client, "link", "set", "eth0", "up")
        sh("ip", "-n", client, "route", "add", "default", "via", f"10.99.{index}.1")
        sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        nft(router, ruleset.format(wan=wan, client=client_ip, lan=f"10.99.{index}.0/24"))
        for setting in sysctls:
            sh("ip", "netns", "exec", router, "sysctl", "-qw", setting)
        found = Client(name, client, client_ip, wan, router=router)
        self.clients[name] = found
        return found

    def direct(self, name: str, address: str, ruleset: str | None = None) -> Client:
        ns = RUN + name
        self.add_ns(ns)
        self.attach_to_public(ns, "eth0", address)
        if ruleset:
            nft(ns, ruleset)
        found = Client(name, ns, address, address)
        self.clients[name] = found
        return found

    def serve(self, *flags: str, stun_only: bool = True) -> Server:
        """`turnpike serve FLAGS` in the public namespace; STUN only unless told."""
        log = self.tmp / f"server-{len(self.servers)}.log"
        only = ["--http", "false", "--turn", "false"] if stun_only else []
        argv = [
            "ip", "netns", "exec", self.pub, str(self.binary), "serve",
            *flags, *only, "--log-level", "debug", "--metrics-listen", "off",
            # SIGTERM drains until the last allocation ends: stop at once at teardown.
            "--drain-timeout", "0",
        ]
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        server = Server(proc, log, argv)
        self.servers.append(server)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}:\n{server.log_text()}")
            if " ready" in server.log_text():
                return server
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT} s:\n{server.log_text()}")

    def build(self) -> None:
        self.build_public()
        self.serve("--listen", f"{SERVER_IP}:3478", "--alternate-ip", ALTERNATE_IP, "--alternate-port", "3479")
        # A second IP but no second port (issue 13): the RFC 5780 tests that need no port.
        self.serve("--listen", f"{SERVER_IP}:{SINGLE_PORT}", "--alternate-ip", ALTERNATE_IP)
        for address in PLAIN_SERVERS:
            self.serve("--listen", f"{address}:3478")
        # The server `turnpike p2p` meets through: signaling on 8080 hands out STUN and TURN
        # (REST credentials) on the same address, as a deployment would. The peers are not on
        # loopback, so they get TURN credentials only with a join token (issue #10).
        self.serve(
            "--listen", f"{P2P_SERVER_IP}:3478", "--relay-ip", P2P_SERVER_IP,
            "--http-listen", f"{P2P_SERVER_IP}:8080", "--ice-host", P2P_SERVER_IP,
            "--rest-secrets", "netns-p2p-secret", "--min-port", "50000", "--max-port", "50999",
            "--signaling-secret", P2P_SIGNALING_SECRET,
            stun_only=False,
        )

        # (a) Endpoint-independent mapping and filtering ("full cone"), which also hairpins:
        # LAN packets to the WAN address are sent back to the client, from the WAN address.
        self.router("full", 1, """
table ip nat {{
  chain prerouting {{
    type nat hook prerouting priority dstnat;
    iifname "wan" meta l4proto udp dnat to {client}
    iifname "lan" ip daddr {wan} meta l4proto udp dnat to {client}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname "wan" snat to {wan}
    oifname "lan" ct status dnat ip saddr {lan} snat to {wan}
  }}
}}
""")
        port_restricted = """
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname "wan" snat to {wan}
  }}
}}
table ip filter {{
  chain input {{
    type filter hook input priority filter;
    iifname "wan" ct state new drop
  }}
}}
"""
        # (b) Endpoint-independent mapping, address-and-port-dependent filtering.
        self.router("prc", 2, port_restricted)
        # A second one, for p2p between two port-restricted cones.
        self.router("prc2", 6, port_restricted)
        # (c) Symmetric: a random port per destination, and the same input drop.
        symmetric = """
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade random
  }}
}}
table ip filter {{
  chain input {{
    type filter hook input priority filter;
    iifname "wan" ct state new drop
  }}
}}
"""
        self.router("sym", 3, symmetric)
        self.router("sym2", 7, symmetric)
        # Endpoint-independent mapping, address-dependent filtering ("restricted cone"): any
        # port of an IP the client has sent to gets in. The set remembers IPs for good, so
        # tests flush it before each run.
        rc = self.router("rc", 4, """
table ip nat {{
  set peers {{
    type ipv4_addr
  }}
  chain forward {{
    type filter hook forward priority filter;
    iifname "lan" oifname "wan" update @peers {{ ip daddr }}
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat;
    iifname "wan" ip saddr @peers meta l4proto udp dnat to {client}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname "wan" snat to {wan}
  }}
  chain input {{
    type filter hook input priority filter;
    iifname "wan" ct state new drop
  }}
}}
""")
        rc.reset = "flush set ip nat peers"
        # Port-restricted cone with short conntrack UDP timeouts (per namespace): 5 s for a
        # flow answered within its first 2 s, 12 s ("stream") for one still active after that.
        self.router(
            "life", 5, port_restricted,
            sysctls=(
                "net.netfilter.nf_conntrack_udp_timeout=5",
                "net.netfilter.nf_conntrack_udp_timeout_stream=12",
            ),
        )
        # (d) No NAT: directly on the public segment.
        self.direct("open", "203.0.113.21")
        # No NAT, but a stateful firewall that lets in only answers to what was sent.
        self.direct("fw", "203.0.113.22", """
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
  }
}
""")

    def teardown(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                server.proc.terminate()
                try:
                    server.proc.wait(5)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(5)
        clean_this_run()

    # -- running the client --

    def nat(self, client: Client, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """`turnpike nat ARGS` inside the client's namespace."""
        if client.router and client.reset:
            sh("ip", "netns", "exec", client.router, "nft", client.reset)
        return sh(
            "ip", "netns", "exec", client.ns, str(self.binary), "nat", *args,
            check=False, timeout=timeout,
        )

    def server_logs(self) -> str:
        return "\n".join(f"--- {' '.join(s.argv)}\n{s.log_text()[-4000:]}" for s in self.servers)


def turnpike_bin() -> Path:
    path = Path(os.environ.get("TURNPIKE_BIN", str(DEFAULT_BIN)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"turnpike binary not found at {path}: run `cargo build -p turnpike` or set TURNPIKE_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory):
    check_preconditions()
    binary = turnpike_bin()
    clean_leftovers()
    clean_this_run()  # a dead earlier run whose pid we now have
    topo = Topology(binary, tmp_path_factory.mktemp("netns"))
    atexit.register(topo.teardown)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        topo.teardown()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        topo.build()
    except Exception as error:  # noqa: BLE001 - reported as a failure with the logs
        logs = topo.server_logs()
        topo.teardown()
        pytest.fail(f"building the namespaces failed: {error}\n{logs}", pytrace=False)
    try:
        yield topo
    finally:
        topo.teardown()
        signal.signal(signal.SIGTERM, previous)
        atexit.unregister(topo.teardown)


def parse_text(stdout: str) -> dict[str, list[str]]:
    """`label   value` lines of `turnpike nat` into {label: [values]}."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        label, value = line[:17].strip(), line[17:].strip()
        found.setdefault(label, []).append(value)
    return found


def parse_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json prints one line, got:\n{stdout}"
    return json.loads(lines[0])
