"""Hand-built STUN packets against `turnpike serve`: exact responses, errors and silent drops.

Each test names the RFC text it checks. After every bad packet the server must still answer a valid
Binding request.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

import pytest

import stunraw as s
from stunraw import BINDING, ERROR, INDICATION, REQUEST, SUCCESS

DROP_WAIT = 0.3  # seconds to wait for a response that must not come


@pytest.fixture
def server(turnpike):
    return turnpike()


@pytest.fixture
def alt_server(turnpike):
    return turnpike(alternate=True)


def assert_dropped(dest, bad: bytes) -> None:
    """Send `bad`, then a valid Binding from the same socket: only the valid one may be answered.

    RFC 8489 §6.3: "If any errors are detected, the message is silently discarded."
    """
    with s.udp_socket() as sock:
        sock.sendto(bad, dest)
        time.sleep(0.1)
        good = s.binding_request()
        sock.sendto(good, dest)
        msg, _, others = s.recv_response(sock, good[8:20], timeout=3)
        others += s.recv_datagrams(sock, DROP_WAIT)
        assert others == [], f"server answered a packet it must drop: {others!r}"
        assert msg.cls == SUCCESS and msg.xor_address() == sock.getsockname()


def transact(dest, request: bytes, sock=None):
    msg, src = s.udp_transact(dest, request, sock=sock)
    return msg, src


# --------------------------------------------------------------------------------------------
# Well-formed Binding requests over UDP
# --------------------------------------------------------------------------------------------


def test_minimal_binding_response_is_exact(server):
    """RFC 8489 §6.3.1.1/§6.3.1.2/§14.2: a Binding success response from the receiving address that
    carries XOR-MAPPED-ADDRESS = the request's source. Nothing else is needed: no SOFTWARE unless
    configured, no FINGERPRINT unless the request had one, no RFC 5780 attributes without an
    alternate address (RFC 5780 §7.4), so an IPv4 response is exactly 20 + 12 = 32 bytes."""
    with s.udp_socket() as sock:
        req = s.binding_request()
        msg, src = transact(server.udp, req, sock)
        assert src == server.udp
        assert len(msg.raw) == 32, msg
        assert msg.msg_type == 0x0101
        assert msg.cookie == s.MAGIC_COOKIE_BYTES
        assert msg.transaction_id == req[8:20]
        assert msg.types() == [s.XOR_MAPPED_ADDRESS]
        assert msg.xor_address() == sock.getsockname()


def _ipv6_loopback_port() -> int:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u:
            u.bind(("::1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as t:
                t.bind(("::1", port))
            return port
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")


def test_ipv6_binding(turnpike):
    """RFC 8489 §14.2: for IPv6 the XOR-MAPPED-ADDRESS value is 20 bytes, the address XORed with
    the magic cookie followed by the transaction id; the response is 20 + 24 = 44 bytes."""
    port = _ipv6_loopback_port()
    server = turnpike(args=["--listen", f"[::1]:{port}"])
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        req = s.binding_request()
        msg, src = transact(("::1", port), req, sock)
        assert src[:2] == ("::1", port)
        assert len(msg.raw) == 44, msg
        assert msg.types() == [s.XOR_MAPPED_ADDRESS]
        assert msg.xor_address() == sock.getsockname()[:2]
    with socket.create_connection(("::1", port), timeout=3) as c:
        c.sendall(s.binding_request())
        assert s.recv_stream_message(c).xor_address() == c.getsockname()[:2]
    server.assert_answers_binding()


def test_retransmission_gets_same_answer(server):
    """RFC 8489 §6.3.1: Binding is idempotent; a retransmitted request (same transaction id) is
    answered again with the same mapped address."""
    with s.udp_socket() as sock:
        req = s.binding_request()
        first, _ = transact(server.udp, req, sock)
        second, _ = transact(server.udp, req, sock)
        assert first.raw == second.raw


def test_software_only_when_configured(turnpike):
    """RFC 8489 §14.14: SOFTWARE carries the configured text (`--software`); it is UTF-8 and fewer
    than 128 characters."""
    server = turnpike(software="turnpike-interop 1.0")
    with s.udp_socket() as sock:
        msg, _ = transact(server.udp, s.binding_request(), sock)
        assert msg.get(s.SOFTWARE).decode("utf-8") == "turnpike-interop 1.0"
        assert msg.xor_address() == sock.getsockname()


def test_fingerprint_in_response_when_request_has_one(server):
    """RFC 8489 §14.7: FINGERPRINT is the last attribute, its value is CRC-32 of the message up to
    it XOR 0x5354554E, and the header length covers it. The server adds it because the request
    carried one."""
    with s.udp_socket() as sock:
        req = s.binding_request(fingerprint=True)
        msg, _ = transact(server.udp, req, sock)
        assert msg.cls == SUCCESS
        s.check_fingerprint(msg)
        assert msg.xor_address() == sock.getsockname()


def test_bad_fingerprint_is_dropped(server):
    """RFC 8489 §6.3: "If the FINGERPRINT extension is being used, the agent checks that the
    FINGERPRINT attribute is present and contains the correct value. If any errors are detected,
    the message is silently discarded." """
    assert_dropped(server.udp, s.binding_request(fingerprint=True, bad_fingerprint=True))


