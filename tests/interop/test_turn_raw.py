"""TURN (RFC 8656) with hand-built packets: authentication, error codes, the peer policy, and the
data paths, checked byte by byte against `turnpike serve`.

The client is turnraw.TurnClient (an independent codec on top of stunraw). Peers are plain UDP
sockets on loopback, so a test sees exactly what the server sent to a peer, and that it sent
nothing where it must not.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

import stunraw
import turnraw
from stunraw import SUCCESS
from turnraw import TurnClient, describe, error_code

USER, PASSWORD = "alice", "secret"
OTHER_USER, OTHER_PASSWORD = "bob", "hunter22"
REST_SECRET = "rest-secret-for-tests"
MIN_PORT, MAX_PORT = 40000, 59999
QUIET = 1.0  # seconds a socket must stay silent to count as "nothing arrived"
TRANSPORTS = ["udp", "tcp", "tls"]
# Echo peers listen on 127.0.0.2: loopback, so denied by default, but not the relay IP.
PEER_IP = "127.0.0.2"


def start(turnpike, tls: bool = False, **kw):
    kw.setdefault("users", [f"{USER}:{PASSWORD}"])
    kw.setdefault("relay_ip", ["127.0.0.1"])
    kw.setdefault("min_port", MIN_PORT)
    kw.setdefault("max_port", MAX_PORT)
    return turnpike(tls=tls, **kw)


def server_addr(server, transport: str):
    return server.tls if transport == "tls" else server.udp


def client(server, transport: str = "udp", username: str | None = USER, password: str | None = PASSWORD):
    return TurnClient(server_addr(server, transport), transport, username, password)


def peer_socket(ip: str = "127.0.0.1") -> socket.socket:
    return stunraw.udp_socket(ip)


def assert_silent(sock: socket.socket, what: str, duration: float = QUIET) -> None:
    got = stunraw.recv_datagrams(sock, duration)
    assert got == [], f"{what}: the would-be peer {sock.getsockname()} received {got!r}"


def assert_error(msg, code: int, key: bytes | None = None) -> None:
    assert error_code(msg) == code, f"expected error {code}, got {describe(msg)}"
    if key is not None:
        # RFC 8489 §9.2.4: an error response to an authenticated request (other than 400, 401,
        # 420, 438) is signed with the same key.
        stunraw.check_integrity(msg, key)


def recv_from(sock: socket.socket, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
    sock.settimeout(timeout)
    try:
        data, src = sock.recvfrom(65535)
    except socket.timeout:
        pytest.fail(f"peer {sock.getsockname()} received nothing within {timeout}s")
    return data, src[:2]


def relay_port_closed(relay: tuple[str, int], within: float = 3.0) -> bool:
    """Whether the relay port stops accepting datagrams: a connected UDP socket sees
    ECONNREFUSED once the kernel answers with ICMP port unreachable."""
    deadline = time.monotonic() + within
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(relay)
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                s.send(b"probe")
                s.recv(100)
            except ConnectionRefusedError:
                return True
            except socket.timeout:
                pass
    return False


# --------------------------------------------------------------------------------------------
# Binding still works, Allocate and its challenge
# --------------------------------------------------------------------------------------------


def test_binding_on_turn_port_needs_no_auth(turnpike):
    """RFC 8656 §5: only TURN methods need credentials. A Binding request without any, over UDP
    and TCP, to a server with users configured is answered with success and the client's
    reflexive address, not a 401."""
    server = start(turnpike)
    server.assert_answers_binding()
    with socket.create_connection(server.tcp, timeout=3) as s:
        req = stunraw.binding_request()
        s.sendall(req)
        msg = stunraw.recv_stream_message(s)
        assert msg.cls == SUCCESS, describe(msg)
        assert msg.xor_address() == s.getsockname()
        assert not msg.has(turnraw.NONCE), "a Binding response must carry no challenge"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_allocate_challenge_then_success(turnpike, transport):
    """RFC 8656 §7.2 / RFC 8489 §9.2: the first, unauthenticated Allocate gets 401 with REALM and
    NONCE (and no MESSAGE-INTEGRITY); the authenticated retry gets a success response signed with
    MD5(user:realm:pass) that holds XOR-RELAYED-ADDRESS (relay IP 127.0.0.1, a port within
    --min-port..--max-port), XOR-MAPPED-ADDRESS = the client's own address, and LIFETIME."""
    server = start(turnpike, tls=transport == "tls", realm="interop.example")
    with client(server, transport) as c:
        first = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert_error(first, 401)
        assert first.get(turnraw.REALM) == b"interop.example", describe(first)
        assert len(first.get(turnraw.NONCE)) > 0
        assert not first.has(stunraw.MESSAGE_INTEGRITY), describe(first)
        c.learn_challenge(first)
        ok = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert ok.cls == SUCCESS, describe(ok)
        stunraw.check_integrity(ok, c.key)
        relay_ip, relay_port = ok.xor_address(turnraw.XOR_RELAYED_ADDRESS)
        assert relay_ip == "127.0.0.1", describe(ok)
        assert MIN_PORT <= relay_port <= MAX_PORT, describe(ok)
        assert ok.xor_address(stunraw.XOR_MAPPED_ADDRESS) == c.local
        (life,) = struct.unpack("!I", ok.get(turnraw.LIFETIME))
        assert 0 < life <= 3600, life


