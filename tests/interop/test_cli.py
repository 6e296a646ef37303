"""`turnpike serve` as an operator runs it: listeners, transport switches, logs, clean shutdown."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

import stunraw as s

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def listening_lines(server) -> list[str]:
    return [ANSI.sub("", line) for line in server.stderr().splitlines() if "listening" in line.lower()]


def test_logs_listening_per_socket(turnpike):
    """One "listening" line per socket once ready: UDP and TCP on the one --listen address."""
    server = turnpike()
    lines = listening_lines(server)
    assert len(lines) >= 2, server.stderr()


def test_logs_listening_per_socket_with_alternate(turnpike):
    """With an alternate IP and port the server answers on four UDP sockets (RFC 5780 §6), and
    says so for each."""
    server = turnpike(alternate=True)
    assert len(listening_lines(server)) >= 4, server.stderr()
    for addr in server.sockets():
        server.assert_answers_binding(addr)


def test_json_log_format(turnpike):
    """`--log-format json`: every log line is one JSON object, and the listening lines are there."""
    server = turnpike(log_format="json")
    lines = [line for line in server.stderr().splitlines() if line.strip()]
    assert lines, "no log output"
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert any("listening" in line.lower() for line in lines), server.stderr()


def test_repeated_listen(turnpike):
    """`--listen` is repeatable; each address answers Binding over UDP and TCP."""
    server = turnpike(extra_listens=2)
    assert len(server.extra_listen) == 2
    for addr in [server.udp, *server.extra_listen]:
        server.assert_answers_binding(addr)
        with socket.create_connection(addr, timeout=3) as c:
            c.sendall(s.binding_request())
            assert s.recv_stream_message(c).xor_address() == c.getsockname()


def test_udp_false_disables_udp(turnpike):
    """`--udp false`: no UDP answers, TCP still answers."""
    server = turnpike(udp=False)
    with s.udp_socket() as sock:
        sock.sendto(s.binding_request(), server.udp)
        got = []
        try:
            got = s.recv_datagrams(sock, 0.5)
        except ConnectionRefusedError:
            pass
        assert got == []
    with socket.create_connection(server.tcp, timeout=3) as c:
        c.sendall(s.binding_request())
        assert s.recv_stream_message(c).xor_address() == c.getsockname()


def test_tcp_false_disables_tcp(turnpike):
    """`--tcp false`: TCP connections are refused, UDP still answers."""
    server = turnpike(tcp=False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(server.tcp, timeout=3).close()
    server.assert_answers_binding()


def test_sigterm_exits_cleanly_and_quickly(turnpike):
    """SIGTERM stops the server with exit status 0, promptly, and frees its ports."""
    server = turnpike()
    server.assert_answers_binding()
    start = time.monotonic()
    assert server.stop() == 0, server.stderr_tail()
    assert time.monotonic() - start < 5
    # The UDP and TCP ports can be bound again.
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(server.udp)


def test_config_file(turnpike, tmp_path):
    """`--config FILE` (flat TOML): its keys configure the server, here SOFTWARE (RFC 8489 §14.14)."""
    config = tmp_path / "turnpike.toml"
    config.write_text('software = "from-config-file"\n')
    server = turnpike(args=["--config", str(config)])
    with s.udp_socket() as sock:
        msg, _ = s.udp_transact(server.udp, s.binding_request(), sock)
        assert msg.get(s.SOFTWARE) == b"from-config-file"


def test_flag_overrides_config_file(turnpike, tmp_path):
    """A flag wins over the same key in the configuration file."""
    config = tmp_path / "turnpike.toml"
    config.write_text('software = "from-config-file"\n')
    server = turnpike(software="from-flag", args=["--config", str(config)])
    msg, _ = s.udp_transact(server.udp, s.binding_request())
    assert msg.get(s.SOFTWARE) == b"from-flag"
