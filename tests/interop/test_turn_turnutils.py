"""coturn's TURN client `turnutils_uclient` relaying to coturn's echo peer `turnutils_peer`
(Debian package `coturn`) through `turnpike serve`.

How the tools behave (read from their output and coturn's source):
- `turnutils_peer -L IP -p PORT` echoes every UDP datagram back to its sender, on PORT and PORT+1.
- `turnutils_uclient -e PEER_IP -r PEER_PORT -p SERVER_PORT SERVER_IP` first makes a "probe"
  allocation, then one allocation per client (`-m N`), installs permissions and sends `-n N`
  messages of `-l` bytes per client every `-z` ms to the peer through its relay, and counts the
  echoes that come back through the relay. It ends with
      start_mclient: tot_send_msgs=S, tot_recv_msgs=R
      Total lost packets L (x%), total send dropped D (y%)
  and exits non-zero at the first error response ("create permission error 403 (Forbidden)").
- `-s` sends with Send indications after CreatePermission (for the peer port and port + 1).
  Without `-s` it uses channels: it binds a channel to PEER_PORT + 1 twice (the second is a
  refresh), then a new one to PEER_PORT twice, picking each new channel number at random in
  0x4000..0x7FFF (the RFC 5766 range; RFC 8656 §12 narrowed it to 0x4000..0x4FFF), so the
  server must accept the RFC 5766 range (the default, --rfc5766-channel-numbers) for it to work.
  Without `-c` it makes a second (RTCP) allocation per client as well.
- `-t` is TCP to the server, `-t -S` TLS, `-S` alone DTLS over UDP (RFC 7350; it picks DTLS 1.0 or
  1.2 at random per connection and retries with another after a protocol_version alert, which is
  what Turnpike, DTLS 1.2 only, answers a DTLS 1.0 ClientHello with); `-u USER -w PASS` static credentials; `-u USER -W SECRET`
  TURN REST credentials ("EXPIRY:USER", base64(HMAC-SHA1(SECRET, username))); `-c` no RTCP
  allocation.
- Its allocations stay alive (600 s): every test has its own server with a relay port range of its
  own (200 free ports, `conftest.free_relay_range`), not the default 49152-65535 that other
  programs on the machine share (a full default range gave 508, issue #13).

Both tools run under `stdbuf -oL` (block-buffered when piped) and with timeouts.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess

import pytest

import stunraw

USER, PASSWORD = "alice", "secret"
REST_SECRET = "turnutils-rest-secret"
CLIENTS = 4
MESSAGES = 100  # per client
LENGTH = 180
INTERVAL_MS = 5  # per client: 4 clients x 200 packets/s each way
UCLIENT_TIMEOUT = 40

pytestmark = pytest.mark.timeout(90)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run scripts/install-test-deps (Debian package coturn)", pytrace=False)
    return path


def consecutive_free_ports(ip: str) -> int:
    """A UDP port P such that P and P + 1 are both free on `ip` (turnutils_peer binds both)."""
    for _ in range(100):
        with stunraw.udp_socket(ip) as first:
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            try:
                stunraw.udp_socket(ip, port + 1).close()
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free UDP ports")


class EchoPeer:
    """turnutils_peer on 127.0.0.1:PORT (and PORT+1)."""

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.ip, self.port = ip, consecutive_free_ports(ip)
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "-eL", tool("turnutils_peer"), "-L", ip, "-p", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        # It answers once it is bound: probe with a datagram until it echoes.
        with stunraw.udp_socket(ip) as probe:
            for _ in range(50):
                probe.sendto(b"ready?", (ip, self.port))
                if stunraw.recv_datagrams(probe, 0.1):
                    break
                assert self.proc.poll() is None, f"turnutils_peer exited with {self.proc.returncode}"
            else:
                pytest.fail("turnutils_peer did not start echoing")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def echo_peer():
    peer = EchoPeer()
    yield peer
    peer.stop()


def uclient(
    server_ip: str, server_port: int, peer: tuple[str, int], *flags: str, timeout: float = UCLIENT_TIMEOUT,
    may_hang: bool = False,
) -> tuple[int | None, str]:
    """(exit status, output) of turnutils_uclient; status None when it was still running after
    `timeout` (which fails the test unless `may_hang`)."""
    cmd = [
        "stdbuf", "-oL", "-eL", tool("turnutils_uclient"),
        *flags,
        "-e", peer[0], "-r", str(peer[1]), "-p", str(server_port), server_ip,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        if not may_hang:
            pytest.fail(f"{' '.join(cmd)} did not finish in {timeout}s:\n{out}")
        return None, f"$ {' '.join(cmd)}\n(still running after {timeout}s)\n{out}"
    return done.returncode, f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}"


def statistics(out: str) -> dict[str, int]:
    """The totals of uclient's final report."""
    sent_recv = re.findall(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
    lost = re.findall(r"Total lost packets (\d+) \(", out)
    dropped = re.findall(r"total send dropped (\d+) \(", out)
    assert sent_recv and lost and dropped, f"no final statistics in uclient output:\n{out}"
    return {
        "sent": int(sent_recv[-1][0]),
        "received": int(sent_recv[-1][1]),
        "lost": int(lost[-1]),
        "dropped": int(dropped[-1]),
    }


def assert_relayed_without_loss(rc: int, out: str) -> None:
    assert rc == 0, f"turnutils_uclient exited with {rc}:\n{out}"
    # TURN error responses show as "... error 4xx (Reason)". (With -S it also tries TLS 1.0 /
    # 1.1 contexts at random, which the server rightly refuses with a handshake failure alert
    # before it retries with another: those lines are not TURN errors.)
    assert not re.search(r"error \d{3}\b", out), out
    stats = statistics(out)
    want = CLIENTS * MESSAGES
    assert stats == {"sent": want, "received": want, "lost": 0, "dropped": 0}, f"{stats}\n{out}"


def load_flags(*extra: str) -> list[str]:
    return ["-s", "-c", "-m", str(CLIENTS), "-n", str(MESSAGES), "-l", str(LENGTH), "-z", str(INTERVAL_MS), *extra]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "dtls"])