def test_second_allocate_on_same_five_tuple_is_437(turnpike):
    """RFC 8656 §7.2 rule 2: an Allocate (new transaction) on a 5-tuple that already has an
    allocation gets 437 Allocation Mismatch, signed (the request was authenticated)."""
    server = start(turnpike)
    with client(server) as c:
        c.allocate_ok()
        again = c.allocate()
        assert_error(again, 437, c.key)


def test_allocate_other_transports(turnpike):
    """RFC 8656 §7.2 rule 5: REQUESTED-TRANSPORT other than UDP and TCP (here DCCP, 33) gets
    442 Unsupported Transport Protocol (coturn wrongly says 400); TCP over UDP gets 400 (RFC
    6062 §5.1 step 2: TCP allocations only over TCP or TLS); without REQUESTED-TRANSPORT the
    request is malformed: 400."""
    server = start(turnpike)
    with client(server) as c:
        r = c.allocate(transport=33)
        assert_error(r, 442, c.key)
        r = c.allocate(transport=turnraw.TCP_PROTO)
        assert_error(r, 400, c.key)
        r = c.request(turnraw.ALLOCATE, b"")
        assert_error(r, 400)
        # The 5-tuple has no allocation: a correct Allocate still succeeds.
        c.allocate_ok()


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------


def test_wrong_password_is_401(turnpike):
    """RFC 8489 §9.2.4: a MESSAGE-INTEGRITY made with the wrong password (and an unknown user)
    gets 401 with a fresh challenge and creates nothing; the right password then succeeds on
    the same 5-tuple."""
    server = start(turnpike)
    with client(server, password="not-the-password") as c:
        r = c.allocate()
        assert_error(r, 401)
        assert r.has(turnraw.REALM) and r.has(turnraw.NONCE), describe(r)
        assert not r.has(stunraw.MESSAGE_INTEGRITY), describe(r)
        c.username = "mallory"
        assert_error(c.request_once(turnraw.ALLOCATE, turnraw.requested_transport()), 401)
        c.username, c.password = USER, PASSWORD
        ok = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert ok.cls == SUCCESS, describe(ok)


def test_tampered_integrity_is_401(turnpike):
    """RFC 8489 §9.2.4: the right user and password but one flipped bit in the HMAC: 401."""
    server = start(turnpike)
    with client(server) as c:
        c.learn_challenge(c.request_once(turnraw.ALLOCATE, turnraw.requested_transport()))
        r = c.transact(c.build(turnraw.ALLOCATE, turnraw.requested_transport(), bad_integrity=True))
        assert_error(r, 401)
        ok = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert ok.cls == SUCCESS, describe(ok)


def test_rest_credentials(turnpike):
    """TURN REST API (draft-uberti-behave-turn-rest-00): username "EXPIRY:USER" and password
    base64(HMAC-SHA1(secret, username)) allocate while EXPIRY is in the future; the same scheme
    with another secret gets 401."""
    server = start(turnpike, users=None, rest_secrets=[REST_SECRET])
    user, pw = turnraw.rest_credentials(REST_SECRET, "carol", int(time.time()) + 3600)
    with client(server, username=user, password=pw) as c:
        relay = c.allocate_ok()
        assert relay[0] == "127.0.0.1"
    user, pw = turnraw.rest_credentials("some-other-secret", "carol", int(time.time()) + 3600)
    with client(server, username=user, password=pw) as c:
        assert_error(c.allocate(), 401)


