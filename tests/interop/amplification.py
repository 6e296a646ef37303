#!/usr/bin/env python3
"""Amplification, measured from outside: for every request an attacker can send from a spoofed
UDP address, the bytes `turnpike serve` and coturn's `turnserver` send back, and the total a
spoofed victim receives over a burst of 1,000 requests.

    python3 tests/interop/amplification.py [--bin target/debug/turnpike] [--json]

prints the tables of docs/stun.md and docs/turn.md ("Amplification"). It needs root: both servers
run in a network namespace of their own (created and deleted here), on addresses that are not
loopback — Turnpike exempts loopback sources from its per-source budget (they cannot be spoofed
from the network), so a burst from 127.0.0.1 would not show it. The victim is simply a socket
bound to the address the requests claim to come from: it sees exactly what a spoofed victim
would. tests/interop/test_amplification.py asserts the figures for Turnpike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import stunraw  # noqa: E402
import turnraw  # noqa: E402

REPO = HERE.parents[1]
SERVER4, CLIENT4, VICTIM4 = "10.99.0.1", "10.99.0.2", "10.99.0.77"
SERVER6, CLIENT6, VICTIM6 = "fd00:99::1", "fd00:99::2", "fd00:99::77"
REALM = "turnpike"
BURST = 1000
SETTLE = 0.3  # seconds to wait for answers to one request


def turn_request(method: int, attrs: bytes = b"") -> bytes:
    return stunraw.build(method, stunraw.REQUEST, attrs)


def forged_nonce_allocate() -> bytes:
    """A signed-looking Allocate with a nonce nobody issued: what a flood of forged nonces is."""
    attrs = (
        turnraw.requested_transport()
        + stunraw.attr(stunraw.USERNAME, b"u")
        + stunraw.attr(turnraw.REALM, REALM.encode())
        + stunraw.attr(turnraw.NONCE, b"obMatJos2gAAA" + b"A" * 24)
    )
    return stunraw.with_integrity(turn_request(turnraw.ALLOCATE, attrs), b"\x00" * 16)


def bogus_integrity_allocate() -> bytes:
    """An Allocate with MESSAGE-INTEGRITY but no USERNAME/REALM/NONCE (RFC 8489 §9.2.4: 400)."""
    return stunraw.with_integrity(turn_request(turnraw.ALLOCATE, turnraw.requested_transport()), b"\x00" * 16)


# (name, builder); each is sent over IPv4, and the Binding ones over IPv6 too.
BINDING_CASES = [
    ("Binding, header only", lambda: stunraw.binding_request()),
    ("Binding + FINGERPRINT", lambda: stunraw.binding_request(fingerprint=True)),
    ("Binding, RFC 3489 (no cookie)", lambda: stunraw.classic_binding_request()),
    ("Binding + CHANGE-REQUEST (ip+port)", lambda: stunraw.binding_request(stunraw.change_request(True, True))),
]
TURN_CASES = [
    ("Allocate, header only", lambda: turn_request(turnraw.ALLOCATE)),
    ("Allocate + REQUESTED-TRANSPORT", lambda: turn_request(turnraw.ALLOCATE, turnraw.requested_transport())),
    ("Allocate + bogus MESSAGE-INTEGRITY", bogus_integrity_allocate),
    ("Allocate, forged NONCE + MESSAGE-INTEGRITY", forged_nonce_allocate),
    ("Refresh, header only", lambda: turn_request(turnraw.REFRESH)),
    ("CreatePermission, header only", lambda: turn_request(turnraw.CREATE_PERMISSION)),
    ("ChannelBind, header only", lambda: turn_request(turnraw.CHANNEL_BIND)),
    ("Send indication, header only", lambda: stunraw.build(turnraw.SEND, stunraw.INDICATION)),
]


def udp(ip: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((ip, 0))
    return sock


def answers(sock: socket.socket, duration: float) -> list[int]:
    """Lengths of the datagrams that arrive on `sock` within `duration` seconds of quiet."""
    sizes = []
    deadline = time.monotonic() + duration
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except (TimeoutError, socket.timeout):
            break
        sizes.append(len(data))
        deadline = time.monotonic() + duration
    return sizes


def measure_one(server: tuple[str, int], source_ip: str, request: bytes) -> int:
    """Bytes sent back to `source_ip` for one `request` (0: dropped)."""
    with udp(source_ip) as sock:
        sock.sendto(request, server)
        return sum(answers(sock, SETTLE))


def measure_burst(server: tuple[str, int], victim_ip: str, build) -> dict:
    """Bytes sent in the victim's name over BURST requests, bytes it received, and how long the
    sending took (the budget refills meanwhile)."""
    sent = 0
    with udp(victim_ip) as sock:
        start = time.monotonic()
        for i in range(BURST):
            request = build()
            sock.sendto(request, server)
            sent += len(request)
            if i % 10 == 9:  # let the server keep up: measure the budget, not socket buffers
                time.sleep(0.005)
        seconds = time.monotonic() - start
        received = answers(sock, 1.0)
    return {"sent": sent, "received": sum(received), "answers": len(received), "seconds": seconds}


class Servers:
    """turnpike and coturn on SERVER4/SERVER6, UDP only, user u:p in realm `turnpike`."""

    def __init__(self, binary: Path, tmp: Path) -> None:
        self.procs = []
        self.ports = {}
        self.ports["turnpike"] = self._free_port()
        self._start(
            "turnpike",
            [str(binary), "serve", "--listen", f"{SERVER4}:{self.ports['turnpike']}",
             "--listen", f"[{SERVER6}]:{self.ports['turnpike']}", "--tcp", "false", "--http", "false",
             "--metrics-listen", "off", "--realm", REALM, "--users", "u:p", "--relay-ip", SERVER4],
            tmp,
        )
        self.ports["coturn"] = self._free_port()
        turnserver = shutil.which("turnserver") or "/usr/bin/turnserver"
        self._start(
            "coturn",
            [turnserver, "-n", "--no-cli", "--lt-cred-mech", "--user", "u:p", "--realm", REALM,
             "--listening-ip", SERVER4, "--listening-ip", SERVER6, "--relay-ip", SERVER4,
             "--listening-port", str(self.ports["coturn"]), "--no-tls", "--no-dtls", "--no-tcp",
             "--pidfile", str(tmp / "turnserver.pid"), "--userdb", str(tmp / "turndb"),
             "--log-file", "stdout", "--simple-log"],
            tmp,
        )

    @staticmethod
    def _free_port() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((SERVER4, 0))
            return s.getsockname()[1]

    def _start(self, name: str, cmd: list[str], tmp: Path) -> None:
        log = open(tmp / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp))
        deadline = time.monotonic() + 20
        while True:
            try:
                stunraw.udp_transact((SERVER4, self.ports[name]), stunraw.binding_request(), timeout=0.2, retries=0)
                return
            except TimeoutError:
                if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                    raise RuntimeError(f"{name} did not start: {(tmp / f'{name}.log').read_text(errors='replace')}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure_all(servers: Servers) -> dict:
    rows = []
    cases = [(name, build, 4) for name, build in BINDING_CASES]
    cases += [(f"{name} (IPv6)", build, 6) for name, build in BINDING_CASES[:2]]
    cases += [(name, build, 4) for name, build in TURN_CASES]
    for name, build, family in cases:
        row = {"request": name, "kind": "turn" if (name, build) in TURN_CASES else "binding"}
        for server, port in servers.ports.items():
            ip, source = (SERVER4, CLIENT4) if family == 4 else (SERVER6, CLIENT6)
            request = build()
            row["bytes"] = len(request)
            row[server] = measure_one((ip, port), source, request)
        rows.append(row)
    bursts = []
    burst_cases = [
        (TURN_CASES[1][0], TURN_CASES[1][1], 4),
        (BINDING_CASES[0][0], BINDING_CASES[0][1], 4),
        (f"{BINDING_CASES[0][0]} (IPv6)", BINDING_CASES[0][1], 6),
    ]
    for name, build, family in burst_cases:
        row = {"request": name}
        server_ip, victim = (SERVER4, VICTIM4) if family == 4 else (SERVER6, VICTIM6)
        for server, port in servers.ports.items():
            row[server] = measure_burst((server_ip, port), victim, build)
            row["sent"] = row[server]["sent"]
        bursts.append(row)
    return {"rows": rows, "bursts": bursts}


def markdown(result: dict) -> str:
    def cell(n: int, size: int) -> str:
        return "dropped" if n == 0 else f"{n} ({n / size:.2f}×)"

    lines = [
        "| request | bytes | Turnpike answer (ratio) | coturn 4.6.1 answer (ratio) |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['request']} | {row['bytes']} | {cell(row['turnpike'], row['bytes'])} | {cell(row['coturn'], row['bytes'])} |")
    lines += [
        "",
        f"| burst of {BURST} from one spoofed source | bytes sent | Turnpike: victim receives | coturn: victim receives |",
        "|---|---:|---:|---:|",
    ]
    for row in result["bursts"]:
        ours, theirs = row["turnpike"]["received"], row["coturn"]["received"]
        lines.append(
            f"| {row['request']} | {row['sent']} | {ours} ({ours / row['sent']:.2f}×) "
            f"| {theirs} ({theirs / row['sent']:.2f}×) |"
        )
    return "\n".join(lines)


def inside(binary: Path) -> dict:
    """Runs in the namespace: start both servers, measure, stop them."""
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(binary, Path(tmp))
        try:
            return measure_all(servers)
        finally:
            servers.stop()


def in_namespace(binary: Path) -> dict:
    """Creates a namespace with the test addresses on its loopback, runs `inside` there."""
    ns = f"tp-amp-{os.getpid()}"
    run = lambda *cmd: subprocess.run(cmd, check=True)  # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for ip in (SERVER4, CLIENT4, VICTIM4):
            run("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "lo")
        for ip in (SERVER6, CLIENT6, VICTIM6):
            run("ip", "-n", ns, "addr", "add", f"{ip}/128", "dev", "lo", "nodad")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", "--bin", str(binary)],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("TURNPIKE_BIN", str(REPO / "target" / "debug" / "turnpike"))
    parser.add_argument("--bin", default=default, help="the turnpike binary")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    binary = Path(args.bin).resolve()
    if args.inside:
        print(json.dumps(inside(binary)))
        return
    result = in_namespace(binary)
    print(json.dumps(result, indent=1) if args.json else markdown(result))


if __name__ == "__main__":
    main()
