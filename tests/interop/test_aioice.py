"""Python aioice (an independent ICE/STUN implementation) as the client of `turnpike serve`.

Uses aioice's own message encoder/decoder (`aioice.stun`), its client transactions with
retransmissions (`aioice.ice.StunProtocol.request`, `aioice.stun.Transaction`), the function it
gathers server-reflexive candidates with (`aioice.ice.server_reflexive_candidate`) and its STUN-over-TCP
framing (`aioice.turn.TurnClientTcpProtocol`).
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aioice import stun
from aioice.candidate import Candidate
from aioice.ice import StunProtocol, server_reflexive_candidate
from aioice.turn import TurnClientTcpProtocol


class _Receiver:
    """The part of aioice.Connection that StunProtocol calls back; nothing should arrive here."""

    def __init__(self) -> None:
        self.unexpected: list = []

    def data_received(self, data, component) -> None:
        self.unexpected.append(("data", data))

    def request_received(self, message, addr, protocol) -> None:
        self.unexpected.append(("request", message, addr))

    def protocol_lost(self, protocol) -> None:
        pass


async def _udp_protocol() -> tuple[StunProtocol, _Receiver]:
    loop = asyncio.get_running_loop()
    receiver = _Receiver()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: StunProtocol(receiver), local_addr=("127.0.0.1", 0)
    )
    host, port = protocol.transport.get_extra_info("sockname")[:2]
    protocol.local_candidate = Candidate(
        foundation="1", component=1, transport="udp", priority=1, host=host, port=port, type="host"
    )
    return protocol, receiver


def binding() -> stun.Message:
    return stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)


def test_server_reflexive_candidate_udp(turnpike):
    """RFC 8445 §5.1.1.2 / RFC 8489 §6.3.1.1: aioice gathers a server-reflexive candidate equal to
    its own socket's address (there is no NAT on loopback)."""
    server = turnpike()

    async def main():
        protocol, receiver = await _udp_protocol()
        try:
            candidate, _ = await server_reflexive_candidate(protocol, server.udp)
            local = protocol.local_candidate
            assert (candidate.host, candidate.port) == (local.host, local.port)
            assert candidate.type == "srflx"
            assert receiver.unexpected == []
        finally:
            await protocol.close()

    asyncio.run(main())


def test_transaction_udp_response_source_and_attributes(turnpike):
    """RFC 8489 §6.3.1.2: the response comes from the address the request was sent to; it is a
    Binding success response with XOR-MAPPED-ADDRESS = the client's address, and no FINGERPRINT
    when the request had none."""
    server = turnpike()

    async def main():
        protocol, _ = await _udp_protocol()
        try:
            response, addr = await protocol.request(binding(), server.udp)
            assert addr == server.udp
            assert response.message_class == stun.Class.RESPONSE
            assert response.message_method == stun.Method.BINDING
            local = protocol.local_candidate
            assert response.attributes["XOR-MAPPED-ADDRESS"] == (local.host, local.port)
            assert "FINGERPRINT" not in response.attributes
            assert "SOFTWARE" not in response.attributes
        finally:
            await protocol.close()

    asyncio.run(main())


def test_transaction_udp_with_fingerprint(turnpike):
    """RFC 8489 §14.7: a request with FINGERPRINT gets a response with a FINGERPRINT that aioice
    verifies (aioice's parser rejects a wrong value, so the transaction would time out)."""
    server = turnpike()

    async def main():
        protocol, _ = await _udp_protocol()
        try:
            request = binding()
            request.add_fingerprint()
            response, _ = await protocol.request(request, server.udp, retransmissions=2)
            assert "FINGERPRINT" in response.attributes
            local = protocol.local_candidate
            assert response.attributes["XOR-MAPPED-ADDRESS"] == (local.host, local.port)
        finally:
            await protocol.close()

    asyncio.run(main())


def test_many_concurrent_clients_udp(turnpike):
    """RFC 8489 §6.3.1: each of many concurrent clients gets its own address back."""
    server = turnpike()

    async def one():
        protocol, _ = await _udp_protocol()
        try:
            response, _ = await protocol.request(binding(), server.udp)
            local = protocol.local_candidate
            assert response.attributes["XOR-MAPPED-ADDRESS"] == (local.host, local.port)
        finally:
            await protocol.close()

    async def main():
        await asyncio.gather(*(one() for _ in range(32)))

    asyncio.run(main())