def test_expired_rest_username_is_401(turnpike):
    """A REST username whose EXPIRY is in the past gets 401 on Allocate, although its password
    is the right HMAC of the secret."""
    server = start(turnpike, users=None, rest_secrets=[REST_SECRET])
    user, pw = turnraw.rest_credentials(REST_SECRET, "carol", int(time.time()) - 60)
    with client(server, username=user, password=pw) as c:
        r = c.allocate()
        assert_error(r, 401)
        assert r.has(turnraw.NONCE), describe(r)


NONCE_SECRET_A = "a1" * 32
NONCE_SECRET_B = "b2" * 32


def test_nonce_from_another_server_is_stale_438_then_retry_succeeds(turnpike):
    """RFC 8489 §9.2.4 / §9.2.5: a nonce the server did not issue (here: one from a server with
    another --nonce-secret) gets 438 Stale Nonce with REALM and a new NONCE; the client retries
    with that nonce and succeeds."""
    a = start(turnpike, nonce_secret=NONCE_SECRET_A)
    b = start(turnpike, nonce_secret=NONCE_SECRET_B)
    with client(a) as ca:
        challenge = ca.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert_error(challenge, 401)
        nonce_a = challenge.get(turnraw.NONCE)
    with client(b) as cb:
        cb.realm, cb.nonce = "turnpike", nonce_a
        r = cb.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert_error(r, 438)
        assert r.has(turnraw.REALM) and r.has(turnraw.NONCE), describe(r)
        assert r.get(turnraw.NONCE) != nonce_a
        cb.learn_challenge(r)
        ok = cb.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert ok.cls == SUCCESS, describe(ok)


def test_nonce_is_accepted_by_a_server_with_the_same_nonce_secret(turnpike):
    """Cluster nodes sharing --nonce-secret accept each other's nonces (stateless nonces): a
    nonce issued by A to a client's transport address authenticates that client's Allocate on B
    at the first try."""
    a = start(turnpike, nonce_secret=NONCE_SECRET_A)
    b = start(turnpike, nonce_secret=NONCE_SECRET_A)
    with client(a) as c:
        nonce_a = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport()).get(turnraw.NONCE)
        c.server = server_addr(b, "udp")
        c.realm, c.nonce = "turnpike", nonce_a
        ok = c.request_once(turnraw.ALLOCATE, turnraw.requested_transport())
        assert ok.cls == SUCCESS, describe(ok)


def test_allocate_replayed_from_another_port_is_stale_438(turnpike):
    """RFC 8489 §9.2.4 with nonces bound to the client's transport address (IP, port,
    transport): a signed Allocate captured and replayed from a second socket of the same IP gets
    438 with a fresh nonce, and creates no allocation (with user-quota 1, the user can allocate
    again once the original one is deleted). The replayer cannot re-sign without the key."""
    server = start(turnpike, args=["--user-quota", "1"])
    with client(server) as c, client(server) as replayer:
        c.learn_challenge(c.request_once(turnraw.ALLOCATE, turnraw.requested_transport()))
        signed = c.build(turnraw.ALLOCATE, turnraw.requested_transport())
        ok = c.transact(signed)
        assert ok.cls == SUCCESS, describe(ok)
        r = replayer.transact(signed)
        assert_error(r, 438)
        assert r.get(turnraw.NONCE) not in (None, c.nonce), describe(r)
        assert c.refresh(0).cls == SUCCESS
    with client(server) as again:
        again.allocate_ok()


def test_request_on_allocation_with_other_user_is_441(turnpike):
    """RFC 8656 §5: a request on an existing allocation, authenticated but by another user
    than the one who created it, gets 441 Wrong Credentials (signed with that user's key); the
    allocation is untouched and its owner can still refresh it."""
    server = start(turnpike, users=[f"{USER}:{PASSWORD}", f"{OTHER_USER}:{OTHER_PASSWORD}"])
    with client(server) as c:
        c.allocate_ok()
        c.username, c.password = OTHER_USER, OTHER_PASSWORD
        r = c.refresh(600)
        assert_error(r, 441, c.key)
        r = c.create_permission(("192.0.2.1", 1000))
        assert_error(r, 441, c.key)
        c.username, c.password = USER, PASSWORD
        ok = c.refresh(600)
        assert ok.cls == SUCCESS, describe(ok)


