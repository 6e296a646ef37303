"""A small, independent TURN client for hand-built test packets (RFC 8656, RFC 8489 §9.2).

Built on stunraw (which shares no code with Turnpike). It speaks UDP, TCP and TLS, runs the
long-term credential dance (401 challenge -> REALM/NONCE -> request with MESSAGE-INTEGRITY), and
keeps whatever arrives that is not the awaited response (Data indications, ChannelData) in an
inbox that tests read with `recv_relayed`. Every step is explicit so a test can forge what it
needs: another user's credentials, a nonce from another server, a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import select
import socket
import ssl
import struct
import time
from collections import deque
from dataclasses import dataclass

import stunraw
from stunraw import Addr, Message, attr

# Methods (RFC 8656 §17).
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# Attributes (RFC 8656 §18, RFC 8489 §18.3).
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
RESERVATION_TOKEN = 0x0022

UDP_PROTO = 17
TCP_PROTO = 6
FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02

stunraw.ATTR_NAMES.update(
    {
        CHANNEL_NUMBER: "CHANNEL-NUMBER",
        LIFETIME: "LIFETIME",
        XOR_PEER_ADDRESS: "XOR-PEER-ADDRESS",
        DATA_ATTR: "DATA",
        REALM: "REALM",
        NONCE: "NONCE",
        XOR_RELAYED_ADDRESS: "XOR-RELAYED-ADDRESS",
        REQUESTED_ADDRESS_FAMILY: "REQUESTED-ADDRESS-FAMILY",
        EVEN_PORT: "EVEN-PORT",
        REQUESTED_TRANSPORT: "REQUESTED-TRANSPORT",
        DONT_FRAGMENT: "DONT-FRAGMENT",
        RESERVATION_TOKEN: "RESERVATION-TOKEN",
    }
)


# --------------------------------------------------------------------------------------------
# Attribute and message builders
# --------------------------------------------------------------------------------------------


def requested_transport(proto: int = UDP_PROTO) -> bytes:
    """REQUESTED-TRANSPORT: protocol number then 3 RFFU bytes (RFC 8656 §18.7)."""
    return attr(REQUESTED_TRANSPORT, struct.pack("!B3x", proto))


def requested_address_family(family: int) -> bytes:
    return attr(REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", family))


def lifetime(seconds: int) -> bytes:
    return attr(LIFETIME, struct.pack("!I", seconds))


def channel_number(number: int) -> bytes:
    return attr(CHANNEL_NUMBER, struct.pack("!HH", number, 0))


def xor_peer_address(peer: Addr, transaction_id: bytes) -> bytes:
    return attr(XOR_PEER_ADDRESS, stunraw.encode_xor_address(peer, transaction_id))


def send_indication(peer: Addr, data: bytes) -> bytes:
    """A Send indication (RFC 8656 §11.1): no authentication, XOR-PEER-ADDRESS and DATA."""
    tid = stunraw.new_transaction_id()
    return stunraw.build(
        SEND, stunraw.INDICATION, xor_peer_address(peer, tid) + attr(DATA_ATTR, data), transaction_id=tid
    )


def channel_data(number: int, data: bytes, pad: bool = False) -> bytes:
    """A ChannelData message (RFC 8656 §12.4); `pad` rounds it up to 4 bytes as TCP/TLS need."""
    out = struct.pack("!HH", number, len(data)) + data
    if pad:
        out += b"\x00" * stunraw.pad4(len(data))
    return out


def is_channel_data(data: bytes) -> bool:
    return len(data) >= 4 and data[0] & 0xC0 == 0x40  # first two bits 0b01 (RFC 8656 §12.4)


def parse_channel_data(data: bytes) -> tuple[int, bytes]:
    """(channel number, application data) of a ChannelData message (padding ignored)."""
    number, length = struct.unpack("!HH", data[:4])
    assert len(data) >= 4 + length, f"ChannelData length {length} but {len(data) - 4} bytes: {data!r}"
    return number, data[4 : 4 + length]


def rest_credentials(secret: str, user: str, expiry: int) -> tuple[str, str]:
    """TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2): username
    "EXPIRY:USER", password base64(HMAC-SHA1(secret, username))."""
    username = f"{expiry}:{user}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


@dataclass
class Relayed:
    """One packet the server relayed to the client: a Data indication or a ChannelData message."""

    kind: str  # "data-indication" | "channel-data"
    peer: Addr | None  # XOR-PEER-ADDRESS of a Data indication
    channel: int | None  # channel number of a ChannelData message
    data: bytes
    raw: bytes


class TurnClient:
    """One client 5-tuple: a UDP socket, or a TCP / TLS connection, to the server.

    `username`/`password` are the long-term credentials; `realm`/`nonce` are learned from the
    server's 401 (or set by the test, to forge a request).
    """

    def __init__(
        self,
        server: Addr,
        transport: str = "udp",
        username: str | None = None,
        password: str | None = None,
        local_ip: str = "127.0.0.1",
    ) -> None:
        assert transport in ("udp", "tcp", "tls"), transport
        self.server = server
        self.transport = transport
        self.username = username
        self.password = password
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self.inbox: deque[bytes] = deque()
        self._buf = b""
        if transport == "udp":
            self.sock = stunraw.udp_socket(local_ip)
        else:
            raw = socket.create_connection(server, timeout=5, source_address=(local_ip, 0))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport == "tls":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw)
            self.sock = raw
        self.sock.setblocking(True)

    # Context manager / lifecycle -------------------------------------------------------------

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TurnClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def local(self) -> Addr:
        return self.sock.getsockname()[:2]

    @property
    def key(self) -> bytes:
        assert self.username is not None and self.password is not None and self.realm is not None
        return stunraw.long_term_key(self.username, self.realm, self.password)

    # Raw packets -----------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def _recv_packet(self, timeout: float) -> bytes | None:
        """One datagram, or one framed STUN / ChannelData message from the stream; None on
        timeout. Raises ConnectionError when the stream closes."""
        deadline = time.monotonic() + timeout
        if self.transport == "udp":
            r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not r:
                return None
            data, _ = self.sock.recvfrom(65535)
            return data
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                if left <= 0:
                    return None
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return None
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError(f"server closed the connection ({len(self._buf)} bytes unread)")
            self._buf += chunk

    def _take_frame(self) -> bytes | None:
        buf = self._buf
        if len(buf) < 4:
            return None
        if is_channel_data(buf):
            (length,) = struct.unpack("!H", buf[2:4])
            total = 4 + length + stunraw.pad4(length)  # padded over streams (RFC 8656 §12.5)
        else:
            (length,) = struct.unpack("!H", buf[2:4])
            total = stunraw.HEADER_LEN + length
        if len(buf) < total:
            return None
        self._buf = buf[total:]
        return buf[:total]

    def recv_any(self, timeout: float = 2.0) -> bytes | None:
        """The next packet that is not a transaction's response (inbox first)."""
        if self.inbox:
            return self.inbox.popleft()
        return self._recv_packet(timeout)

    def recv_relayed(self, timeout: float = 2.0) -> Relayed | None:
        """The next Data indication or ChannelData message, None if none comes in `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            pkt = self.recv_any(max(0.0, left))
            if pkt is None:
                return None
            if is_channel_data(pkt):
                number, data = parse_channel_data(pkt)
                return Relayed("channel-data", None, number, data, pkt)
            msg = stunraw.parse(pkt)
            if msg.method == DATA and msg.cls == stunraw.INDICATION:
                return Relayed("data-indication", msg.xor_address(XOR_PEER_ADDRESS), None, msg.get(DATA_ATTR), pkt)
            # Anything else (a late retransmitted response) is not relayed data: skip it.

    # Transactions ----------------------------------------------------------------------------

    def transact(self, request: bytes, timeout: float = 2.0, retries: int = 2) -> Message:
        """Send `request` and return the response with its transaction id; over UDP it is
        retransmitted on timeout (RFC 8489 §6.2.1), over streams never (§6.2.2)."""
        tid = request[8:20]
        attempts = retries + 1 if self.transport == "udp" else 1
        wait = timeout if self.transport == "udp" else timeout * (retries + 1)
        for _ in range(attempts):
            self.send_raw(request)
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                pkt = self._recv_packet(left)
                if pkt is None:
                    break
                if not is_channel_data(pkt):
                    try:
                        msg = stunraw.parse(pkt)
                    except stunraw.StunParseError:
                        self.inbox.append(pkt)
                        continue
                    if msg.transaction_id == tid and msg.cls in (stunraw.SUCCESS, stunraw.ERROR):
                        return msg
                self.inbox.append(pkt)
        raise TimeoutError(f"no response to {stunraw.parse(request)!r} from {self.server} over {self.transport}")

    def build(
        self,
        method: int,
        attrs: bytes = b"",
        auth: bool = True,
        transaction_id: bytes | None = None,
        fingerprint: bool = False,
        bad_integrity: bool = False,
    ) -> bytes:
        """A request with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY when `auth` (and a
        realm and nonce are known), else unauthenticated."""
        tid = transaction_id if transaction_id is not None else stunraw.new_transaction_id()
        if callable(attrs):
            attrs = attrs(tid)
        if not auth or self.nonce is None:
            return stunraw.build(method, stunraw.REQUEST, attrs, transaction_id=tid, fingerprint=fingerprint)
        assert self.username is not None and self.realm is not None
        body = (
            attrs
            + attr(stunraw.USERNAME, self.username.encode())
            + attr(REALM, self.realm.encode())
            + attr(NONCE, self.nonce)
        )
        msg = stunraw.build(method, stunraw.REQUEST, body, transaction_id=tid)
        return stunraw.with_integrity(msg, self.key, fingerprint=fingerprint, bad=bad_integrity)

    def learn_challenge(self, response: Message) -> None:
        """Take REALM and NONCE from a 401 or 438 (RFC 8489 §9.2.5)."""
        if response.has(REALM):
            self.realm = response.get(REALM).decode()
        self.nonce = response.get(NONCE)

    def request_once(self, method: int, attrs=b"", auth: bool = True, **kw) -> Message:
        """One transaction with the current realm/nonce; success responses to authenticated
        requests must carry a MESSAGE-INTEGRITY that verifies with our key (RFC 8489 §9.2.4)."""
        authenticated = auth and self.nonce is not None
        response = self.transact(self.build(method, attrs, auth=auth, **kw))
        if authenticated and response.cls == stunraw.SUCCESS:
            stunraw.check_integrity(response, self.key)
        return response

    def request(self, method: int, attrs=b"", auth: bool = True) -> Message:
        """A request as a real client sends it: first without credentials when no nonce is
        known yet, then again after a 401 challenge, and once more after a 438 (stale nonce)."""
        if not auth:
            return self.request_once(method, attrs, auth=False)
        if self.nonce is None:
            first = self.request_once(method, attrs, auth=False)
            if not is_error(first, 401):
                return first
            assert first.has(REALM) and first.has(NONCE), f"401 without REALM/NONCE: {first!r}"
            self.learn_challenge(first)
        response = self.request_once(method, attrs)
        if is_error(response, 438):
            self.learn_challenge(response)
            response = self.request_once(method, attrs)
        return response

    # TURN operations -------------------------------------------------------------------------

    def allocate(self, extra: bytes = b"", transport: int = UDP_PROTO) -> Message:
        return self.request(ALLOCATE, requested_transport(transport) + extra)

    def allocate_ok(self, extra: bytes = b"") -> Addr:
        """Allocate and return XOR-RELAYED-ADDRESS; fails the test unless it succeeds."""
        response = self.allocate(extra)
        assert response.cls == stunraw.SUCCESS, f"Allocate failed: {describe(response)}"
        return response.xor_address(XOR_RELAYED_ADDRESS)

    def refresh(self, seconds: int | None = None) -> Message:
        return self.request(REFRESH, lifetime(seconds) if seconds is not None else b"")

    def create_permission(self, *peers: Addr) -> Message:
        return self.request(
            CREATE_PERMISSION, lambda tid: b"".join(xor_peer_address(p, tid) for p in peers)
        )

    def channel_bind(self, number: int, peer: Addr) -> Message:
        return self.request(CHANNEL_BIND, lambda tid: channel_number(number) + xor_peer_address(peer, tid))

    def send_to(self, peer: Addr, data: bytes) -> None:
        """A Send indication to `peer`."""
        self.send_raw(send_indication(peer, data))

    def send_channel(self, number: int, data: bytes) -> None:
        self.send_raw(channel_data(number, data, pad=self.transport != "udp"))


def is_error(msg: Message, code: int) -> bool:
    return msg.cls == stunraw.ERROR and msg.has(stunraw.ERROR_CODE) and msg.error()[0] == code


def describe(msg: Message) -> str:
    """A response for an assertion message: class, error code and reason, attributes."""
    if msg.cls == stunraw.ERROR and msg.has(stunraw.ERROR_CODE):
        code, reason = msg.error()
        return f"error {code} {reason!r} {msg!r}"
    return repr(msg)


def error_code(msg: Message) -> int | None:
    if msg.cls == stunraw.ERROR and msg.has(stunraw.ERROR_CODE):
        return msg.error()[0]
    return None
