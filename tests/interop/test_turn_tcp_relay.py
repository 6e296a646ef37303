"""TCP allocations (RFC 6062) with an independent client: coturn's `turnutils_uclient -T`
through `turnpike serve`.

How the tool behaves here (read from its output and coturn's source):
- `-T` is "TCP relay transport": it implies `-t` (TCP to the server), `-c` (no RTCP) and `-y`
  (client-to-client), and ignores `-e`/`-r` (the peer). Each of the `-m` clients makes two TCP
  allocations (REQUESTED-TRANSPORT 6) on two control connections, permits each relayed address
  on the other, and one sends Connect to the other's relayed address: the server connects
  relayed address to relayed address, the other allocation's client gets a ConnectionAttempt,
  and both open a data connection with ConnectionBind. It then sends `-n` messages of `-l`
  bytes per client and counts those that come back through the relay, as for UDP.
- Its ConnectionBind carries the nonce of the control connection (a nonce bound to another
  client port) and it gives up on a 438: Turnpike accepts a ConnectionBind's nonce when it was
  issued to the control connection of the allocation the CONNECTION-ID names.
- `-P` ("passive TCP, active peer") reports 50 % loss against coturn's own turnserver 4.6.1
  as well as against Turnpike: not a relay property, so not tested here.

The peers are the server's own relayed addresses, which the peer policy always allows, so no
--allowed-peers is needed.
"""

from __future__ import annotations

import re

import pytest

from test_turn_turnutils import PASSWORD, USER, assert_relayed_without_loss, uclient

CLIENTS = 4
MESSAGES = 100  # per client
LENGTH = 180
INTERVAL_MS = 5

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_uclient_tcp_relay_without_loss(turnpike, transport):
    """RFC 6062 §4–§5 end to end: 4 clients, each a pair of TCP allocations joined by
    Connect / ConnectionAttempt / ConnectionBind, send 100 messages of 180 bytes every 5 ms
    over their data connections and get every one back: sent = received = 400, no loss. (The
    same run with TCP relaying off fails: see the next test.)"""
    server = turnpike(tls=transport == "tls", users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"])
    flags = ["-T", "-m", str(CLIENTS), "-n", str(MESSAGES), "-l", str(LENGTH), "-z", str(INTERVAL_MS)]
    flags += ["-S"] if transport == "tls" else []
    port = server.tls_port if transport == "tls" else server.port
    rc, out = uclient(server.ip, port, (server.ip, port), *flags, "-u", USER, "-w", PASSWORD)
    assert_relayed_without_loss(rc, out)


def test_uclient_tcp_relay_refused_when_turned_off(turnpike):
    """`--tcp-relay false`: REQUESTED-TRANSPORT TCP gets 442 (RFC 8656 §7.2), which the tool
    reports as an allocation error, and nothing is relayed."""
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"], args=["--tcp-relay", "false"])
    rc, out = uclient(
        server.ip, server.port, (server.ip, server.port), "-T", "-n", "5", "-u", USER, "-w", PASSWORD,
        timeout=10, may_hang=True,
    )
    assert rc != 0, out
    assert re.search(r"error 442\b", out), out
    assert "tot_recv_msgs" not in out, out
