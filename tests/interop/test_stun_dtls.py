"""`turnpike stun stuns:HOST:PORT?transport=udp`: one Binding transaction inside DTLS 1.2 (RFC
7350 §4), against coturn's `turnserver` DTLS listener (the independent server) and against
`turnpike serve`'s own. The server's certificate is the self-signed test certificate, trusted
with `--ca-file`; without it the public CAs do not vouch for it and the command fails."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import turnpike_bin
from test_turn_client_coturn import Coturn

pytestmark = pytest.mark.timeout(60)


def stun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(turnpike_bin()), "stun", *args], capture_output=True, text=True, timeout=30, errors="replace"
    )


def test_stun_over_dtls_against_coturn(tmp_path, tls_cert):
    server = Coturn(tmp_path, tls=tls_cert, dtls=True)
    try:
        done = stun(f"stuns:{server.ip}:{server.tls_port}?transport=udp", "--ca-file", str(tls_cert[0]), "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["mapped"].startswith("127.0.0.1:"), report
        assert report["server"] == f"{server.ip}:{server.tls_port}", report
        # coturn names itself: the answer came from coturn, through the DTLS session.
        assert "Coturn" in (report["software"] or ""), report
        # The same server, not trusted: the certificate is checked.
        untrusted = stun(f"stuns:{server.ip}:{server.tls_port}")
        assert untrusted.returncode != 0
        assert "not trusted" in untrusted.stderr, untrusted.stderr
    finally:
        server.stop()


def test_stun_over_dtls_against_turnpike(turnpike, tls_cert):
    server = turnpike(tls=True)
    done = stun(f"stuns:127.0.0.1:{server.tls_port}", "--ca-file", str(tls_cert[0]), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mapped"].startswith("127.0.0.1:"), report
