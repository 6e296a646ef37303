"""A small, independent STUN codec for hand-built test packets (RFC 8489, RFC 5780, RFC 3489).

It deliberately shares no code with Turnpike: it builds exactly the bytes a test asks for (including
broken ones) and parses responses strictly, so a test can assert on every byte the server sent.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442
MAGIC_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
FINGERPRINT_XOR = 0x5354554E
HEADER_LEN = 20

# Methods (RFC 8489 §18.2).
BINDING = 0x001
ALLOCATE = 0x003

# Classes (RFC 8489 §5), as the two class bits C1 C0.
REQUEST = 0b00
INDICATION = 0b01
SUCCESS = 0b10
ERROR = 0b11

# Attribute types.
MAPPED_ADDRESS = 0x0001
RESPONSE_ADDRESS = 0x0002  # RFC 3489
CHANGE_REQUEST = 0x0003  # RFC 5780 §7.2
SOURCE_ADDRESS = 0x0004  # RFC 3489 §11.2.5
CHANGED_ADDRESS = 0x0005  # RFC 3489 §11.2.3
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026  # RFC 5780 §7.6
RESPONSE_PORT = 0x0027  # RFC 5780 §7.5
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B  # RFC 5780 §7.3
OTHER_ADDRESS = 0x802C  # RFC 5780 §7.4

CHANGE_IP = 0x04
CHANGE_PORT = 0x02

ATTR_NAMES = {
    MAPPED_ADDRESS: "MAPPED-ADDRESS",
    RESPONSE_ADDRESS: "RESPONSE-ADDRESS",
    CHANGE_REQUEST: "CHANGE-REQUEST",
    SOURCE_ADDRESS: "SOURCE-ADDRESS",
    CHANGED_ADDRESS: "CHANGED-ADDRESS",
    USERNAME: "USERNAME",
    MESSAGE_INTEGRITY: "MESSAGE-INTEGRITY",
    ERROR_CODE: "ERROR-CODE",
    UNKNOWN_ATTRIBUTES: "UNKNOWN-ATTRIBUTES",
    XOR_MAPPED_ADDRESS: "XOR-MAPPED-ADDRESS",
    PADDING: "PADDING",
    RESPONSE_PORT: "RESPONSE-PORT",
    SOFTWARE: "SOFTWARE",
    FINGERPRINT: "FINGERPRINT",
    RESPONSE_ORIGIN: "RESPONSE-ORIGIN",
    OTHER_ADDRESS: "OTHER-ADDRESS",
}

Addr = tuple[str, int]


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def message_type(method: int, cls: int) -> int:
    """The 14-bit message type with the class bits interleaved into the method (RFC 8489 §5)."""
    return (
        ((method & 0x0F80) << 2)
        | ((method & 0x0070) << 1)
        | (method & 0x000F)
        | ((cls & 0b10) << 7)
        | ((cls & 0b01) << 4)
    )


def split_type(msg_type: int) -> tuple[int, int]:
    """(method, class) of a message type (RFC 8489 §5)."""
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cls = ((msg_type >> 7) & 0b10) | ((msg_type >> 4) & 0b01)
    return method, cls


def new_transaction_id() -> bytes:
    return os.urandom(12)


def pad4(n: int) -> int:
    return (4 - n % 4) % 4


def attr(attr_type: int, value: bytes) -> bytes:
    """One TLV attribute, zero-padded to a multiple of 4 bytes (RFC 8489 §14)."""
    return struct.pack("!HH", attr_type, len(value)) + value + b"\x00" * pad4(len(value))


def encode_address(addr: Addr) -> bytes:
    """MAPPED-ADDRESS style value (RFC 8489 §14.1)."""
    ip = ipaddress.ip_address(addr[0])
    family = 0x01 if ip.version == 4 else 0x02
    return struct.pack("!BBH", 0, family, addr[1]) + ip.packed


def encode_xor_address(addr: Addr, transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS style value (RFC 8489 §14.2)."""
    ip = ipaddress.ip_address(addr[0])
    family = 0x01 if ip.version == 4 else 0x02
    key = MAGIC_COOKIE_BYTES + transaction_id
    xip = bytes(a ^ b for a, b in zip(ip.packed, key))
    return struct.pack("!BBH", 0, family, addr[1] ^ (MAGIC_COOKIE >> 16)) + xip


def change_request(change_ip: bool, change_port: bool) -> bytes:
    flags = (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0)
    return attr(CHANGE_REQUEST, struct.pack("!I", flags))


