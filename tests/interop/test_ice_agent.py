"""Turnpike's ICE agent (crates/ice/src/agent, RFC 8445) against an independent one: aioice 0.13.

`crates/ice/examples/ice_peer.rs` runs the sans-IO agent on a loopback UDP socket and signals over
JSON lines on stdin/stdout. Each test runs it against an `aioice.Connection` in one role (ours
controlling, ours controlled), checks that ICE completes on both sides with the same pair, and that
a datagram goes each way: the example greets, aioice sends, the example echoes.

The example binary is whatever ICE_PEER_BIN names (scripts/test sets it), else
`target/debug/examples/ice_peer` (`cargo build -p turnpike-ice --example ice_peer`).

aioice leaves 127.0.0.1 out of its host candidates (`get_host_addresses` skips it), so the test
patches that function to return just 127.0.0.1: both agents then live on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aioice.ice
import pytest
from aioice import Candidate, Connection

REPO = Path(__file__).resolve().parents[2]
CONNECT_TIMEOUT = 15.0


def ice_peer_bin() -> Path:
    if "ICE_PEER_BIN" in os.environ:
        path = Path(os.environ["ICE_PEER_BIN"])
    else:
        path = REPO / "target" / "debug" / "examples" / "ice_peer"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"ice_peer example not found at {path}: run "
            "`cargo build -p turnpike-ice --example ice_peer` or set ICE_PEER_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture
def loopback_only(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def _read_json(proc: asyncio.subprocess.Process, timeout: float) -> dict:
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        stderr = (await proc.stderr.read()).decode(errors="replace")
        raise AssertionError(f"ice_peer exited early (status {proc.returncode}): {stderr}")
    return json.loads(line)


async def _until(proc: asyncio.subprocess.Process, key: str, seen: list[dict]) -> dict:
    """Reads lines until one has `key`; every line read is appended to `seen`."""
    while True:
        message = await _read_json(proc, CONNECT_TIMEOUT)
        seen.append(message)
        if key in message:
            return message


async def _run(ours_controlling: bool) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(ice_peer_bin()),
        "--controlling" if ours_controlling else "--controlled",
        "--seconds",
        "25",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    conn = Connection(ice_controlling=not ours_controlling, components=1, use_ipv6=False)
    seen: list[dict] = []
    try:
        offer = await _read_json(proc, 10)
        assert len(offer["ufrag"]) >= 4 and len(offer["pwd"]) >= 22  # RFC 8445 §5.3
        assert offer["candidates"], offer
        assert all(c.startswith("candidate:") and " typ host" in c for c in offer["candidates"])

        await conn.gather_candidates()
        conn.remote_username = offer["ufrag"]
        conn.remote_password = offer["pwd"]
        for text in offer["candidates"]:
            await conn.add_remote_candidate(Candidate.from_sdp(text.removeprefix("candidate:")))
        await conn.add_remote_candidate(None)  # end-of-candidates
        answer = {
            "ufrag": conn.local_username,
            "pwd": conn.local_password,
            "candidates": ["candidate:" + c.to_sdp() for c in conn.local_candidates],
        }
        proc.stdin.write((json.dumps(answer) + "\n").encode())
        await proc.stdin.drain()

        # Both sides complete: aioice's connect() returns only with a nominated pair.
        await asyncio.wait_for(conn.connect(), CONNECT_TIMEOUT)
        selected = (await _until(proc, "selected", seen))["selected"]
        if {"state": "Connected"} not in seen:
            assert await _until(proc, "state", seen) == {"state": "Connected"}

        # The same pair on both sides (aioice keeps its nominated pair per component).
        pair = conn._nominated[1]
        ours_local = Candidate.from_sdp(selected["local"].removeprefix("candidate:"))
        ours_remote = Candidate.from_sdp(selected["remote"].removeprefix("candidate:"))
        assert (ours_local.host, ours_local.port) == pair.remote_addr
        assert (ours_remote.host, ours_remote.port) == pair.local_addr

        # A datagram each way: the example greets, and echoes what aioice sends.
        await conn.send(b"ping from aioice")
        got = set()
        for _ in range(2):
            got.add(await asyncio.wait_for(conn.recv(), 5))
        assert got == {b"hello from turnpike", b"ping from aioice"}
        received = await _until(proc, "received", seen)
        assert received == {"received": "ping from aioice"}
    finally:
        await conn.close()
        if proc.returncode is None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, (await proc.stderr.read()).decode(errors="replace")


def test_ours_controlling_aioice_controlled(loopback_only):
    """RFC 8445 §8.1.1 regular nomination by our agent; aioice selects on USE-CANDIDATE."""
    asyncio.run(_run(ours_controlling=True))


def test_ours_controlled_aioice_controlling(loopback_only):
    """aioice nominates (it sets USE-CANDIDATE on every check); our agent selects per §7.3.1.5."""
    asyncio.run(_run(ours_controlling=False))