def test_change_request_with_alternate(turnpike):
    """RFC 5780 §6.1: with CHANGE-REQUEST(change IP, change port) the response comes from Ca:Cp,
    with RESPONSE-ORIGIN = Ca:Cp, OTHER-ADDRESS = Ca:Cp and both MAPPED-ADDRESS and
    XOR-MAPPED-ADDRESS."""
    server = turnpike(alternate=True)
    other = (server.alt_ip, server.alt_port)

    async def main():
        protocol, _ = await _udp_protocol()
        try:
            request = binding()
            request.attributes["CHANGE-REQUEST"] = 0x06
            response, addr = await protocol.request(request, server.udp)
            local = protocol.local_candidate
            assert addr == other
            assert response.attributes["RESPONSE-ORIGIN"] == other
            assert response.attributes["OTHER-ADDRESS"] == other
            assert response.attributes["XOR-MAPPED-ADDRESS"] == (local.host, local.port)
            assert response.attributes["MAPPED-ADDRESS"] == (local.host, local.port)
        finally:
            await protocol.close()

    asyncio.run(main())


def test_change_request_without_alternate_fails_420(turnpike):
    """RFC 5780 §6: without a second address the server "MUST respond with a 420 (Unknown
    Attribute) to any Request with a CHANGE-REQUEST attribute"; aioice reports a failed
    transaction."""
    server = turnpike()

    async def main():
        protocol, _ = await _udp_protocol()
        try:
            request = binding()
            request.attributes["CHANGE-REQUEST"] = 0x06
            with pytest.raises(stun.TransactionFailed) as failed:
                await protocol.request(request, server.udp)
            assert failed.value.response.error_code == 420
        finally:
            await protocol.close()

    asyncio.run(main())


async def _tcp_binding(addr, ssl_context=None):
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: TurnClientTcpProtocol(addr, username=None, password=None, lifetime=600, channel_refresh_time=500),
        host=addr[0],
        port=addr[1],
        ssl=ssl_context,
        server_hostname="localhost" if ssl_context else None,
    )
    try:
        response, _ = await protocol.request(binding())
        return response, transport.get_extra_info("sockname")[:2]
    finally:
        transport.close()


def test_transaction_tcp(turnpike):
    """RFC 8489 §6.2.2 / §6.3.1.1: over TCP the XOR-MAPPED-ADDRESS is the client's TCP source
    address; aioice frames STUN on the stream by the message length."""
    server = turnpike()
    response, local = asyncio.run(_tcp_binding(server.tcp))
    assert response.message_class == stun.Class.RESPONSE
    assert response.attributes["XOR-MAPPED-ADDRESS"] == local


def test_streams_tcp_parse_message(turnpike):
    """RFC 8489 §6.2.2: two requests written back to back on one connection, responses read with
    asyncio streams and decoded by aioice.stun.parse_message."""
    server = turnpike()

    async def main():
        reader, writer = await asyncio.open_connection(*server.tcp)
        try:
            local = writer.get_extra_info("sockname")[:2]
            requests = [binding(), binding()]
            writer.write(b"".join(bytes(r) for r in requests))
            await writer.drain()
            seen = set()
            for _ in requests:
                header = await asyncio.wait_for(reader.readexactly(20), 5)
                body = await asyncio.wait_for(reader.readexactly(int.from_bytes(header[2:4], "big")), 5)
                response = stun.parse_message(header + body)
                assert response.message_class == stun.Class.RESPONSE
                assert response.attributes["XOR-MAPPED-ADDRESS"] == local
                seen.add(response.transaction_id)
            assert seen == {r.transaction_id for r in requests}
        finally:
            writer.close()

    asyncio.run(main())


def test_transaction_tls(turnpike, tls_cert):
    """RFC 8489 §6.2.3: STUN over TLS-over-TCP with a verified certificate."""
    server = turnpike(tls=True)
    ctx = ssl.create_default_context(cafile=str(tls_cert[0]))
    response, local = asyncio.run(_tcp_binding(server.tls, ctx))
    assert response.message_class == stun.Class.RESPONSE
    assert response.attributes["XOR-MAPPED-ADDRESS"] == local
