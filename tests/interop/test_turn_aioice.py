"""Python aioice's TURN client (`aioice.turn.create_turn_endpoint`, an independent RFC 8656
implementation) relaying through `turnpike serve` to a local UDP echo peer.

aioice allocates (answering the 401 challenge with long-term credentials, and checking the
MESSAGE-INTEGRITY of every response), binds a channel for each peer (it never uses
CreatePermission or Send indications), sends ChannelData, refreshes, and deletes the
allocation with Refresh(LIFETIME 0) on close. Over TCP and TLS it frames ChannelData with
padding (RFC 8656 §12.5).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import ssl
import time

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

USER, PASSWORD = "alice", "secret"
REST_SECRET = "aioice-rest-secret"
PEER_IP = "127.0.0.1"
MESSAGES = 20


class EchoPeer(asyncio.DatagramProtocol):
    """A UDP echo server that records who sent what."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append((data, addr[:2]))
        self.transport.sendto(b"echo:" + data, addr)


class Receiver(asyncio.DatagramProtocol):
    """What aioice's TurnTransport delivers to: data from peers and send errors."""

    def __init__(self) -> None:
        self.received: asyncio.Queue = asyncio.Queue()
        self.errors: list[Exception] = []
        self.lost = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.put_nowait((data, addr[:2]))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def rest_credentials(secret: str, user: str, expiry: int) -> tuple[str, str]:
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def relay_port_closed(relay: tuple[str, int], within: float = 3.0) -> bool:
    """A connected UDP socket sees ECONNREFUSED once nothing listens on the relay port."""
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


async def relay_round_trip(server_addr, username, password, transport: str, use_ssl=None) -> None:
    """Allocate with aioice, exchange MESSAGES datagrams with an echo peer through the relay,
    then close (Refresh 0) and check the relay port is released."""
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(EchoPeer, local_addr=(PEER_IP, 0))
    peer_addr = peer_transport.get_extra_info("sockname")[:2]
    turn, receiver = await asyncio.wait_for(
        create_turn_endpoint(
            Receiver, server_addr, username, password, ssl=use_ssl, transport=transport
        ),
        10,
    )
    try:
        relayed = turn.get_extra_info("sockname")
        mapped = turn.get_extra_info("related_address")
        assert relayed[0] == "127.0.0.1" and relayed[1] > 0, relayed
        assert mapped[0] == "127.0.0.1", mapped

        for i in range(MESSAGES):
            payload = f"message {i} over {transport}".encode()
            turn.sendto(payload, peer_addr)
            try:
                data, src = await asyncio.wait_for(receiver.received.get(), 5)
            except asyncio.TimeoutError:
                # Say which side stopped: aioice reports a failed ChannelBind or send here.
                pytest.fail(
                    f"no echo of message {i} within 5 s; aioice's send errors: {receiver.errors!r}; "
                    f"the echo peer got {len(peer.received)} datagram(s)"
                )
            assert (data, src) == (b"echo:" + payload, peer_addr)
        assert receiver.errors == []
        # The peer saw every datagram, in order, from the relayed address (RFC 8656 §12.6).
        assert [d for d, _ in peer.received] == [f"message {i} over {transport}".encode() for i in range(MESSAGES)]
        assert {src for _, src in peer.received} == {tuple(relayed)}
    finally:
        turn.close()
        peer_transport.close()
    await asyncio.wait_for(receiver.lost, 5)
    assert await asyncio.to_thread(relay_port_closed, tuple(relayed)), f"relay {relayed} still open after close"


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_aioice_relays_to_echo_peer(turnpike, transport):
    """aioice over UDP, TCP and TLS: allocation with a static user, ChannelBind to the loopback
    echo peer (allowed by --allowed-peers 127.0.0.1/32), 20 ChannelData round trips, and
    deletion on close that releases the relay port."""
    server = turnpike(
        tls=transport == "tls", users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"],
        allowed_peers=["127.0.0.1/32"],
    )
    if transport == "tls":
        asyncio.run(relay_round_trip(server.tls, USER, PASSWORD, "tcp", tls_context()))
    else:
        asyncio.run(relay_round_trip(server.udp, USER, PASSWORD, transport))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_aioice_rest_credentials(turnpike, transport):
    """TURN REST credentials computed here (username "EXPIRY:carol", password
    base64(HMAC-SHA1(secret, username))) with --rest-secrets: the same round trips."""
    server = turnpike(rest_secrets=[REST_SECRET], relay_ip=["127.0.0.1"], allowed_peers=["127.0.0.1/32"])
    username, password = rest_credentials(REST_SECRET, "carol", int(time.time()) + 600)
    asyncio.run(relay_round_trip(server.udp, username, password, transport))


@pytest.mark.parametrize("what", ["wrong-password", "expired-rest"])
def test_aioice_bad_credentials_get_401(turnpike, what):
    """A wrong password, or a REST username past its expiry, makes aioice's Allocate fail with
    401 after its one authenticated retry."""
    server = turnpike(users=[f"{USER}:{PASSWORD}"], rest_secrets=[REST_SECRET], relay_ip=["127.0.0.1"])
    if what == "wrong-password":
        username, password = USER, "wrong"
    else:
        username, password = rest_credentials(REST_SECRET, "carol", int(time.time()) - 10)

    async def main():
        with pytest.raises(stun.TransactionFailed) as info:
            await asyncio.wait_for(
                create_turn_endpoint(Receiver, server.udp, username, password), 10
            )
        assert info.value.response.error_code == 401

    asyncio.run(main())


def test_aioice_channel_bind_to_denied_peer_fails_403(turnpike):
    """Without --allowed-peers a loopback peer (127.0.0.2) is denied: aioice's ChannelBind gets
    403, reported through error_received, and the peer receives nothing."""
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"])

    async def main():
        loop = asyncio.get_running_loop()
        peer_transport, peer = await loop.create_datagram_endpoint(EchoPeer, local_addr=("127.0.0.2", 0))
        peer_addr = peer_transport.get_extra_info("sockname")[:2]
        turn, receiver = await create_turn_endpoint(Receiver, server.udp, USER, PASSWORD)
        try:
            turn.sendto(b"to a denied peer", peer_addr)
            for _ in range(50):
                if receiver.errors:
                    break
                await asyncio.sleep(0.1)
            assert len(receiver.errors) == 1, receiver.errors
            err = receiver.errors[0]
            assert isinstance(err, stun.TransactionFailed), err
            assert err.response.error_code == 403, err.response
            await asyncio.sleep(0.5)
            assert peer.received == []
            assert receiver.received.empty()
        finally:
            turn.close()
            peer_transport.close()
        await asyncio.wait_for(receiver.lost, 5)

    asyncio.run(main())