def response_port(port: int) -> bytes:
    return attr(RESPONSE_PORT, struct.pack("!HH", port, 0))


def fingerprint_value(data_before: bytes) -> int:
    """CRC-32 of the message up to FINGERPRINT, XORed with 0x5354554E (RFC 8489 §14.7)."""
    return (zlib.crc32(data_before) & 0xFFFFFFFF) ^ FINGERPRINT_XOR


def build(
    method: int = BINDING,
    cls: int = REQUEST,
    attrs: bytes = b"",
    transaction_id: bytes | None = None,
    cookie: bytes = MAGIC_COOKIE_BYTES,
    fingerprint: bool = False,
    bad_fingerprint: bool = False,
    length: int | None = None,
    raw_type: int | None = None,
) -> bytes:
    """A STUN message; `length` overrides the header's length field (to build broken packets).

    With `fingerprint`, a FINGERPRINT attribute is appended with the length field covering it
    (RFC 8489 §14.7); `bad_fingerprint` flips its value.
    """
    tid = transaction_id if transaction_id is not None else new_transaction_id()
    assert len(cookie) + len(tid) == 16, "cookie + transaction id must be 16 bytes"
    mtype = raw_type if raw_type is not None else message_type(method, cls)
    body = attrs
    if fingerprint:
        header = struct.pack("!HH", mtype, len(body) + 8) + cookie + tid
        value = fingerprint_value(header + body)
        if bad_fingerprint:
            value ^= 0x00000001
        body += attr(FINGERPRINT, struct.pack("!I", value))
    hdr_len = len(body) if length is None else length
    return struct.pack("!HH", mtype, hdr_len) + cookie + tid + body


def binding_request(attrs: bytes = b"", **kw) -> bytes:
    return build(BINDING, REQUEST, attrs, **kw)


def classic_binding_request(attrs: bytes = b"", transaction_id: bytes | None = None) -> bytes:
    """An RFC 3489 Binding request: a 128-bit transaction id and no magic cookie (RFC 3489 §11.1)."""
    tid = transaction_id if transaction_id is not None else os.urandom(16)
    if tid[:4] == MAGIC_COOKIE_BYTES:  # vanishingly unlikely; keep it an RFC 3489 request
        tid = b"\x00" + tid[1:]
    return build(BINDING, REQUEST, attrs, transaction_id=tid[4:], cookie=tid[:4])


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class StunParseError(ValueError):
    pass


@dataclass
class Message:
    raw: bytes
    msg_type: int
    length: int
    cookie: bytes
    transaction_id: bytes
    attrs: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def method(self) -> int:
        return split_type(self.msg_type)[0]

    @property
    def cls(self) -> int:
        return split_type(self.msg_type)[1]

    @property
    def full_transaction_id(self) -> bytes:
        """The 16 bytes an RFC 3489 agent calls the transaction id."""
        return self.cookie + self.transaction_id

    def types(self) -> list[int]:
        return [t for t, _ in self.attrs]

    def names(self) -> list[str]:
        return [ATTR_NAMES.get(t, f"0x{t:04x}") for t in self.types()]

    def has(self, attr_type: int) -> bool:
        return any(t == attr_type for t, _ in self.attrs)

    def get(self, attr_type: int) -> bytes:
        for t, v in self.attrs:
            if t == attr_type:
                return v
        raise KeyError(f"{ATTR_NAMES.get(attr_type, hex(attr_type))} not in {self.names()}")

    def address(self, attr_type: int) -> Addr:
        return decode_address(self.get(attr_type))

    def xor_address(self, attr_type: int = XOR_MAPPED_ADDRESS) -> Addr:
        return decode_xor_address(self.get(attr_type), self.transaction_id)

    def error(self) -> tuple[int, str]:
        """(code, reason) of ERROR-CODE (RFC 8489 §14.8)."""
        v = self.get(ERROR_CODE)
        if len(v) < 4:
            raise StunParseError(f"ERROR-CODE too short: {v!r}")
        code = (v[2] & 0x07) * 100 + v[3]
        return code, v[4:].decode("utf-8")

    def unknown_attributes(self) -> list[int]:
        """The 16-bit types listed in UNKNOWN-ATTRIBUTES (RFC 8489 §14.13)."""
        v = self.get(UNKNOWN_ATTRIBUTES)
        if len(v) % 2:
            raise StunParseError(f"UNKNOWN-ATTRIBUTES has odd length {len(v)}")
        return [struct.unpack("!H", v[i : i + 2])[0] for i in range(0, len(v), 2)]

    def __repr__(self) -> str:
        method, cls = split_type(self.msg_type)
        return (
            f"Message(type=0x{self.msg_type:04x} method=0x{method:03x} class={cls} len={self.length} "
            f"tid={self.transaction_id.hex()} attrs={self.names()})"
        )


