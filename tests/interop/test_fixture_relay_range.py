"""The `turnpike` fixture gives every server a free relay port range of its own (issue #13): the
default range (49152–65535) is shared with every other program on the machine, and one holding
many ports there made an Allocate fail with 508 Insufficient Capacity (RFC 8656 §7.2)."""

from __future__ import annotations

import conftest
import turnraw
from stunraw import SUCCESS
from turnraw import TurnClient, describe

USER, PASSWORD = "alice", "secret"


def test_a_server_without_a_range_relays_in_a_free_block_of_its_own(turnpike):
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"])
    low = int(server.args[server.args.index("--min-port") + 1])
    high = int(server.args[server.args.index("--max-port") + 1])
    assert high - low + 1 == conftest.RELAY_RANGE_SIZE
    assert conftest.RELAY_RANGE_FLOOR <= low and high <= conftest.RELAY_RANGE_CEILING
    with TurnClient(server.udp, "udp", USER, PASSWORD) as c:
        ok = c.allocate()
        assert ok.cls == SUCCESS, describe(ok)
        _, port = ok.xor_address(turnraw.XOR_RELAYED_ADDRESS)
        assert low <= port <= high, describe(ok)


def test_a_range_asked_for_is_kept(turnpike):
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"], min_port=40000, max_port=40099)
    assert server.args.count("--min-port") == 1
    assert server.args[server.args.index("--min-port") + 1] == "40000"
