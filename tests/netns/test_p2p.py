"""`turnpike p2p` between peers behind real Linux NATs (issue #5 §4): the peers meet through
the signaling server in the public namespace, connect with ICE and QUIC, and move a file whose
SHA-256 the receiver checks. The path must be direct where hole punching can work and relayed
where it cannot:

    (a) full cone      <-> (b) port-restricted cone   direct
    (b) port-restricted <-> (b) port-restricted        direct (both punch)
    (c) symmetric      <-> (c) symmetric               relay
    (b) port-restricted <-> (c) symmetric              relay

Run as root from the repository root: .venv/bin/pytest tests/netns -v
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import P2P_SIGNAL, P2P_SIGNALING_SECRET, Client, Topology

#: (sender, receiver, path expected)
PAIRS = [
    ("full", "prc", "direct"),
    ("prc", "prc2", "direct"),
    ("sym", "sym2", "relay"),
    ("prc", "sym", "relay"),
]
RUN_TIMEOUT = 90.0
CONNECTED = re.compile(r"^connected( via relay)?: (\w+) (\S+) ↔ (\w+) (\S+), RTT (\d+) ms$", re.M)


def token(topology: Topology, room: str) -> str:
    """A join token for `room` from `turnpike token`, as an application would mint it."""
    minted = subprocess.run(
        [str(topology.binary), "token", "--room", room, "--ttl", "10m",
         "--secret", P2P_SIGNALING_SECRET],
        capture_output=True, text=True, check=True, timeout=30,
    )
    return minted.stdout.strip()


def p2p(
    topology: Topology, client: Client, room: str, *args: str, log: Path, timeout: str = "60",
    stdin: int | None = None,
) -> subprocess.Popen:
    """`turnpike p2p` in `client`'s namespace, its output to `log`; `stdin=subprocess.PIPE` to
    type chat lines into it."""
    out = open(log, "w")
    return subprocess.Popen(
        ["ip", "netns", "exec", client.ns, str(topology.binary), "p2p",
         "--signal", P2P_SIGNAL, "--room", room, "--token", token(topology, room),
         "--timeout", timeout, *args],
        stdin=stdin, stdout=out, stderr=subprocess.STDOUT, text=True,
    )


def kill(proc: subprocess.Popen) -> None:
    """Ends `proc` if it is still running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the output:\n{log.read_text(errors='replace')}")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("sender,receiver,expected", PAIRS, ids=[f"{s}-{r}" for s, r, _ in PAIRS])
def test_file_transfer_takes_the_expected_path(
    topology: Topology, tmp_path: Path, sender: str, receiver: str, expected: str
) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    room = f"netns-{sender}-{receiver}-{os.getpid()}"
    receiver_log, sender_log = tmp_path / "receiver.log", tmp_path / "sender.log"

    # The receiver joins first (it answers), the sender second (it offers and is the ICE
    # controlling agent and the QUIC client).
    rx = p2p(topology, topology.clients[receiver], room, "--receive", str(inbox), log=receiver_log)
    try:
        wait_for(receiver_log, "waiting for a peer", rx)
        tx = p2p(topology, topology.clients[sender], room, "--send", str(source), log=sender_log)
        try:
            tx.wait(RUN_TIMEOUT)
            rx.wait(RUN_TIMEOUT)
        finally:
            kill(tx)
    finally:
        kill(rx)
    outputs = (
        f"sender ({sender}) exit {tx.returncode}:\n{sender_log.read_text(errors='replace')}\n"
        f"receiver ({receiver}) exit {rx.returncode}:\n{receiver_log.read_text(errors='replace')}\n"
        + topology.server_logs()[-3000:]
    )
    print(outputs)
    assert tx.returncode == 0 and rx.returncode == 0, outputs

    # The file arrived whole, and the receiver checked the digest the sender announced.
    received = inbox / "payload.bin"
    assert received.read_bytes() == payload, outputs
    digest = hashlib.sha256(payload).hexdigest()
    assert f"SHA-256 {digest}" in sender_log.read_text(), outputs
    assert "SHA-256 verified" in receiver_log.read_text(), outputs
    assert "the receiver verified the SHA-256" in sender_log.read_text(), outputs

    # Both report the path, and its type is the one this pair of NATs allows.
    for log in (sender_log, receiver_log):
        match = CONNECTED.search(log.read_text())
        assert match, outputs
        relayed = match.group(1) is not None
        kinds = {match.group(2), match.group(4)}
        if expected == "relay":
            assert relayed and "relay" in kinds, outputs
        else:
            assert not relayed and "relay" not in kinds, outputs
            # Behind NATs on different LANs, a direct path needs a reflexive address.
            assert kinds & {"srflx", "prflx"}, outputs


@pytest.mark.timeout(60)
def test_a_peer_that_never_comes_fails_with_a_clear_message(topology: Topology, tmp_path: Path) -> None:
    log = tmp_path / "alone.log"
    proc = p2p(topology, topology.clients["prc"], f"alone-{os.getpid()}", log=log, timeout="3")
    proc.wait(30)
    text = log.read_text()
    assert proc.returncode == 1, text
    assert "no connection within 3 s" in text, text


# Two symmetric NATs and --no-relay: no path can work. The failure says what was tried (not
# "is the relay reachable?", when no relay was asked for), and the peers print their
# candidates and the checks while they try.
@pytest.mark.timeout(120)
def test_no_relay_between_symmetric_nats_says_what_was_tried(topology: Topology, tmp_path: Path) -> None:
    room = f"norelay-{os.getpid()}"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = p2p(topology, topology.clients["sym2"], room, "--no-relay", log=first_log, timeout="45")
    try:
        wait_for(first_log, "waiting for a peer", first)
        second = p2p(topology, topology.clients["sym"], room, "--no-relay", log=second_log, timeout="45")
        try:
            second.wait(90)
            first.wait(90)
        finally:
            kill(second)
    finally:
        kill(first)
    texts = [first_log.read_text(errors="replace"), second_log.read_text(errors="replace")]
    outputs = "\n---\n".join(texts)
    print(outputs)
    assert first.returncode == 1 and second.returncode == 1, outputs
    assert any(
        "--no-relay ruled out the TURN relay" in t or "joined, but no path to it was found" in t for t in texts
    ), outputs
    assert not any("is the relay reachable" in t for t in texts), outputs
    for text in texts:
        assert "gathered srflx " in text, outputs
    assert any("checking " in t for t in texts), outputs