def decode_address(v: bytes) -> Addr:
    if len(v) < 4:
        raise StunParseError(f"address attribute too short: {len(v)}")
    _, family, port = struct.unpack("!BBH", v[:4])
    if family == 0x01 and len(v) == 8:
        return str(ipaddress.IPv4Address(v[4:8])), port
    if family == 0x02 and len(v) == 20:
        return str(ipaddress.IPv6Address(v[4:20])), port
    raise StunParseError(f"bad address attribute family={family} len={len(v)}")


def decode_xor_address(v: bytes, transaction_id: bytes) -> Addr:
    if len(v) < 4:
        raise StunParseError(f"xor address attribute too short: {len(v)}")
    _, family, xport = struct.unpack("!BBH", v[:4])
    key = MAGIC_COOKIE_BYTES + transaction_id
    ip = bytes(a ^ b for a, b in zip(v[4:], key))
    return decode_address(struct.pack("!BBH", 0, family, xport ^ (MAGIC_COOKIE >> 16)) + ip)


def parse(data: bytes) -> Message:
    """Strictly parse one whole STUN message (RFC 8489 §5, §14)."""
    if len(data) < HEADER_LEN:
        raise StunParseError(f"{len(data)} bytes is shorter than a STUN header")
    msg_type, length = struct.unpack("!HH", data[:4])
    if msg_type & 0xC000:
        raise StunParseError("first two bits are not zero")
    if length % 4:
        raise StunParseError(f"length {length} is not a multiple of 4")
    if HEADER_LEN + length != len(data):
        raise StunParseError(f"length field {length} but {len(data) - HEADER_LEN} body bytes")
    msg = Message(data, msg_type, length, data[4:8], data[8:20])
    pos = HEADER_LEN
    while pos < len(data):
        if pos + 4 > len(data):
            raise StunParseError("truncated attribute header")
        t, n = struct.unpack("!HH", data[pos : pos + 4])
        end = pos + 4 + n
        if end > len(data):
            raise StunParseError(f"attribute 0x{t:04x} overruns the message")
        msg.attrs.append((t, data[pos + 4 : end]))
        pos = end + pad4(n)
    if pos != len(data):
        raise StunParseError("attribute padding overruns the message")
    return msg


def check_fingerprint(msg: Message) -> None:
    """Assert FINGERPRINT is the last attribute and has the right value (RFC 8489 §14.7)."""
    assert msg.types() and msg.types()[-1] == FINGERPRINT, f"FINGERPRINT not last: {msg.names()}"
    value = struct.unpack("!I", msg.get(FINGERPRINT))[0]
    assert value == fingerprint_value(msg.raw[:-8]), "FINGERPRINT value is wrong"


# --------------------------------------------------------------------------------------------
# Sockets
# --------------------------------------------------------------------------------------------


def udp_socket(ip: str = "127.0.0.1", port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    return s


def recv_datagrams(sock: socket.socket, duration: float, bufsize: int = 65535) -> list[tuple[bytes, Addr]]:
    """Everything that arrives on `sock` within `duration` seconds."""
    out = []
    deadline = time.monotonic() + duration
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        r, _, _ = select.select([sock], [], [], left)
        if r:
            data, src = sock.recvfrom(bufsize)
            out.append((data, src))


def recv_response(
    sock: socket.socket, transaction_id: bytes, timeout: float = 2.0
) -> tuple[Message, Addr, list[tuple[bytes, Addr]]]:
    """Wait for the response whose transaction id matches; also return anything else that came."""
    others = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"no response with transaction id {transaction_id.hex()} within {timeout}s "
                f"(other datagrams: {others!r})"
            )
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        data, src = sock.recvfrom(65535)
        try:
            msg = parse(data)
        except StunParseError:
            others.append((data, src))
            continue
        if msg.transaction_id == transaction_id[-12:] and (
            len(transaction_id) == 12 or msg.cookie == transaction_id[:4]
        ):
            return msg, src, others
        others.append((data, src))