def test_unknown_comprehension_optional_attribute_is_ignored(server):
    """RFC 8489 §6.3: "Unknown comprehension-optional attributes MUST be ignored by the agent."
    (0x8000-0xFFFF are comprehension-optional, §14.)"""
    with s.udp_socket() as sock:
        msg, _ = transact(server.udp, s.binding_request(s.attr(0x8123, b"\x01\x02\x03\x04")), sock)
        assert msg.cls == SUCCESS, msg
        assert msg.xor_address() == sock.getsockname()


@pytest.mark.parametrize(
    "unknown",
    [[0x0031], [0x7FFF], [0x0031, 0x0032]],
    ids=["0x0031", "0x7fff", "two-unknown"],
)
def test_unknown_comprehension_required_attribute_gets_420(server, unknown):
    """RFC 8489 §6.3.1: "If the request contains one or more unknown comprehension-required
    attributes, the server replies with an error response with an error code of 420 (Unknown
    Attribute) and includes an UNKNOWN-ATTRIBUTES attribute in the response that lists the unknown
    comprehension-required attributes." (§14.8, §14.13)"""
    attrs = b"".join(s.attr(t, b"\x00\x00\x00\x00") for t in unknown)
    req = s.binding_request(attrs)
    msg, src = transact(server.udp, req)
    assert src == server.udp
    assert msg.method == BINDING and msg.cls == ERROR, msg
    assert msg.transaction_id == req[8:20]
    code, reason = msg.error()
    assert code == 420, (code, reason)
    assert set(unknown) <= set(msg.unknown_attributes())
    server.assert_answers_binding()


def test_malformed_change_request_gets_400(alt_server):
    """RFC 8489 §14.8 (400 Bad Request: "The request was malformed") with RFC 5780 §7.2: the
    CHANGE-REQUEST value is 32 bits; a 2-byte value is malformed."""
    req = s.binding_request(s.attr(s.CHANGE_REQUEST, b"\x00\x06"))
    msg, _ = transact(alt_server.udp, req)
    assert msg.cls == ERROR, msg
    assert msg.error()[0] == 400
    alt_server.assert_answers_binding()


# --------------------------------------------------------------------------------------------
# Packets the server must drop silently (RFC 8489 §6.3)
# --------------------------------------------------------------------------------------------


def _valid() -> bytes:
    return s.binding_request()


DROPPED = {
    # RFC 8489 §5: the header is 20 bytes.
    "empty-datagram": lambda: b"",
    "truncated-header-19": lambda: _valid()[:19],
    "truncated-header-4": lambda: _valid()[:4],
    # RFC 8489 §6.3: "the message length is sensible".
    "length-longer-than-datagram": lambda: s.binding_request(length=8),
    "length-shorter-than-datagram": lambda: s.binding_request(s.attr(0x8123, b"abcd"), length=0),
    # RFC 8489 §5: "the last 2 bits of this field are always zero".
    "length-not-multiple-of-4": lambda: s.binding_request(b"\x80\x23", length=2),
    # RFC 8489 §5/§6.3: "the first two bits are 0".
    "first-bits-not-zero": lambda: bytes([_valid()[0] | 0xC0]) + _valid()[1:],
    "rtp-like": lambda: b"\x80\x00\x00\x01" + b"\x00" * 16,
    "channel-data-no-allocation": lambda: b"\x40\x00\x00\x04abcd",
    "text": lambda: b"this is not a STUN message, honestly!!",
    # RFC 8489 §6.3: the magic cookie must be right; without it only an RFC 3489 Binding request is
    # recognised (RFC 5389 §12.2), not another method.
    "non-binding-without-cookie": lambda: s.build(s.ALLOCATE, REQUEST, cookie=b"\x01\x02\x03\x04"),
    # RFC 8489 §6.3.2: an indication gets no response; §6.3: responses to no transaction are dropped.
    "binding-indication": lambda: s.build(BINDING, INDICATION),
    "binding-success-response": lambda: s.build(
        BINDING, SUCCESS, s.attr(s.XOR_MAPPED_ADDRESS, s.encode_xor_address(("127.0.0.1", 9), b"\x00" * 12)),
        transaction_id=b"\x00" * 12,
    ),
    "binding-error-response": lambda: s.build(BINDING, ERROR, s.attr(s.ERROR_CODE, b"\x00\x00\x04\x00Bad!")),
    # RFC 8489 §14.7 with §6.3.
    "bad-fingerprint": lambda: s.binding_request(fingerprint=True, bad_fingerprint=True),
}