def test_refresh_without_allocation_is_437(turnpike):
    """RFC 8656 §8: Refresh (and CreatePermission, §10.2) on a 5-tuple with no allocation gets
    437 Allocation Mismatch."""
    server = start(turnpike)
    with client(server) as c:
        # The nonce comes from the 401 to an Allocate: over UDP, an unauthenticated Refresh on a
        # 5-tuple without an allocation is dropped (amplification, docs/turn.md).
        c.learn_challenge(c.request_once(turnraw.ALLOCATE, turnraw.requested_transport(), auth=False))
        r = c.refresh(600)
        assert_error(r, 437, c.key)
        r = c.create_permission(("8.8.8.8", 53))
        assert_error(r, 437, c.key)


# --------------------------------------------------------------------------------------------
# Peer policy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "peer_ip,family",
    [
        ("127.0.0.3", turnraw.FAMILY_IPV4),
        ("10.0.0.1", turnraw.FAMILY_IPV4),
        ("169.254.169.254", turnraw.FAMILY_IPV4),
        ("::ffff:127.0.0.3", turnraw.FAMILY_IPV6),
    ],
    ids=["loopback", "private", "metadata", "v4mapped-loopback"],
)
def test_denied_peer_gets_403_and_nothing_is_sent(turnpike, peer_ip, family):
    """The default peer policy denies loopback, private and link-local peers (cloud metadata
    169.254.169.254), and the IPv4-mapped form of loopback on an IPv6 allocation: CreatePermission
    and ChannelBind get 403, and a Send indication and ChannelData aimed at the peer reach no
    one (a would-be peer socket on 127.0.0.3 gets nothing). Control in the same allocation:
    127.0.0.2, allowed with --allowed-peers 127.0.0.2/32, does get the data."""
    server = start(turnpike, relay_ip=["127.0.0.1", "::1"], allowed_peers=[f"{PEER_IP}/32"])
    with client(server) as c, peer_socket("127.0.0.3") as victim, peer_socket(PEER_IP) as control:
        extra = turnraw.requested_address_family(family) if family == turnraw.FAMILY_IPV6 else b""
        relay = c.allocate_ok(extra)
        assert relay[0] == ("::1" if family == turnraw.FAMILY_IPV6 else "127.0.0.1")
        peer = (peer_ip, victim.getsockname()[1])

        assert_error(c.create_permission(peer), 403, c.key)
        assert_error(c.channel_bind(0x4000, peer), 403, c.key)
        c.send_to(peer, b"send indication to a denied peer")
        c.send_channel(0x4000, b"channel data to a denied peer")
        assert_silent(victim, f"after 403s for {peer_ip}")
        assert c.recv_relayed(0.2) is None

        if family == turnraw.FAMILY_IPV4:
            ok = c.create_permission(control.getsockname())
            assert ok.cls == SUCCESS, describe(ok)
            c.send_to(control.getsockname(), b"to the allowed peer")
            data, src = recv_from(control)
            assert (data, src) == (b"to the allowed peer", relay)
        assert_silent(victim, "at the end")


def test_non_relay_port_on_relay_ip_is_unreachable(turnpike):
    """A peer on the relay IP itself (127.0.0.1 here) but on a port that is no live relay (a
    local service) is unreachable under the default policy: ChannelBind gets 403 and a Send
    indication or ChannelData sent towards it arrive nowhere. CreatePermission for the relay IP
    succeeds: permissions are per IP (RFC 8656 §9) and relay-to-relay traffic between two
    allocations on 127.0.0.1 needs it."""
    server = start(turnpike)
    with client(server) as c, peer_socket("127.0.0.1") as victim:
        c.allocate_ok()
        peer = victim.getsockname()
        ok = c.create_permission(peer)
        assert ok.cls == SUCCESS, describe(ok)
        assert_error(c.channel_bind(0x4000, peer), 403, c.key)
        c.send_to(peer, b"send indication to a local service")
        c.send_channel(0x4000, b"channel data to a local service")
        assert_silent(victim, "towards a non-relay port of the relay IP")