def udp_transact(
    server: Addr, request: bytes, sock: socket.socket | None = None, timeout: float = 2.0, retries: int = 2
) -> tuple[Message, Addr]:
    """Send `request` over UDP and return (response, source); retransmits on loss (RFC 8489 §6.2.1)."""
    own = sock is None
    s = sock or udp_socket()
    try:
        tid = request[4:20] if request[4:8] != MAGIC_COOKIE_BYTES else request[8:20]
        last: Exception | None = None
        for _ in range(retries + 1):
            s.sendto(request, server)
            try:
                msg, src, _ = recv_response(s, tid, timeout)
                return msg, src
            except TimeoutError as e:
                last = e
        raise TimeoutError(f"no STUN response from {server}: {last}")
    finally:
        if own:
            s.close()


def recv_exact(sock: socket.socket, n: int, timeout: float = 3.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_stream_message(sock: socket.socket, timeout: float = 3.0) -> Message:
    """Read one STUN message from a stream: header, then the body its length announces (RFC 8489 §6.2.2)."""
    header = recv_exact(sock, HEADER_LEN, timeout)
    (length,) = struct.unpack("!H", header[2:4])
    body = recv_exact(sock, length, timeout) if length else b""
    return parse(header + body)


# --------------------------------------------------------------------------------------------
# Long-term credentials: MESSAGE-INTEGRITY (RFC 8489 §9.2.2, §14.5)
# --------------------------------------------------------------------------------------------

MESSAGE_INTEGRITY_LEN = 20  # HMAC-SHA1


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """key = MD5(username ":" realm ":" password) (RFC 8489 §9.2.2, MD5 algorithm; the test
    credentials are ASCII, so OpaqueString processing leaves them unchanged)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode("utf-8")).digest()


def with_integrity(message: bytes, key: bytes, fingerprint: bool = False, bad: bool = False) -> bytes:
    """`message` (a whole STUN message without MESSAGE-INTEGRITY or FINGERPRINT) with
    MESSAGE-INTEGRITY appended: HMAC-SHA1 over the header, with a length field that covers the
    MESSAGE-INTEGRITY attribute, and every attribute before it (RFC 8489 §14.5). With
    `fingerprint`, FINGERPRINT follows (§14.7); `bad` flips one bit of the HMAC."""
    body_len = len(message) - HEADER_LEN
    header = message[:2] + struct.pack("!H", body_len + 4 + MESSAGE_INTEGRITY_LEN) + message[4:HEADER_LEN]
    mac = bytearray(hmac.new(key, header + message[HEADER_LEN:], hashlib.sha1).digest())
    if bad:
        mac[0] ^= 0x01
    out = header + message[HEADER_LEN:] + attr(MESSAGE_INTEGRITY, bytes(mac))
    if fingerprint:
        out = out[:2] + struct.pack("!H", len(out) - HEADER_LEN + 8) + out[4:]
        out += attr(FINGERPRINT, struct.pack("!I", fingerprint_value(out)))
    return out


def attribute_offsets(msg: Message) -> list[tuple[int, int]]:
    """(type, offset of the attribute header in msg.raw) for every attribute, in order."""
    out = []
    pos = HEADER_LEN
    for t, v in msg.attrs:
        out.append((t, pos))
        pos += 4 + len(v) + pad4(len(v))
    return out


def integrity_valid(msg: Message, key: bytes) -> bool:
    """Whether msg's MESSAGE-INTEGRITY is the HMAC-SHA1 with `key` of what precedes it, with the
    header length adjusted to end right after MESSAGE-INTEGRITY (RFC 8489 §14.5)."""
    for t, offset in attribute_offsets(msg):
        if t == MESSAGE_INTEGRITY:
            value = msg.raw[offset + 4 : offset + 4 + MESSAGE_INTEGRITY_LEN]
            covered = offset - HEADER_LEN + 4 + MESSAGE_INTEGRITY_LEN
            header = msg.raw[:2] + struct.pack("!H", covered) + msg.raw[4:HEADER_LEN]
            want = hmac.new(key, header + msg.raw[HEADER_LEN:offset], hashlib.sha1).digest()
            return hmac.compare_digest(value, want)
    return False


def check_integrity(msg: Message, key: bytes) -> None:
    """Assert `msg` carries a MESSAGE-INTEGRITY that verifies with `key` and that only
    FINGERPRINT follows it (RFC 8489 §14.5: later attributes are ignored, so none may matter)."""
    types = msg.types()
    assert MESSAGE_INTEGRITY in types, f"no MESSAGE-INTEGRITY in {msg!r}"
    after = types[types.index(MESSAGE_INTEGRITY) + 1 :]
    assert after in ([], [FINGERPRINT]), f"attributes after MESSAGE-INTEGRITY: {msg.names()}"
    assert integrity_valid(msg, key), f"MESSAGE-INTEGRITY does not verify with the long-term key: {msg!r}"