def test_uclient_static_user_relays_without_loss(turnpike, echo_peer, transport):
    """RFC 8656 end to end with an independent client: 4 clients over UDP, TCP, TLS or DTLS
    (RFC 7350, on the TLS port over UDP) allocate
    with a static user (long-term credentials, RFC 8489 §9.2), create permissions for the
    loopback echo peer (allowed by --allowed-peers 127.0.0.1/32), send 100 Send indications of
    180 bytes each, every 5 ms, and get every echo back as Data indications: S = R = 400, no loss."""
    server = turnpike(
        tls=transport in ("tls", "dtls"),
        users=[f"{USER}:{PASSWORD}"],
        relay_ip=["127.0.0.1"],
        allowed_peers=["127.0.0.1/32"],
    )
    transport_flags = {"udp": [], "tcp": ["-t"], "tls": ["-t", "-S"], "dtls": ["-S"]}[transport]
    port = server.tls_port if transport in ("tls", "dtls") else server.port
    rc, out = uclient(server.ip, port, (echo_peer.ip, echo_peer.port), *load_flags(*transport_flags, "-u", USER, "-w", PASSWORD))
    assert_relayed_without_loss(rc, out)
    if transport == "tls":
        assert re.search(r"client session connected with cipher \S+, method=TLSv1\.[23]", out), out
    if transport == "dtls":
        assert re.search(r"client session connected with cipher \S+, method=DTLSv1\.2", out), out


@pytest.mark.parametrize("transport", ["udp", "tcp", "dtls"])
@pytest.mark.parametrize("rtcp", [False, True], ids=["rtp", "rtp+rtcp"])
def test_uclient_channels_relay_without_loss(turnpike, echo_peer, transport, rtcp):
    """The same traffic through channels (ChannelBind, then ChannelData both ways, RFC 8656
    §12), with random channel numbers from the RFC 5766 range; with RTCP each client has a
    second allocation and channel to the peer's port + 1. Over DTLS the ChannelData travel
    unpadded inside the session's records (RFC 7350 §4, RFC 8656 §12.5)."""
    server = turnpike(
        tls=transport == "dtls", users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"], allowed_peers=["127.0.0.1/32"]
    )
    flags = ["-m", str(CLIENTS), "-n", str(MESSAGES), "-l", str(LENGTH), "-z", str(INTERVAL_MS)]
    flags += [] if rtcp else ["-c"]
    flags += {"udp": [], "tcp": ["-t"], "dtls": ["-S"]}[transport]
    port = server.tls_port if transport == "dtls" else server.port
    rc, out = uclient(server.ip, port, (echo_peer.ip, echo_peer.port), *flags, "-u", USER, "-w", PASSWORD)
    assert_relayed_without_loss(rc, out)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_uclient_rest_credentials_relay_without_loss(turnpike, echo_peer, transport):
    """TURN REST API credentials computed by coturn's client itself (`-W secret`: username
    "EXPIRY:alice", password base64(HMAC-SHA1(secret, username))) against --rest-secrets:
    the same relayed traffic with no loss."""
    server = turnpike(
        rest_secrets=[REST_SECRET],
        relay_ip=["127.0.0.1"],
        allowed_peers=["127.0.0.1/32"],
    )
    transport_flags = {"udp": [], "tcp": ["-t"]}[transport]
    rc, out = uclient(server.ip, server.port, (echo_peer.ip, echo_peer.port), *load_flags(*transport_flags, "-u", USER, "-W", REST_SECRET))
    assert_relayed_without_loss(rc, out)


