"""`GET /metrics` scraped before and after traffic from independent clients: coturn's
`turnutils_uclient` relaying to `turnutils_peer`, and hand-built packets for an authentication
failure and datagrams without a permission. Every counter checked must have moved by exactly
the amount of traffic the test made (docs/operations.md, "Metrics")."""

from __future__ import annotations

import socket
import time

import pytest

import stunraw
from conftest import PRIMARY_IP, free_ports
from metrics_scrape import scrape, value, wait_for
from test_turn_turnutils import PASSWORD, USER, echo_peer, statistics, uclient  # noqa: F401
from turnraw import TurnClient, error_code

pytestmark = pytest.mark.timeout(120)

CLIENTS = 3
MESSAGES = 40
LENGTH = 150


def metrics_server(turnpike, tls: bool = False):
    port = free_ports(1, [PRIMARY_IP])[0]
    server = turnpike(
        tls=tls,
        users=[f"{USER}:{PASSWORD}"],
        relay_ip=["127.0.0.1"],
        allowed_peers=["127.0.0.1/32"],
        args=["--metrics-listen", f"{PRIMARY_IP}:{port}"],
    )
    return server, (PRIMARY_IP, port)


def delta(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_relay_counters_move_by_the_traffic_relayed(turnpike, echo_peer, transport):  # noqa: F811
    """uclient (-s: CreatePermission and Send indications, -c: no RTCP allocation; -t: over
    TCP, -t -S: over TLS) sends CLIENTS x MESSAGES datagrams of LENGTH bytes to the echo peer and gets each
    echo back: the relayed packet and byte counters of each direction and of the client's
    transport move by exactly that, the allocations gauge holds the allocations made and not
    ended, and Allocate answers are counted by code (each client's first Allocate draws a 401
    challenge)."""
    server, metrics = metrics_server(turnpike, tls=transport == "tls")
    before = scrape(metrics)
    assert value(before, "turnpike_allocations", transport=transport, family="ipv4") == 0
    flags = ["-s", "-c", "-m", str(CLIENTS), "-n", str(MESSAGES), "-l", str(LENGTH), "-z", "5"]
    flags += {"udp": [], "tcp": ["-t"], "tls": ["-t", "-S"]}[transport]
    port = server.tls_port if transport == "tls" else server.port
    rc, out = uclient(server.ip, port, (echo_peer.ip, echo_peer.port), *flags, "-u", USER, "-w", PASSWORD)
    assert rc == 0, out
    stats = statistics(out)
    sent = CLIENTS * MESSAGES
    assert stats == {"sent": sent, "received": sent, "lost": 0, "dropped": 0}, f"{stats}\n{out}"

    allocations = {"transport": transport, "family": "ipv4"}
    if transport != "udp":
        # Over TCP and TLS an allocation lives and dies with its connection (RFC 8656 §3.1): uclient
        # has closed them; the server sees the closes a moment later.
        after = wait_for(metrics, lambda s: value(s, "turnpike_allocations", **allocations) == 0)
    else:
        after = scrape(metrics)
    others = [t for t in ("udp", "tcp", "tls") if t != transport]
    for direction in ("to_peer", "to_client"):
        moved = delta(before, after, "turnpike_relayed_packets_total", direction=direction, transport=transport)
        assert moved == sent, direction
        moved = delta(before, after, "turnpike_relayed_bytes_total", direction=direction, transport=transport)
        assert moved == sent * LENGTH, direction
        for other in others:
            assert delta(before, after, "turnpike_relayed_packets_total", direction=direction, transport=other) == 0
    if transport != "udp":
        accepted = delta(before, after, "turnpike_stream_connections_accepted_total", transport=transport)
        assert accepted >= CLIENTS, accepted

    allocated = delta(before, after, "turnpike_requests_total", method="allocate", code="success")
    challenged = delta(before, after, "turnpike_requests_total", method="allocate", code="401")
    ended = delta(before, after, "turnpike_allocation_lifetime_seconds_count")
    assert allocated >= CLIENTS and challenged >= CLIENTS, (allocated, challenged)
    now = value(after, "turnpike_allocations", **allocations)
    assert now == allocated - ended, (now, allocated, ended)
    assert now >= CLIENTS if transport == "udp" else ended == allocated, (now, allocated, ended)
    assert delta(before, after, "turnpike_requests_total", method="create_permission", code="success") >= CLIENTS
    assert delta(before, after, "turnpike_auth_total", outcome="accepted") >= allocated
    # Every relay port an allocation holds is counted in the pool.
    assert value(after, "turnpike_relay_ports_used", relay_ip="127.0.0.1") == now
    assert sum(v for (name, _), v in after.items() if name == "turnpike_dropped_packets_total") == sum(
        v for (name, _), v in before.items() if name == "turnpike_dropped_packets_total"
    ), "no loss, so no drop"


def test_auth_failure_and_unpermitted_peers_are_counted(turnpike):
    """A wrong password is one `wrong_credentials` outcome and one more Allocate 401; a
    datagram from a peer without a permission (RFC 8656 §9: dropped) is one `no_permission`
    drop, and so is a Send indication to such a peer."""
    server, metrics = metrics_server(turnpike)
    before = scrape(metrics)

    with TurnClient(server.udp, username=USER, password="wrong") as intruder:
        assert error_code(intruder.allocate()) == 401
    after = scrape(metrics)
    assert delta(before, after, "turnpike_auth_total", outcome="wrong_credentials") == 1
    # The first Allocate (no credentials) and the one with the wrong password: both 401.
    assert delta(before, after, "turnpike_requests_total", method="allocate", code="401") == 2
    assert delta(before, after, "turnpike_auth_total", outcome="unauthenticated") == 1

    with TurnClient(server.udp, username=USER, password=PASSWORD) as client, stunraw.udp_socket() as peer:
        relay = client.allocate_ok()
        assert value(scrape(metrics), "turnpike_permissions") == 0
        peer.sendto(b"no permission", relay)
        client.send_to(peer.getsockname(), b"no permission either")
        drops = wait_for(
            metrics,
            lambda s: delta(after, s, "turnpike_dropped_packets_total", cause="no_permission") >= 2,
        )
        assert delta(after, drops, "turnpike_dropped_packets_total", cause="no_permission") == 2
        assert delta(after, drops, "turnpike_relayed_packets_total", direction="to_client", transport="udp") == 0
        assert value(drops, "turnpike_allocations", transport="udp", family="ipv4") == 1
        # Once permitted, the same peer gets through, and the permission is counted.
        assert client.create_permission(peer.getsockname()).cls == stunraw.SUCCESS
        assert value(scrape(metrics), "turnpike_permissions") == 1
        peer.sendto(b"permitted", relay)
        assert client.recv_relayed().data == b"permitted"
        relayed = scrape(metrics)
        assert delta(drops, relayed, "turnpike_relayed_packets_total", direction="to_client", transport="udp") == 1
        assert delta(drops, relayed, "turnpike_relayed_bytes_total", direction="to_client", transport="udp") == 9
        # Deleting it (Refresh with lifetime 0) observes its lifetime.
        assert client.refresh(0).cls == stunraw.SUCCESS
    ended = scrape(metrics)
    assert value(ended, "turnpike_allocations", transport="udp", family="ipv4") == 0
    assert delta(drops, ended, "turnpike_allocation_lifetime_seconds_count") == 1
    assert value(ended, "turnpike_allocation_lifetime_seconds_bucket", le="10.0") == 1


def test_a_tcp_client_that_does_not_read_costs_queue_full_drops(turnpike):
    """Peer data for a TCP client that does not read fills the kernel buffers, then the
    connection's queue (stream_queue: 128 KiB); what does not fit is dropped and counted as
    `queue_full`, each one after the core had framed it (so also counted as relayed)."""
    server, metrics = metrics_server(turnpike)
    with TurnClient(server.tcp, transport="tcp", username=USER, password=PASSWORD) as client, \
            stunraw.udp_socket() as peer:
        relay = client.allocate_ok()
        assert client.create_permission(peer.getsockname()).cls == stunraw.SUCCESS
        # Small receive buffer: no autotuning takes megabytes off the server's hands.
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        before = scrape(metrics)
        payload = bytes(1000)

        def dropped(series) -> float:
            return delta(before, series, "turnpike_dropped_packets_total", cause="queue_full")

        deadline = time.monotonic() + 20
        while dropped(scrape(metrics)) == 0:
            assert time.monotonic() < deadline, "no queue_full drop after sending for 20 s"
            for _ in range(500):  # 500 kB per round, paced by the loopback
                peer.sendto(payload, relay)
            time.sleep(0.05)
        after = scrape(metrics)
        relayed = delta(before, after, "turnpike_relayed_packets_total", direction="to_client", transport="tcp")
        assert 0 < dropped(after) <= relayed, (dropped(after), relayed)