@pytest.mark.parametrize("packet", list(DROPPED.values()), ids=list(DROPPED.keys()))
def test_bad_packet_is_dropped_and_server_keeps_answering(server, packet):
    """RFC 8489 §6.3: malformed messages, indications and unsolicited responses get no answer; the
    server keeps answering valid Binding requests afterwards."""
    assert_dropped(server.udp, packet())


def test_attribute_overrunning_message_gets_no_success(server):
    """RFC 8489 §14/§15: an attribute whose length runs past the end of the message cannot be
    parsed. The request is dropped or answered 400 (RFC 8489 §14.8); never a success response."""
    with s.udp_socket() as sock:
        req = s.binding_request(struct.pack("!HH", 0x8123, 8) + b"abcd")
        sock.sendto(req, server.udp)
        got = s.recv_datagrams(sock, DROP_WAIT)
        for data, _ in got:
            msg = s.parse(data)
            assert msg.cls == ERROR and msg.error()[0] == 400, msg
        assert len(got) <= 1
    server.assert_answers_binding()


def test_many_bad_packets_then_binding(server):
    """RFC 8489 §6.3: a burst of every bad packet above is dropped and the server still answers."""
    with s.udp_socket() as sock:
        for make in DROPPED.values():
            sock.sendto(make(), server.udp)
        good = s.binding_request()
        sock.sendto(good, server.udp)
        msg, _, others = s.recv_response(sock, good[8:20], timeout=3)
        others += s.recv_datagrams(sock, DROP_WAIT)
        assert others == []
        assert msg.xor_address() == sock.getsockname()


# --------------------------------------------------------------------------------------------
# RFC 3489 ("classic STUN") clients
# --------------------------------------------------------------------------------------------


def test_classic_binding_without_cookie(server):
    """RFC 5389 §12.2: a Binding request without the magic cookie comes from an RFC 3489 client;
    the server copies the cookie field and inserts MAPPED-ADDRESS "instead of an XOR-MAPPED-ADDRESS".
    RFC 3489 §11.2.5: SOURCE-ADDRESS is the address the response was sent from."""
    with s.udp_socket() as sock:
        req = s.classic_binding_request()
        msg, src = transact(server.udp, req, sock)
        assert msg.msg_type == 0x0101, msg
        assert msg.full_transaction_id == req[4:20]
        assert msg.address(s.MAPPED_ADDRESS) == sock.getsockname()
        assert not msg.has(s.XOR_MAPPED_ADDRESS), msg
        assert msg.address(s.SOURCE_ADDRESS) == src == server.udp


def test_classic_binding_with_alternate_has_changed_address(alt_server):
    """RFC 3489 §11.2.3: CHANGED-ADDRESS is the address that would answer a CHANGE-REQUEST for
    both IP and port: here 127.0.0.2:Q."""
    with s.udp_socket() as sock:
        msg, src = transact(alt_server.udp, s.classic_binding_request(), sock)
        assert msg.address(s.MAPPED_ADDRESS) == sock.getsockname()
        assert msg.address(s.SOURCE_ADDRESS) == src == alt_server.udp
        assert msg.address(s.CHANGED_ADDRESS) == alt_server.other(alt_server.udp)


def test_classic_change_request_is_honoured(alt_server):
    """RFC 3489 §11.2.4 / §10.1 (test II): with "change IP" and "change port" the response comes
    from the other address and port, and SOURCE-ADDRESS says so."""
    with s.udp_socket() as sock:
        req = s.classic_binding_request(s.change_request(True, True))
        msg, src = transact(alt_server.udp, req, sock)
        assert src == alt_server.other(alt_server.udp)
        assert msg.address(s.SOURCE_ADDRESS) == src
        assert msg.address(s.MAPPED_ADDRESS) == sock.getsockname()


