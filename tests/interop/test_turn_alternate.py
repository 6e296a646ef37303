"""ALTERNATE-SERVER with coturn's `turnutils_uclient` as the independent client (RFC 8656 §7.2
step 11, RFC 8489 §10), over UDP and TCP: node A is full (`--total-quota 1`, its one allocation held by another
client) and names node B in `--alternate-server`.

What uclient does with a 300 (coturn 4.6.1, src/apps/uclient/startuclient.c, and seen here):
before each client's connection (`start_connection`) a "probe" Allocate goes to the server given
on the command line; a 300 to it (checked with MESSAGE-INTEGRITY once it has a nonce) is printed
as `error 300 (Try Alternate)`, and the address of the first ALTERNATE-SERVER becomes the server
of that client's real connections, whose allocations then go there (with `-m 4`: five probes,
five 300 lines, every allocation on B). A 300 to a real allocation is not followed (the
alternate is only read for the probe): uclient exits with an error, so the test keeps A full
before uclient starts rather than letting its probe fill A.
"""

from __future__ import annotations

import re

import pytest

import turnraw
from test_turn_turnutils import CLIENTS, MESSAGES, PASSWORD, USER, echo_peer, load_flags, statistics, uclient  # noqa: F401 (echo_peer: a fixture)

pytestmark = pytest.mark.timeout(90)


def node(turnpike, *args: str):
    return turnpike(
        users=[f"{USER}:{PASSWORD}"],
        relay_ip=["127.0.0.1"],
        allowed_peers=["127.0.0.1/32"],
        args=list(args),
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_uclient_follows_a_300_from_a_full_node_and_relays_through_the_alternate(turnpike, echo_peer, transport):
    b = node(turnpike)
    a = node(turnpike, "--total-quota", "1", "--alternate-server", f"{b.ip}:{b.port}")
    # A's one allocation is taken.
    with turnraw.TurnClient(a.udp, username=USER, password=PASSWORD) as holder:
        holder.allocate_ok()
        flags = load_flags("-u", USER, "-w", PASSWORD, *(["-t"] if transport == "tcp" else []))
        # One address for both transports: B's UDP and TCP listeners share the port.
        rc, out = uclient(a.ip, a.port, (echo_peer.ip, echo_peer.port), *flags)
        assert rc == 0, f"turnutils_uclient exited with {rc}:\n{out}"
        # Each client's probe got a 300 (one line each: 5 with -m 4, the first connection's
        # probe and one per client), and no other error response came.
        errors = re.findall(r"error (\d{3})\b", out)
        assert errors and set(errors) == {"300"}, out
        stats = statistics(out)
        want = CLIENTS * MESSAGES
        assert stats == {"sent": want, "received": want, "lost": 0, "dropped": 0}, f"{stats}\n{out}"
    a_log, b_log = a.stderr(), b.stderr()
    # A refused for its total quota with a 300; the relaying happened on B.
    assert re.search(r"request refused for a server-side reason code=300 cause=total quota reached", a_log), a_log[-4000:]
    assert "total quota reached" not in b_log
    created_b = len(re.findall(r"allocation created", b_log))
    assert created_b >= CLIENTS, b_log[-4000:]