def ice_servers(server, headers: dict[str, str] | None = None) -> list[dict]:
    """`GET /api/ice-servers` of `server` from this host (loopback), without any proxy."""
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://{server.ip}:{server.http_port}/api/ice-servers", headers=headers or {})
    with opener.open(request, timeout=10) as response:
        return json.load(response)["iceServers"]


def test_uclient_relays_with_a_credential_from_the_http_api(turnpike, echo_peer):
    """Issue #10: the HTTP API hands a loopback caller (no secret, no proxy header) a TURN REST
    credential ("EXPIRY:turnpike") that an independent client relays with; the same request
    through a proxy header gets STUN URLs only, so no credential to relay with."""
    server = turnpike(rest_secrets=[REST_SECRET], relay_ip=["127.0.0.1"], allowed_peers=["127.0.0.1/32"])
    turn = [entry for entry in ice_servers(server) if "username" in entry]
    assert len(turn) == 1, turn
    username, credential = turn[0]["username"], turn[0]["credential"]
    assert username.endswith(":turnpike"), username
    rc, out = uclient(server.ip, server.port, (echo_peer.ip, echo_peer.port), *load_flags("-u", username, "-w", credential))
    assert_relayed_without_loss(rc, out)
    proxied = ice_servers(server, {"X-Forwarded-For": "203.0.113.9"})
    assert proxied and not any("username" in entry for entry in proxied), proxied


AUTH_FAILURES = 3


def test_uclient_wrong_rest_secret_is_refused_then_rate_limited(turnpike, echo_peer):
    """The client with the wrong REST secret never gets an allocation: each Allocate gets 401
    (the tool keeps retrying with the new nonce), and after --auth-failures 3 failed attempts
    the server ignores that source, so exactly 1 + 3 responses arrive (the first 401 is the
    challenge, not a failure) and nothing is relayed."""
    server = turnpike(
        rest_secrets=[REST_SECRET], relay_ip=["127.0.0.1"], allowed_peers=["127.0.0.1/32"],
        args=["--auth-failures", str(AUTH_FAILURES)],
    )
    rc, out = uclient(
        server.ip, server.port, (echo_peer.ip, echo_peer.port),
        *load_flags("-v", "-u", USER, "-W", "not-the-rest-secret"), timeout=6, may_hang=True,
    )
    assert rc != 0, out
    assert "Received relay addr" not in out, out
    assert "tot_recv_msgs" not in out, out
    assert out.count("allocate response received") == 1 + AUTH_FAILURES, out
    assert out.count("allocate sent") > 1 + AUTH_FAILURES, out


@pytest.mark.parametrize("peer_ip", ["127.0.0.1", "127.0.0.2"], ids=["relay-ip", "other-loopback"])
def test_uclient_loopback_peer_denied_by_default(turnpike, peer_ip):
    """Without --allowed-peers a loopback peer gets nothing, and a UDP socket standing where the
    echo peer would be (PORT and PORT+1) receives nothing:
    - 127.0.0.2 (loopback, not the relay IP): CreatePermission gets 403 and uclient gives up;
    - 127.0.0.1, which is also the relay IP: CreatePermission (per IP, RFC 8656 §9) is granted
      because other relays on 127.0.0.1 are legitimate peers, but every Send indication to the
      non-relay port is dropped: all 400 messages lost."""
    server = turnpike(users=[f"{USER}:{PASSWORD}"], relay_ip=["127.0.0.1"])
    port = consecutive_free_ports(peer_ip)
    with stunraw.udp_socket(peer_ip, port) as first, stunraw.udp_socket(peer_ip, port + 1) as second:
        rc, out = uclient(server.ip, server.port, (peer_ip, port), *load_flags("-u", USER, "-w", PASSWORD))
        if peer_ip == "127.0.0.2":
            assert rc != 0, f"uclient succeeded through a denied peer:\n{out}"
            assert "create permission error 403" in out, out
            assert "tot_recv_msgs" not in out, out
        else:
            stats = statistics(out)
            want = CLIENTS * MESSAGES
            assert stats == {"sent": want, "received": 0, "lost": want, "dropped": 0}, f"{stats}\n{out}"
        got = stunraw.recv_datagrams(first, 0.5) + stunraw.recv_datagrams(second, 0.5)
        assert got == [], f"the denied peer received {len(got)} datagrams: {got[:3]!r}"
