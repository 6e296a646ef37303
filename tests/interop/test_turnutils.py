"""coturn's STUN clients (Debian package `coturn`) against `turnpike serve`.

`turnutils_stunclient` sends a Binding request and prints the XOR-MAPPED-ADDRESS as
"UDP reflexive addr: IP:PORT". When the response carries OTHER-ADDRESS it goes on with two RFC 5780
requests: CHANGE-REQUEST(ip+port) with RESPONSE-PORT = its port + 1 (received on a new socket bound
to that port), then CHANGE-REQUEST(ip+port) with PADDING from that new socket, printing
"RFC 5780 response N", "Response origin: IP:PORT" and "Other addr: IP:PORT" for each.

`turnutils_natdiscovery` runs the RFC 5780 §4.3 (mapping) and §4.4 (filtering) tests and concludes
with lines such as "NAT with Endpoint Independent Filtering!".

Both tools block for ever when a response does not come, so they run under a timeout; their output
is block-buffered when piped, so they run under `stdbuf -oL`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

TOOL_TIMEOUT = 15

ADDR = r"(\d+\.\d+\.\d+\.\d+):(\d+)"


def run_tool_rc(tool: str, *args: str) -> tuple[int, str]:
    """(exit status, stdout + stderr) of a coturn tool run under stdbuf with a timeout."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps (Debian package coturn)", pytrace=False)
    cmd = ["stdbuf", "-oL", "-eL", path, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=TOOL_TIMEOUT, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{' '.join(cmd)} did not finish in {TOOL_TIMEOUT}s (a response never came?)\n{out}")
    return done.returncode, f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}"


def run_tool(tool: str, *args: str) -> str:
    rc, out = run_tool_rc(tool, *args)
    assert rc == 0, f"exit status {rc}:\n{out}"
    return out


def addrs(label: str, text: str) -> list[tuple[str, int]]:
    return [(ip, int(port)) for ip, port in re.findall(re.escape(label) + r"[: ]*" + ADDR, text)]


def rfc5780_blocks(out: str) -> dict[int, str]:
    """Output split into the "RFC 5780 response N" blocks, keyed by N."""
    parts = re.split(r"RFC 5780 response (\d+)\n", out)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def stunclient(server, *extra: str) -> str:
    """turnutils_stunclient; retried when the socket it binds to its port + 1 happens to be taken."""
    for _ in range(3):
        rc, out = run_tool_rc("turnutils_stunclient", *extra, "-p", str(server.port), server.ip)
        if "in use" not in out:
            break
    assert rc == 0, f"exit status {rc}:\n{out}"
    return out


def test_stunclient_gets_reflexive_address(turnpike):
    """RFC 8489 §6.3.1.1 with an independent client: the reflexive address is the client's own
    (127.0.0.1 and an ephemeral port), and without an alternate address the server sends no
    OTHER-ADDRESS (RFC 5780 §7.4), so the tool does not start RFC 5780 tests."""
    server = turnpike()
    out = stunclient(server)
    mapped = addrs("UDP reflexive addr", out)
    assert mapped, out
    for ip, port in mapped:
        assert ip == "127.0.0.1", out
        assert 1024 <= port <= 65535 and port != server.port, out
    assert "RFC 5780" not in out, out
    assert "error" not in out.lower(), out
    server.assert_answers_binding()


def test_stunclient_rfc5780_mode(turnpike):
    """RFC 5780 §6.1/§7 with coturn's client: response 1 (no flags) comes with RESPONSE-ORIGIN =
    127.0.0.1:P and OTHER-ADDRESS = 127.0.0.2:Q; response 2 (change IP and port, RESPONSE-PORT =
    client port + 1) is sent from 127.0.0.2:Q to the other port; response 3 (change IP and port,
    PADDING) is sent from 127.0.0.2:Q to the new socket."""
    server = turnpike(alternate=True)
    primary = (server.ip, server.port)
    other = (server.alt_ip, server.alt_port)
    out = stunclient(server, "-f")
    blocks = rfc5780_blocks(out)
    assert sorted(blocks) == [1, 2, 3], out

    origin1 = addrs("Response origin", blocks[1])
    assert origin1 and set(origin1) == {primary}, out
    for n in (1, 2, 3):
        assert addrs("Other addr", blocks[n]) == [other], f"response {n}:\n{out}"
    for n in (2, 3):
        assert set(addrs("Response origin", blocks[n])) == {other}, f"response {n}:\n{out}"

    refl = {n: set(addrs("UDP reflexive addr", blocks[n])) for n in (1, 2, 3)}
    assert all(len(r) == 1 for r in refl.values()), out
    (ip1, port1), (ip2, port2), (ip3, port3) = (next(iter(refl[n])) for n in (1, 2, 3))
    assert ip1 == ip2 == ip3 == "127.0.0.1", out
    # Request 2 is sent from the first socket; request 3 from the RESPONSE-PORT socket (port + 1).
    assert port2 == port1, out
    assert port3 == port1 + 1, out


@pytest.mark.parametrize("padding", [False, True], ids=["plain", "padding"])
def test_natdiscovery_on_loopback_finds_no_nat(turnpike, padding):
    """RFC 5780 §4.3 (mapping) and §4.4 (filtering) run by coturn's natdiscovery over loopback,
    where there is no NAT: mapping and filtering are endpoint-independent. The tool compares
    MAPPED-ADDRESS with XOR-MAPPED-ADDRESS (RFC 5780 §6.1: the server MUST include both). With
    `-P` every request carries PADDING (RFC 5780 §7.6)."""
    server = turnpike(alternate=True)
    args = ["-m", "-f", "-L", "127.0.0.1"] + (["-P"] if padding else [])
    out = run_tool("turnutils_natdiscovery", *args, "-p", str(server.port), server.ip)
    assert "Endpoint Independent Mapping" in out, out
    assert "NAT with Endpoint Independent Filtering!" in out, out
    assert "Dependent" not in out, out
    assert "ALG detected" not in out, out
    assert "No ALG: Mapped == XOR-Mapped" in out, out
    assert "error" not in out.lower(), out
    for ip, _ in addrs("UDP reflexive addr", out):
        assert ip == "127.0.0.1", out
    origins = set(addrs("Response origin", out))
    # Mapping test 2 goes to the alternate IP and primary port (RFC 5780 §4.3); filtering test 2
    # asks for a change of IP and port (RFC 5780 §4.4).
    assert {(server.ip, server.port), (server.alt_ip, server.port), (server.alt_ip, server.alt_port)} <= origins, out
    server.assert_answers_binding()


def test_natdiscovery_without_alternate_draws_no_conclusion(turnpike):
    """RFC 5780 §6/§7.4: a server with one address sends no OTHER-ADDRESS, so a behaviour-discovery
    client must not be led into CHANGE-REQUEST tests and reports no NAT type."""
    server = turnpike()
    out = run_tool("turnutils_natdiscovery", "-m", "-f", "-L", "127.0.0.1", "-p", str(server.port), server.ip)
    assert addrs("UDP reflexive addr", out), out
    assert "RFC 5780 response" not in out, out
    assert "NAT with" not in out, out
