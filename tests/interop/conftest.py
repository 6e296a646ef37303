"""Fixtures that run the real `turnpike serve` binary on free loopback ports.

The binary is `target/debug/turnpike` (build it with `cargo build -p turnpike`) or whatever the
environment variable TURNPIKE_BIN names. Each test that asks for the `turnpike` fixture gets a
factory; every server it starts is stopped with SIGTERM at the end of the test, and the test fails
unless the server then exits cleanly with status 0. When a test fails, the server's stderr is
attached to the report.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import stunraw

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "turnpike"
PRIMARY_IP = "127.0.0.1"
ALTERNATE_IP = "127.0.0.2"  # the whole of 127.0.0.0/8 is loopback on Linux
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 5
LOG_LEVEL = os.environ.get("TURNPIKE_TEST_LOG_LEVEL", "debug")

_servers_key = pytest.StashKey[list]()


def turnpike_bin() -> Path:
    path = Path(os.environ.get("TURNPIKE_BIN", str(DEFAULT_BIN)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"turnpike binary not found at {path}: run `cargo build -p turnpike` "
            "or set TURNPIKE_BIN",
            pytrace=False,
        )
    return path


# --------------------------------------------------------------------------------------------
# Free ports
# --------------------------------------------------------------------------------------------


# The servers' own ports (STUN/TURN, TLS, HTTP, metrics, ...) come from below the relay ranges
# (below) and below Linux's default ephemeral range (32768–60999): a test's ephemeral sockets —
# an echo peer bound to port 0 — then never take the number of one of the server's service ports,
# which the server refuses as a peer on its own address (403 to ChannelBind: its own services are
# not reachable through the relay, RFC 8656 §21.2.2). A UDP echo peer that drew the number of the
# server's TCP-only HTTP port made test_aioice_rest_credentials[udp] time out once (ci61).
SERVICE_PORT_FLOOR, SERVICE_PORT_CEILING = 10000, 19999


def free_ports(count: int, ips: list[str]) -> list[int]:
    """`count` distinct ports, from the service range above, free for both UDP and TCP on every
    IP in `ips`.

    A random candidate is kept only if UDP and TCP binds on it succeed on all the IPs. The
    sockets are closed before returning, so another process can still take the port: callers
    retry the server start when that happens.
    """
    for _ in range(200):
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                port = random.randint(SERVICE_PORT_FLOOR, SERVICE_PORT_CEILING)
                if port in ports:
                    continue
                for ip in ips:
                    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                        s = socket.socket(socket.AF_INET, kind)
                        held.append(s)
                        s.bind((ip, port))
                ports.append(port)
            return ports
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"could not find {count} free UDP+TCP ports on {ips}")


# Relay port ranges below Linux's default ephemeral range (32768–60999), so the clients' and the
# servers' own ephemeral sockets cannot take a relay port from under the server.
RELAY_RANGE_FLOOR, RELAY_RANGE_CEILING = 20000, 32767
RELAY_RANGE_SIZE = 200


def free_relay_range(ips: list[str], size: int = RELAY_RANGE_SIZE) -> tuple[int, int]:
    """A block of `size` consecutive ports, free for UDP on every relay IP in `ips`: (min, max).

    The default range (49152–65535) is shared with every other program on the machine, and one
    that holds many ports there made an Allocate fail with 508 (issue #13). A random block is
    kept only if every port binds on every IP; the sockets are closed before returning, so the
    server's own retries (64 random ports per allocation) absorb a port taken meanwhile.
    """
    for _ in range(100):
        low = random.randint(RELAY_RANGE_FLOOR, RELAY_RANGE_CEILING - size + 1)
        held: list[socket.socket] = []
        try:
            for port in range(low, low + size):
                for ip in ips:
                    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
                    held.append(s)
                    s.bind((ip, port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"could not find {size} free consecutive UDP ports on {ips}")


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


class ServerStartError(Exception):
    def __init__(self, message: str, port_in_use: bool) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


@dataclass
class TurnpikeServer:
    """A running `turnpike serve` and the addresses it listens on."""

    port: int
    alt_port: int | None
    tls_port: int | None
    udp_enabled: bool
    tcp_enabled: bool
    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    exit_code: int | None = None
    extra_listen: list[tuple[str, int]] = field(default_factory=list)
    http_port: int | None = None  # the HTTP listener the fixture gave it, if any

    ip: str = PRIMARY_IP
    alt_ip: str | None = None

    # Addresses -----------------------------------------------------------------------------

    @property
    def udp(self) -> tuple[str, int]:
        """The primary UDP address (Da:Dp in RFC 5780 terms: A1:P1)."""
        return (self.ip, self.port)

    @property
    def tcp(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @property
    def tls(self) -> tuple[str, int]:
        assert self.tls_port is not None, "server was started without TLS"
        return (self.ip, self.tls_port)

    @property
    def alternate(self) -> bool:
        return self.alt_port is not None

    def sockets(self) -> list[tuple[str, int]]:
        """All (ip, port) pairs the server answers on: four with an alternate (RFC 5780 §6)."""
        out = [(self.ip, self.port)]
        if self.alternate:
            assert self.alt_ip is not None and self.alt_port is not None
            out += [(self.ip, self.alt_port), (self.alt_ip, self.port), (self.alt_ip, self.alt_port)]
        return out + list(self.extra_listen)

    def other(self, addr: tuple[str, int], change_ip: bool = True, change_port: bool = True) -> tuple[str, int]:
        """The socket RFC 5780 Table 1 says answers a request sent to `addr` with these flags."""
        assert self.alternate and self.alt_ip is not None and self.alt_port is not None
        ip, port = addr
        if change_ip:
            ip = self.alt_ip if ip == self.ip else self.ip
        if change_port:
            port = self.alt_port if port == self.port else self.port
        return (ip, port)

    # Logs ----------------------------------------------------------------------------------

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, lines: int = 200) -> str:
        text = self.stderr().splitlines()
        head = f"$ {' '.join(self.args)}\n"
        if len(text) > lines:
            head += f"... ({len(text) - lines} earlier lines in {self.log_path})\n"
        return head + "\n".join(text[-lines:])

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.log_file = open(self.log_path, "wb")
        # Only the flags configure the server: no TURNPIKE_* variable from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURNPIKE_") and k != "RUST_LOG"}
        self.proc = subprocess.Popen(
            self.args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
        )
        try:
            self._wait_ready()
        except BaseException:
            self._kill()
            self.log_file.close()
            raise

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        pending_udp = list(self.sockets()) if self.udp_enabled else []
        pending_tcp = list(self.sockets()) if self.tcp_enabled else []
        if self.tls_port is not None:
            pending_tcp.append(self.tls)
        probe = stunraw.udp_socket()
        try:
            while pending_udp or pending_tcp:
                code = self.proc.poll()
                if code is not None:
                    log = self.stderr()
                    in_use = "in use" in log.lower() or "os error 98" in log.lower()
                    raise ServerStartError(
                        f"turnpike exited with status {code} before answering:\n{self.stderr_tail()}",
                        port_in_use=in_use,
                    )
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"turnpike did not answer on {pending_udp} (UDP) / {pending_tcp} (TCP) "
                        f"within {READY_TIMEOUT:.0f}s:\n{self.stderr_tail()}",
                        port_in_use=False,
                    )
                if pending_udp:
                    addr = pending_udp[0]
                    req = stunraw.binding_request()
                    probe.sendto(req, addr)
                    try:
                        stunraw.recv_response(probe, req[8:20], timeout=0.1)
                        pending_udp.pop(0)
                        continue
                    except TimeoutError:
                        pass
                elif pending_tcp:
                    addr = pending_tcp[0]
                    try:
                        with socket.create_connection(addr, timeout=0.5):
                            pending_tcp.pop(0)
                        continue
                    except OSError:
                        time.sleep(0.1)
        finally:
            probe.close()

    def stop(self) -> int:
        """SIGTERM, then wait for the exit; returns the exit status (kills after STOP_TIMEOUT)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                self.exit_code = None
                self.log_file.close()
                return -1
        self.exit_code = self.proc.returncode
        self.log_file.close()
        return self.exit_code

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    # Helpers for tests ---------------------------------------------------------------------

    def assert_answers_binding(self, addr: tuple[str, int] | None = None) -> None:
        """A valid Binding request over UDP still gets a correct success response (RFC 8489 §6.3.1)."""
        with stunraw.udp_socket() as s:
            req = stunraw.binding_request()
            msg, _ = stunraw.udp_transact(addr or self.udp, req, sock=s)
            assert msg.cls == stunraw.SUCCESS, msg
            assert msg.xor_address() == s.getsockname()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate (scripts/install-test-deps installs it)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@functools.cache
def serves_http(binary: Path) -> bool:
    """Whether this `turnpike serve` has an HTTP listener (flag --http-listen)."""
    done = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=20)
    return "--http-listen" in done.stdout


