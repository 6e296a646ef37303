"""`turnpike p2p` and real Chromium on the room page, each behind its own symmetric NAT (issue 16):
the CLI in its default WebRTC mode must find and trickle its server-reflexive and relayed
candidates (RFC 8445 §5.1.1, RFC 8838), because nothing else can make this path:

    CLI     in "sym"  (10.99.3.2 behind 203.0.113.13, masquerade random + input drop)
    browser in "sym2" (10.99.7.2 behind 203.0.113.17, the same), STUN only (its TURN servers are
            removed from its RTCPeerConnection configuration, as a browser without TURN)

Symmetric NATs on both sides defeat hole punching, and the page has no relay of its own: the
only working pair is the page's (NATed) host or reflexive address ↔ the CLI's relayed address.
The page is driven by tests/e2e/lib/room-page-driver.mjs, started with `ip netns exec` so that
its Chromium (playwright's child) lives in the namespace.

Run as root from the repository root: .venv/bin/pytest tests/netns -v
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import P2P_SERVER_IP, REPO, Topology
from test_p2p import kill, p2p, token, wait_for

DRIVER = REPO / "tests" / "e2e" / "lib" / "room-page-driver.mjs"
PAGE_TIMEOUT = 60


@pytest.mark.timeout(150)
def test_the_cli_behind_a_symmetric_nat_trickles_its_relay_to_a_stun_only_browser(
    topology: Topology, tmp_path: Path
) -> None:
    cli_side, page_side = topology.clients["sym"], topology.clients["sym2"]
    room = f"netns-browser-{os.getpid()}"
    cli_log = tmp_path / "cli.log"
    # The chat's lines go to the CLI's stdin.
    cli = p2p(topology, cli_side, room, log=cli_log, timeout="60", stdin=subprocess.PIPE)
    page = None
    stdout = stderr = ""
    try:
        wait_for(cli_log, "waiting for a peer", cli)
        url = f"http://{P2P_SERVER_IP}:8080/room/{room}?token={token(topology, room)}"
        page = subprocess.Popen(
            ["ip", "netns", "exec", page_side.ns, "node", str(DRIVER), "--url", url, "--stun-only",
             "--expect", "hello from behind a NAT", "--say", "hello from the browser",
             "--timeout", str(PAGE_TIMEOUT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO / "tests" / "e2e",
        )
        wait_for(cli_log, "over WebRTC: data channel", cli, timeout=PAGE_TIMEOUT)
        assert cli.stdin is not None
        cli.stdin.write("hello from behind a NAT\n")
        cli.stdin.flush()
        stdout, stderr = page.communicate(timeout=PAGE_TIMEOUT + 30)
        wait_for(cli_log, "peer> hello from the browser", cli)
        cli.stdin.close()
        cli.wait(20)
    finally:
        if page is not None:
            kill(page)
        kill(cli)
    text = cli_log.read_text(errors="replace")
    outputs = (
        f"CLI (exit {cli.returncode}):\n{text}\n"
        f"page (exit {page.returncode}):\n{stdout}\n{stderr}\n" + topology.server_logs()[-3000:]
    )
    print(outputs)
    assert page.returncode == 0 and cli.returncode == 0, outputs
    result = json.loads(stdout.strip().splitlines()[-1])

    # The CLI learnt its NAT's public address and its relay, and said so.
    srflx = re.search(r"^gathered srflx (203\.0\.113\.13:\d+) \(base (10\.99\.3\.2:\d+)\)$", text, re.M)
    relay = re.search(rf"^gathered relay ({re.escape(P2P_SERVER_IP)}:\d+)$", text, re.M)
    assert srflx and relay, outputs

    # Both reached the page by trickle, after the answer (RFC 8838).
    [peer] = result["peers"]
    trickled = {(c["type"], c["address"]) for c in peer["trickled"]}
    assert ("srflx", srflx.group(1)) in trickled, outputs
    assert ("relay", relay.group(1)) in trickled, outputs

    # And the path the page selected ends at the CLI's relayed address: nothing else can work
    # between two symmetric NATs when the page has no relay of its own.
    assert peer["remoteType"] == "relay", outputs
    assert peer["localType"] in ("host", "srflx", "prflx"), outputs
    assert any(m["text"] == "hello from behind a NAT" and not m["self"] for m in result["messages"]), outputs