# --------------------------------------------------------------------------------------------
# RFC 5780 behaviour discovery
# --------------------------------------------------------------------------------------------

FLAGS = {"none": (False, False), "change-ip": (True, False), "change-port": (False, True), "both": (True, True)}
DESTS = ["A1:P1", "A1:P2", "A2:P1", "A2:P2"]


@pytest.mark.parametrize("flags", list(FLAGS.keys()))
@pytest.mark.parametrize("dest", DESTS)
def test_rfc5780_table1(alt_server, dest, flags):
    """RFC 5780 §6.1, Table 1: the response's source is Da/Ca and Dp/Cp as the CHANGE-REQUEST flags
    say; RESPONSE-ORIGIN is that source; OTHER-ADDRESS is Ca:Cp whatever the flags; the response
    carries both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS ("The server MUST include both")."""
    change_ip, change_port = FLAGS[flags]
    da = alt_server.sockets()[DESTS.index(dest)]
    attrs = s.change_request(change_ip, change_port) if flags != "none" else b""
    with s.udp_socket() as sock:
        msg, src = transact(da, s.binding_request(attrs), sock)
        assert msg.cls == SUCCESS, msg
        assert src == alt_server.other(da, change_ip, change_port)
        assert msg.address(s.RESPONSE_ORIGIN) == src
        assert msg.address(s.OTHER_ADDRESS) == alt_server.other(da, True, True)
        assert msg.xor_address() == sock.getsockname()
        assert msg.address(s.MAPPED_ADDRESS) == sock.getsockname()


def test_response_port_is_honoured(alt_server):
    """RFC 5780 §7.5: "the Binding Response MUST be transmitted to the source IP address of the
    Binding Request and the port contained in RESPONSE-PORT"; XOR-MAPPED-ADDRESS still names the
    request's source."""
    with s.udp_socket() as a, s.udp_socket() as b:
        req = s.binding_request(s.response_port(b.getsockname()[1]))
        a.sendto(req, alt_server.udp)
        msg, src, others = s.recv_response(b, req[8:20], timeout=3)
        assert others == []
        assert src == alt_server.udp
        assert msg.cls == SUCCESS, msg
        assert msg.xor_address() == a.getsockname()
        assert s.recv_datagrams(a, DROP_WAIT) == [], "response also went to the source port"


def test_padding_is_honoured(alt_server):
    """RFC 5780 §6.1: "If the Request contained a PADDING attribute, PADDING MUST be included in
    the Binding Response." §7.6: PADDING is free-form and its length keeps the datagram within 64K;
    attributes are padded to multiples of 4 (RFC 8489 §14)."""
    with s.udp_socket() as sock:
        req = s.binding_request(s.attr(s.PADDING, b"\x00" * 1500))
        msg, _ = transact(alt_server.udp, req, sock)
        assert msg.cls == SUCCESS, msg
        pad = msg.get(s.PADDING)
        assert len(pad) > 0 and len(pad) % 4 == 0, len(pad)
        assert len(msg.raw) <= 65507
        assert msg.xor_address() == sock.getsockname()


def test_padding_with_response_port_gets_400(alt_server):
    """RFC 5780 §6.1: "If the Request also contains the RESPONSE-PORT attribute the server MUST
    return an error response of type 400." (§7.5: "The server MUST NOT process a request
    containing a RESPONSE-PORT and a PADDING attribute.")"""
    with s.udp_socket() as a, s.udp_socket() as b:
        req = s.binding_request(s.response_port(b.getsockname()[1]) + s.attr(s.PADDING, b"\x00" * 512))
        a.sendto(req, alt_server.udp)
        msg, _, _ = s.recv_response(a, req[8:20], timeout=3)
        assert msg.cls == ERROR, msg
        assert msg.error()[0] == 400
        assert s.recv_datagrams(b, DROP_WAIT) == []
    alt_server.assert_answers_binding()


def test_change_request_without_alternate_gets_420(server):
    """RFC 5780 §6: a server without a second address "MUST respond with a 420 (Unknown Attribute)
    to any Request with a CHANGE-REQUEST attribute" and (§7.4) sends no OTHER-ADDRESS."""
    req = s.binding_request(s.change_request(True, True))
    msg, src = transact(server.udp, req)
    assert src == server.udp
    assert msg.cls == ERROR, msg
    assert msg.error()[0] == 420
    assert s.CHANGE_REQUEST in msg.unknown_attributes()
    assert not msg.has(s.OTHER_ADDRESS)
    server.assert_answers_binding()