def test_allowed_peers_reaches_echo_peer_on_relay_ip(turnpike):
    """An operator who allows 127.0.0.1/32 explicitly (--allowed-peers) can relay to a local echo
    peer on 127.0.0.1 although 127.0.0.1 is also the relay IP: ChannelBind succeeds, ChannelData
    reaches the peer from the relay address, the reply comes back (the set-up used by coturn's
    turnutils_uclient + turnutils_peer on loopback)."""
    server = start(turnpike, allowed_peers=["127.0.0.1/32"])
    with client(server) as c, peer_socket("127.0.0.1") as peer:
        relay = c.allocate_ok()
        ok = c.channel_bind(0x4001, peer.getsockname())
        assert ok.cls == SUCCESS, describe(ok)
        c.send_channel(0x4001, b"echo?")
        data, src = recv_from(peer)
        assert (data, src) == (b"echo?", relay)
        peer.sendto(b"echo!", relay)
        got = c.recv_relayed()
        assert got is not None and (got.channel, got.data) == (0x4001, b"echo!"), got


def test_denied_peers_flag_overrides_public_default(turnpike):
    """--denied-peers CIDR denies a peer the default policy allows (a public address): 403 for
    8.8.8.8 under --denied-peers 8.8.8.0/24, while 1.1.1.1 (not listed) is permitted."""
    server = start(turnpike, denied_peers=["8.8.8.0/24"])
    with client(server) as c:
        c.allocate_ok()
        assert_error(c.create_permission(("8.8.8.8", 53)), 403, c.key)
        assert_error(c.channel_bind(0x4001, ("8.8.8.8", 53)), 403, c.key)
        ok = c.create_permission(("1.1.1.1", 53))
        assert ok.cls == SUCCESS, describe(ok)


def test_relay_address_of_same_server_is_an_allowed_peer(turnpike):
    """Two clients both relayed by this server (as two browsers with iceTransportPolicy relay):
    the peer is the other allocation's relay address on 127.0.0.1, which the deny-by-default
    policy must let through without --allowed-peers; data flows both ways relay to relay."""
    server = start(turnpike)
    with client(server) as a, client(server) as b:
        relay_a = a.allocate_ok()
        relay_b = b.allocate_ok()
        ok = a.create_permission(relay_b)
        assert ok.cls == SUCCESS, describe(ok)
        ok = b.channel_bind(0x4002, relay_a)
        assert ok.cls == SUCCESS, describe(ok)
        a.send_to(relay_b, b"a->b")
        got = b.recv_relayed()
        assert got is not None, "B got nothing from A's relay"
        # B has a channel to relay_a, so the server uses it (RFC 8656 §11.5).
        assert (got.kind, got.channel, got.data) == ("channel-data", 0x4002, b"a->b"), got
        b.send_channel(0x4002, b"b->a")
        got = a.recv_relayed()
        assert got is not None, "A got nothing from B's relay"
        assert (got.kind, got.peer, got.data) == ("data-indication", relay_b, b"b->a"), got
        # Only live relay ports are allowed, not another port on the relay IP.
        with peer_socket() as local:
            assert_error(a.channel_bind(0x4003, local.getsockname()), 403, a.key)


@pytest.mark.parametrize(
    "form",
    ["::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe"],
    ids=["v4mapped", "nat64-rfc6052", "6to4-rfc3056", "teredo-rfc4380"],
)
def test_ipv6_forms_of_the_servers_own_ipv4_get_403(turnpike, form):
    """Issue #10 §5: an IPv6 form that carries the server's own IPv4 address (127.0.0.1 is
    both the listen and the relay address here) is refused with 403 (RFC 8656 §10.2, §21),
    even though --allowed-peers 127.0.0.0/8 opens loopback: a NAT64 or 6to4 gateway would
    carry the datagrams back to the server's own ports. Nothing reaches a socket on the
    server's address; the native form of a non-service port stays reachable (control)."""
    server = start(turnpike, relay_ip=["127.0.0.1", "::1"], allowed_peers=["127.0.0.0/8"])
    with client(server) as c, peer_socket("127.0.0.1") as victim:
        c.allocate_ok(turnraw.requested_address_family(turnraw.FAMILY_IPV6))
        for port in (victim.getsockname()[1], server.udp[1]):
            peer = (form, port)
            assert_error(c.create_permission(peer), 403, c.key)
            assert_error(c.channel_bind(0x4000, peer), 403, c.key)
            c.send_to(peer, b"to myself in disguise")
        assert_silent(victim, f"after 403s for {form}")
    with client(server) as c, peer_socket("127.0.0.1") as control:
        c.allocate_ok()
        ok = c.create_permission(control.getsockname())
        assert ok.cls == SUCCESS, describe(ok)