def turn_flags(**keys) -> list[str]:
    """`turnpike serve` flags for the TURN keys given (None: not given); lists repeat the flag."""
    out: list[str] = []
    for key, value in keys.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, (list, tuple)) else [value]:
            out += [flag, str(item)]
    return out


@pytest.fixture
def turnpike(request: pytest.FixtureRequest, tmp_path: Path):
    """Factory: `turnpike(alternate=False, tls=False, software=None, udp=True, tcp=True, args=[],
    log_format=None, extra_listens=0, **turn)`.

    Starts `turnpike serve --listen 127.0.0.1:P` (plus `--alternate-ip 127.0.0.2 --alternate-port Q`
    with `alternate`, a TLS listener with `tls`), waits until every socket answers, and returns a
    TurnpikeServer. All servers are SIGTERMed at teardown and must exit with status 0.

    TURN keywords, each turned into its flag only when given: `users=["alice:secret"]`,
    `rest_secrets=[...]`, `relay_ip=["127.0.0.1"]`, `allowed_peers=[CIDR]`, `denied_peers=[CIDR]`,
    `realm`, `nonce_secret` (64 hex digits), `nonce_lifetime`, `min_port`, `max_port`; without
    `min_port`/`max_port` (or the flags in `args`) the relay range is a free block of its own
    (`free_relay_range`).
    When the binary serves HTTP, its listener goes to a free port on 127.0.0.1
    (`server.http_port`), or is turned off with `http=False`.
    """
    binary = turnpike_bin()
    servers: list[TurnpikeServer] = []
    request.node.stash[_servers_key] = servers

    def start(
        alternate: bool = False,
        tls: bool = False,
        software: str | None = None,
        udp: bool = True,
        tcp: bool = True,
        args: list[str] | None = None,
        log_format: str | None = None,
        extra_listens: int = 0,
        users: list[str] | None = None,
        rest_secrets: list[str] | None = None,
        relay_ip: list[str] | None = None,
        allowed_peers: list[str] | None = None,
        denied_peers: list[str] | None = None,
        realm: str | None = None,
        nonce_secret: str | None = None,
        nonce_lifetime: int | None = None,
        min_port: int | None = None,
        max_port: int | None = None,
        http: bool = True,
    ) -> TurnpikeServer:
        ips = [PRIMARY_IP, ALTERNATE_IP] if alternate else [PRIMARY_IP]
        last: ServerStartError | None = None
        for attempt in range(START_ATTEMPTS):
            # The HTTP listener defaults to 0.0.0.0:8080, which two servers (or anything else on
            # the machine) would fight over: give it a free loopback port, or turn it off.
            with_http = serves_http(binary)
            ports = free_ports(1 + int(alternate) + int(tls) + extra_listens + int(with_http and http), ips)
            http_port = ports.pop() if with_http and http else None
            port = ports.pop(0)
            alt_port = ports.pop(0) if alternate else None
            tls_port = ports.pop(0) if tls else None
            extra = [(PRIMARY_IP, p) for p in ports]
            cmd = [str(binary), "serve", "--listen", f"{PRIMARY_IP}:{port}", "--log-level", LOG_LEVEL]
            # SIGTERM drains until the last allocation ends: the teardown's SIGTERM must stop
            # the server at once even when a client left its allocations alive.
            cmd += ["--drain-timeout", "0"]
            for ip, p in extra:
                cmd += ["--listen", f"{ip}:{p}"]
            if not udp:
                cmd += ["--udp", "false"]
            if not tcp:
                cmd += ["--tcp", "false"]
            if alternate:
                cmd += ["--alternate-ip", ALTERNATE_IP, "--alternate-port", str(alt_port)]
            if tls:
                cert, key = request.getfixturevalue("tls_cert")
                cmd += ["--tls-listen", f"{PRIMARY_IP}:{tls_port}", "--tls-cert", str(cert), "--tls-key", str(key)]
            if software is not None:
                cmd += ["--software", software]
            if log_format is not None:
                cmd += ["--log-format", log_format]
            if with_http and not http:
                cmd += ["--http", "false"]
            elif http_port is not None:
                cmd += ["--http-listen", f"{PRIMARY_IP}:{http_port}"]
            cmd += turn_flags(
                users=users, rest_secrets=rest_secrets, relay_ip=relay_ip, allowed_peers=allowed_peers,
                denied_peers=denied_peers, realm=realm, nonce_secret=nonce_secret,
                nonce_lifetime=nonce_lifetime, min_port=min_port, max_port=max_port,
            )
            cmd += list(args or [])
            if "--metrics-listen" not in cmd:
                # Its default, 127.0.0.1:9641, would be fought over by servers side by side.
                cmd += ["--metrics-listen", "off"]
            if not any(a in ("--min-port", "--max-port") for a in cmd):
                # No range asked for: a free one of our own rather than the shared default.
                # Without --relay-ip the server relays on detected IPs; 0.0.0.0 covers them all.
                relay_ips = [relay_ip] if isinstance(relay_ip, str) else list(relay_ip or ["0.0.0.0"])
                low, high = free_relay_range(relay_ips)
                cmd += ["--min-port", str(low), "--max-port", str(high)]
            server = TurnpikeServer(
                port=port,
                alt_port=alt_port,
                tls_port=tls_port,
                udp_enabled=udp,
                tcp_enabled=tcp,
                args=cmd,
                log_path=tmp_path / f"turnpike-{len(servers)}-{attempt}.log",
                alt_ip=ALTERNATE_IP if alternate else None,
                extra_listen=extra,
                http_port=http_port,
            )
            try:
                server.start()
            except ServerStartError as e:
                last = e
            else:
                servers.append(server)
                return server
            if not last.port_in_use:
                pytest.fail(str(last), pytrace=False)
        pytest.fail(f"turnpike could not bind free ports in {START_ATTEMPTS} tries: {last}", pytrace=False)

    yield start

    problems = []
    for server in servers:
        code = server.stop()
        if code != 0:
            what = "did not exit within 10 s of SIGTERM" if code == -1 else f"exited with status {code}"
            problems.append(f"turnpike {what} after SIGTERM (expected a clean exit 0):\n{server.stderr_tail()}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach each server's stderr to the report of a failed test."""
    report = yield
    if report.failed and report.when in ("call", "setup"):
        for server in item.stash.get(_servers_key, []):
            report.sections.append((f"turnpike stderr (port {server.port})", server.stderr_tail()))
    return report