# --------------------------------------------------------------------------------------------
# TCP and TLS
# --------------------------------------------------------------------------------------------


def test_tcp_binding(server):
    """RFC 8489 §6.3.1.1: over TCP, XOR-MAPPED-ADDRESS is "the source IP address and source TCP
    port of the TCP connection as seen by the server"; §6.2.2: no extra framing."""
    with socket.create_connection(server.tcp, timeout=3) as c:
        req = s.binding_request()
        c.sendall(req)
        msg = s.recv_stream_message(c)
        assert msg.transaction_id == req[8:20]
        assert msg.cls == SUCCESS and len(msg.raw) == 32, msg
        assert msg.xor_address() == c.getsockname()


def test_tcp_two_requests_in_one_write(server):
    """RFC 8489 §6.2.2: "The client MAY send multiple transactions over a single TCP ... connection,
    and it MAY send another request before receiving a response to the previous request." Both are
    answered, possibly out of order (§6.3.1.2)."""
    with socket.create_connection(server.tcp, timeout=3) as c:
        r1, r2 = s.binding_request(), s.binding_request(fingerprint=True)
        c.sendall(r1 + r2)
        got = {m.transaction_id: m for m in (s.recv_stream_message(c), s.recv_stream_message(c))}
        assert set(got) == {r1[8:20], r2[8:20]}
        for m in got.values():
            assert m.xor_address() == c.getsockname()
        s.check_fingerprint(got[r2[8:20]])


def test_tcp_request_split_across_writes(server):
    """RFC 8489 §6.2.2: TCP is a byte stream; a request whose bytes arrive in two segments, with a
    pause between them, is still one request and gets one response."""
    with socket.create_connection(server.tcp, timeout=3) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = s.binding_request(s.attr(0x8123, b"split-me"))
        c.sendall(req[:11])
        time.sleep(0.3)
        c.sendall(req[11:])
        msg = s.recv_stream_message(c)
        assert msg.transaction_id == req[8:20]
        assert msg.xor_address() == c.getsockname()
        c.settimeout(DROP_WAIT)
        with pytest.raises((TimeoutError, socket.timeout)):
            c.recv(1)


def test_tcp_unknown_attribute_gets_420(server):
    """RFC 8489 §6.3.1 over TCP: 420 with UNKNOWN-ATTRIBUTES, on the same connection (§6.3.1.2)."""
    with socket.create_connection(server.tcp, timeout=3) as c:
        req = s.binding_request(s.attr(0x0031, b"\x00\x00\x00\x00"))
        c.sendall(req)
        msg = s.recv_stream_message(c)
        assert msg.cls == ERROR and msg.error()[0] == 420
        assert 0x0031 in msg.unknown_attributes()


def test_tcp_garbage_gets_no_stun_answer_and_server_survives(server):
    """RFC 8489 §6.3: non-STUN bytes get no STUN response; other connections keep working."""
    with socket.create_connection(server.tcp, timeout=3) as bad:
        bad.sendall(b"\xff" * 64)
        bad.settimeout(DROP_WAIT)
        try:
            data = bad.recv(4096)  # b"" (closed) is fine; a STUN answer is not
        except (TimeoutError, socket.timeout, ConnectionResetError):
            data = b""
        assert data == b""
    with socket.create_connection(server.tcp, timeout=3) as c:
        req = s.binding_request()
        c.sendall(req)
        assert s.recv_stream_message(c).xor_address() == c.getsockname()
    server.assert_answers_binding()


def test_tls_binding(turnpike, tls_cert):
    """RFC 8489 §6.2.3: STUN over TLS-over-TCP; the client verifies the server certificate, and the
    response carries the TCP source address as XOR-MAPPED-ADDRESS (§6.3.1.1)."""
    server = turnpike(tls=True)
    ctx = ssl.create_default_context(cafile=str(tls_cert[0]))
    with socket.create_connection(server.tls, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as c:
            req = s.binding_request()
            c.sendall(req)
            msg = s.recv_stream_message(c, timeout=5)
            assert msg.cls == SUCCESS, msg
            assert msg.transaction_id == req[8:20]
            assert msg.xor_address() == c.getsockname()