@pytest.mark.parametrize("peer_ip", ["127.255.255.255", "127.0.0.0"], ids=["broadcast", "network"])
def test_directed_broadcast_of_a_host_subnet_gets_403(turnpike, peer_ip):
    """Issue #10 §5: the broadcast address of a subnet of the host's interfaces (lo's
    127.0.0.0/8 here; RFC 919 §7, RFC 1812 §5.3.5.2) and its network address (RFC 1122 §3.3.6)
    are denied even when --allowed-peers covers the subnet; another address of it is not."""
    server = start(turnpike, allowed_peers=["127.0.0.0/8"])
    with client(server) as c, peer_socket(PEER_IP) as control:
        c.allocate_ok()
        assert_error(c.create_permission((peer_ip, 4000)), 403, c.key)
        assert_error(c.channel_bind(0x4000, (peer_ip, 4000)), 403, c.key)
        ok = c.create_permission(control.getsockname())
        assert ok.cls == SUCCESS, describe(ok)


# --------------------------------------------------------------------------------------------
# Data paths
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_and_data_indications(turnpike, transport):
    """RFC 8656 §10-11: before CreatePermission a peer's datagram is dropped; after it, the
    client's Send indication reaches the peer from the relay address, and the peer's datagram
    comes back as a Data indication with XOR-PEER-ADDRESS = the peer's address and DATA = the
    payload. (The loopback peer needs --allowed-peers 127.0.0.2/32.)"""
    server = start(turnpike, tls=transport == "tls", allowed_peers=[f"{PEER_IP}/32"])
    with client(server, transport) as c, peer_socket(PEER_IP) as peer:
        relay = c.allocate_ok()
        peer.sendto(b"before permission", relay)
        assert c.recv_relayed(QUIET) is None, "data from a peer without permission was relayed"

        ok = c.create_permission(peer.getsockname())
        assert ok.cls == SUCCESS, describe(ok)
        c.send_to(peer.getsockname(), b"hello peer")
        data, src = recv_from(peer)
        assert (data, src) == (b"hello peer", relay)

        payload = os.urandom(333)
        peer.sendto(payload, relay)
        got = c.recv_relayed()
        assert got is not None, "no Data indication for the permitted peer's datagram"
        assert got.kind == "data-indication", got
        assert got.peer == peer.getsockname(), got
        assert got.data == payload


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_channel_data_round_trip(turnpike, transport):
    """RFC 8656 §12: after ChannelBind(0x4001, peer) ChannelData from the client reaches the peer
    (from the relay address) as the bare payload, and the peer's reply comes back as ChannelData
    on channel 0x4001 (padded to 4 bytes over TCP/TLS, §12.5: the payloads are 5 and 7 bytes)."""
    server = start(turnpike, tls=transport == "tls", allowed_peers=[f"{PEER_IP}/32"])
    with client(server, transport) as c, peer_socket(PEER_IP) as peer:
        relay = c.allocate_ok()
        ok = c.channel_bind(0x4001, peer.getsockname())
        assert ok.cls == SUCCESS, describe(ok)
        for i in range(3):
            c.send_channel(0x4001, b"ping" + bytes([i]))
            data, src = recv_from(peer)
            assert (data, src) == (b"ping" + bytes([i]), relay)
            peer.sendto(b"pong!!" + bytes([i]), relay)
            got = c.recv_relayed()
            assert got is not None, "no ChannelData back from the peer"
            assert (got.kind, got.channel, got.data) == ("channel-data", 0x4001, b"pong!!" + bytes([i])), got
        # Binding the same channel to another peer is a 400 (§12.2).
        assert_error(c.channel_bind(0x4001, (PEER_IP, peer.getsockname()[1] + 1)), 400)


