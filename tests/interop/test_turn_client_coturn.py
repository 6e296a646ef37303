"""Our sans-IO TURN client (`ice::TurnClient`, driven by the example `turn_probe` over a blocking
UDP socket) against an independent TURN server: coturn's `turnserver` (Debian package coturn),
with coturn's `turnutils_peer` as the echo peer. Also against `turnpike serve`, which takes the
RFC 8489 paths coturn does not (PASSWORD-ALGORITHMS with SHA-256, USERHASH).

The probe prints one JSON object per line (allocated, channel_bound, sent, received, done) and
exits 0 when every datagram it sent came back through the relay and the Refresh with LIFETIME 0
was answered. Its binary is TURN_PROBE_BIN, or `examples/turn_probe` beside TURNPIKE_BIN (or
target/debug): scripts/test builds it with `cargo build -p turnpike-ice --example turn_probe`.

coturn runs on loopback with `--lt-cred-mech --user u:p --realm r --allow-loopback-peers`, its own
pid file and no config file (`-n`), on a free port with a free relay range; it is stopped with
SIGTERM after each test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import stunraw
from conftest import DEFAULT_BIN, free_ports, free_relay_range
from test_turn_turnutils import EchoPeer, tool

USER, PASSWORD, REALM = "u", "p", "r"
PROBE_TIMEOUT = 20

pytestmark = pytest.mark.timeout(60)


def probe_bin() -> Path:
    explicit = os.environ.get("TURN_PROBE_BIN")
    if explicit:
        path = Path(explicit)
    else:
        path = Path(os.environ.get("TURNPIKE_BIN", str(DEFAULT_BIN))).parent / "examples" / "turn_probe"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"turn_probe not found at {path}: run `cargo build -p turnpike-ice --example turn_probe` "
            "or set TURN_PROBE_BIN",
            pytrace=False,
        )
    return path


class Coturn:
    """coturn's turnserver on 127.0.0.1, UDP only (and TCP, which it listens on too), long-term
    credentials u:p in realm r, relaying in a free port range. `extra` flags replace the default
    `--allow-loopback-peers` (test_check.py runs it without, to draw 403s); `tls` (certificate and
    key files) adds a TLS listener on `tls_port`, and with `dtls` a DTLS one on the same port over
    UDP (RFC 7350)."""

    def __init__(
        self, tmp: Path, extra: list[str] | None = None, tls: tuple[Path, Path] | None = None, dtls: bool = False
    ) -> None:
        self.ip = "127.0.0.1"
        self.port, self.tls_port = free_ports(2, [self.ip])
        self.log = tmp / "turnserver.log"
        low, high = free_relay_range([self.ip])
        cmd = [
            tool("turnserver"), "-n", "--no-cli", "--lt-cred-mech", "--user", f"{USER}:{PASSWORD}",
            "--realm", REALM, "--listening-ip", self.ip, "--relay-ip", self.ip,
            "--listening-port", str(self.port), "--min-port", str(low), "--max-port", str(high),
            *(["--cert", str(tls[0]), "--pkey", str(tls[1]), "--tls-listening-port", str(self.tls_port)]
              if tls else ["--no-tls"]),
            *([] if dtls and tls else ["--no-dtls"]), "--no-tcp-relay",
            "--pidfile", str(tmp / "turnserver.pid"), "--userdb", str(tmp / "turndb"),
            "--log-file", "stdout", "--simple-log",
            *(["--allow-loopback-peers"] if extra is None else extra),
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp
        )
        # Ready once it answers a Binding request.
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, f"turnserver exited:\n{self.log.read_text(errors='replace')}"
            try:
                stunraw.udp_transact((self.ip, self.port), stunraw.binding_request(), timeout=0.2, retries=0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    pytest.fail(f"turnserver did not start:\n{self.log.read_text(errors='replace')}")

    # SIGTERM, then SIGKILL after 5 s: the same as the echo peer's.
    stop = EchoPeer.stop


@pytest.fixture
def coturn(tmp_path):
    server = Coturn(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def echo_peer():
    peer = EchoPeer()
    yield peer
    peer.stop()


def run_probe(server: tuple[str, int], peer: tuple[str, int], *flags: str, user=USER, password=PASSWORD):
    """(exit status, JSON events, raw output) of one probe run."""
    cmd = [
        str(probe_bin()), "--server", f"{server[0]}:{server[1]}", "--user", user, "--password", password,
        "--peer", f"{peer[0]}:{peer[1]}", "--timeout-s", "10", *flags,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    out = f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}"
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events, out


def of(events, kind):
    return [e for e in events if e["event"] == kind]


def test_channel_data_round_trip_through_coturn(coturn, echo_peer):
    """RFC 8656 §7 and §12 against coturn: Allocate through the 401 challenge (MD5 key,
    MESSAGE-INTEGRITY), ChannelBind to the echo peer, then ChannelData out and ChannelData back
    for every datagram, and a Refresh with LIFETIME 0 that coturn answers."""
    peer = (echo_peer.ip, echo_peer.port)
    rc, events, out = run_probe((coturn.ip, coturn.port), peer, "--channel", "--count", "5")
    assert rc == 0, out
    [allocated] = of(events, "allocated")
    assert allocated["relayed"].startswith("127.0.0.1:"), out
    assert allocated["mapped"].startswith("127.0.0.1:"), out
    assert allocated["lifetime"] > 0
    [bound] = of(events, "channel_bound")
    assert 0x4000 <= bound["channel"] <= 0x4FFF, out
    assert bound["peer"] == f"{peer[0]}:{peer[1]}"
    sent, received = of(events, "sent"), of(events, "received")
    assert len(sent) == 5 and all(s["channel_data"] for s in sent), out
    assert sorted(r["payload"] for r in received) == [f"turnpike-probe-{i}" for i in range(5)], out
    assert all(r["channel_data"] and r["peer"] == bound["peer"] for r in received), out
    assert of(events, "done")[0]["deallocated"] is True


def test_send_indication_round_trip_through_coturn(coturn, echo_peer):
    """RFC 8656 §9 and §11 against coturn: CreatePermission, Send indications out, Data
    indications back."""
    rc, events, out = run_probe((coturn.ip, coturn.port), (echo_peer.ip, echo_peer.port), "--count", "3")
    assert rc == 0, out
    assert not of(events, "channel_bound")
    sent = of(events, "sent")
    assert len(sent) == 3 and all(not s["channel_data"] for s in sent), out
    received = of(events, "received")
    assert len(received) == 3 and all(not r["channel_data"] for r in received), out


def test_wrong_password_against_coturn(coturn, echo_peer):
    """RFC 8489 §9.2.5: a 401 to the signed retry ends the Allocate with 401, no loop."""
    rc, events, out = run_probe(
        (coturn.ip, coturn.port), (echo_peer.ip, echo_peer.port), "--count", "1", password="wrong"
    )
    assert rc != 0, out
    [failed] = of(events, "allocation_failed")
    assert failed["code"] == 401, out


def test_channel_data_round_trip_through_turnpike(turnpike, echo_peer):
    """The same ChannelData round trip through `turnpike serve`, whose nonces ask for
    PASSWORD-ALGORITHMS (SHA-256, MESSAGE-INTEGRITY-SHA256) and USERHASH."""
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"], allowed_peers=["127.0.0.1/32"])
    rc, events, out = run_probe((server.ip, server.port), (echo_peer.ip, echo_peer.port), "--channel", "--count", "5")
    assert rc == 0, out
    assert len(of(events, "received")) == 5, out
    assert all(r["channel_data"] for r in of(events, "received")), out