@pytest.mark.parametrize("rfc5766", [True, False], ids=["default", "rfc5766-off"])
def test_channel_number_range(turnpike, rfc5766):
    """Channel numbers: RFC 8656 §12 allows 0x4000-0x4FFF; RFC 5766 §11 allowed 0x4000-0x7FFF,
    and coturn's turnutils_uclient still picks from that range, so by default the server takes
    it too. 0x3FFF and 0x8000 (not channel numbers: bits 0b01 mark ChannelData) always get 400;
    with --rfc5766-channel-numbers false, 0x5000 and 0x7FFF get 400 as well."""
    server = start(turnpike, allowed_peers=[f"{PEER_IP}/32"], args=[] if rfc5766 else ["--rfc5766-channel-numbers", "false"])
    with client(server) as c, peer_socket(PEER_IP) as peer, peer_socket(PEER_IP) as peer2:
        relay = c.allocate_ok()
        assert_error(c.channel_bind(0x3FFF, peer.getsockname()), 400)
        assert_error(c.channel_bind(0x8000, peer.getsockname()), 400)
        ok = c.channel_bind(0x4FFF, peer.getsockname())
        assert ok.cls == SUCCESS, describe(ok)
        r = c.channel_bind(0x7FFF, peer2.getsockname())
        if rfc5766:
            assert r.cls == SUCCESS, describe(r)
            c.send_channel(0x7FFF, b"high channel")
            data, src = recv_from(peer2)
            assert (data, src) == (b"high channel", relay)
            peer2.sendto(b"back", relay)
            got = c.recv_relayed()
            assert got is not None and (got.channel, got.data) == (0x7FFF, b"back"), got
        else:
            assert_error(r, 400)
            assert_error(c.channel_bind(0x5000, peer2.getsockname()), 400)


def test_peer_of_other_family_is_443(turnpike):
    """RFC 8656 §10.2 / §12.2: an IPv6 XOR-PEER-ADDRESS on an IPv4-only allocation gets 443
    Peer Address Family Mismatch (checked before the policy)."""
    server = start(turnpike)
    with client(server) as c:
        c.allocate_ok()
        assert_error(c.create_permission(("2606:4700::1111", 53)), 443, c.key)
        assert_error(c.channel_bind(0x4000, ("2606:4700::1111", 53)), 443, c.key)


def test_tcp_client_that_does_not_read_relayed_data_is_closed(turnpike):
    """Issue #10 §4: a TURN-over-TCP client that stops reading while a peer sends to its relay
    used to keep its connection and allocation forever (the server's write blocked). Now a
    write blocked for --tcp-write-timeout (2 s) closes the connection, which deletes the
    allocation (RFC 8656 §2.2): the relay port closes (measured: 1.8 s after the flood)."""
    server = start(
        turnpike,
        allowed_peers=[f"{PEER_IP}/32"],
        args=["--tcp-write-timeout", "2", "--tcp-idle-timeout", "60"],
    )
    with client(server, "tcp") as c, peer_socket(PEER_IP) as peer:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        relay = c.allocate_ok()
        ok = c.create_permission(peer.getsockname())
        assert ok.cls == SUCCESS, describe(ok)
        # About 4 MB towards a client that reads nothing: far beyond the server's bounded queue
        # and send buffer and the client's receive buffer.
        payload = b"x" * 1200
        for _ in range(35):
            for _ in range(100):
                peer.sendto(payload, relay)
            time.sleep(0.01)
        assert relay_port_closed(relay, within=12.0), "the allocation outlived a client that does not read"


def test_refresh_lifetime_zero_deletes_allocation(turnpike):
    """RFC 8656 §8: Refresh with LIFETIME 0 deletes the allocation: a success response, then the
    relay port stops taking datagrams, the peer's datagrams reach no one, and the next Refresh
    gets 437 (coturn instead keeps it ~1 s and answers 438/400)."""
    server = start(turnpike, allowed_peers=[f"{PEER_IP}/32"])
    with client(server) as c, peer_socket(PEER_IP) as peer:
        relay = c.allocate_ok()
        assert c.create_permission(peer.getsockname()).cls == SUCCESS
        r = c.refresh(0)
        assert r.cls == SUCCESS, describe(r)
        peer.sendto(b"after delete", relay)
        assert c.recv_relayed(QUIET) is None, "data relayed after the allocation was deleted"
        assert_error(c.refresh(600), 437, c.key)
        assert relay_port_closed(relay), f"relay port {relay} still open after Refresh(0)"
        # The 5-tuple is free again.
        c.allocate_ok()


def test_tcp_allocation_ends_with_its_connection(turnpike):
    """RFC 8656 §3.1 / §7: over TCP the allocation lives as long as the connection; closing it
    releases the relay port."""
    server = start(turnpike)
    c = client(server, "tcp")
    relay = c.allocate_ok()
    assert not relay_port_closed(relay, within=0.5), "relay port not open while the allocation lives"
    c.close()
    assert relay_port_closed(relay), f"relay port {relay} still open after the TCP connection closed"
