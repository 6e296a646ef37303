"""`turnpike check` against a TURN server nobody here wrote: coturn's `turnserver` (Debian package
coturn), working and deliberately misconfigured, and against `turnpike serve` through its
`GET /api/ice-servers` (--ice-servers).

coturn runs as in test_turn_client_coturn.py (loopback, `--lt-cred-mech --user u:p --realm r`, a
free port and relay range), with or without `--allow-loopback-peers`; stopped after each test.
The firewalled-relay case runs coturn and the check inside a network namespace of their own, where
an nftables rule drops UDP to the relay range: nothing outside the namespace is touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import turnpike_bin
from test_turn_client_coturn import PASSWORD, REALM, USER, Coturn
from test_turn_turnutils import tool

CHECK_TIMEOUT = 60

pytestmark = pytest.mark.timeout(120)


def coturn_command(tmp: Path, port: int, relay: tuple[int, int], ip: str, relay_ip: str) -> list[str]:
    """coturn as in the namespace tests: listening on `ip`, relaying on `relay_ip`, loopback peers
    allowed."""
    return [
        tool("turnserver"), "-n", "--no-cli", "--lt-cred-mech", "--user", f"{USER}:{PASSWORD}",
        "--realm", REALM, "--listening-ip", ip, "--relay-ip", relay_ip,
        "--listening-port", str(port), "--min-port", str(relay[0]), "--max-port", str(relay[1]),
        "--no-tls", "--no-dtls", "--allow-loopback-peers",
        "--pidfile", str(tmp / "turnserver.pid"), "--userdb", str(tmp / "turndb"),
        "--log-file", "stdout", "--simple-log",
    ]


def turn_uri(server: Coturn, query: str = "") -> str:
    return f"turn:{server.ip}:{server.port}{query}"


@pytest.fixture
def coturn(tmp_path):
    started: list[Coturn] = []

    def start(*extra: str, tls: tuple[Path, Path] | None = None) -> Coturn:
        server = Coturn(tmp_path, list(extra), tls=tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def certificate(tmp: Path, start: str, end: str) -> tuple[Path, Path]:
    """A self-signed leaf certificate for 127.0.0.1 valid from `start` to `end` (YYYYMMDDHHMMSSZ):
    `openssl ca` sets both dates, which `openssl req -x509` (OpenSSL 3.0) cannot put in the past."""
    d = tmp / f"cert-{start}-{end}"
    d.mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n"
        "default_md = sha256\npolicy = p\ncopy_extensions = copy\n[p]\ncommonName = supplied\n"
    )
    run = lambda *cmd: subprocess.run(cmd, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE")
    run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "key.pem", "-in", "req.csr",
        "-out", "cert.pem", "-startdate", start, "-enddate", end)
    return d / "cert.pem", d / "key.pem"


def check(*args: str, prefix: list[str] | None = None):
    """(exit status, JSON report, raw output) of `turnpike check --json ARGS`."""
    timeout = [] if "--timeout" in args else ["--timeout", "3"]
    cmd = [*(prefix or []), str(turnpike_bin()), "check", "--json", *timeout, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    out = f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}"
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON report:\n{out}")
    return done.returncode, report, out


def steps(result) -> dict[str, str]:
    return {s["name"]: s["verdict"] for s in result["steps"]}


def test_every_step_passes_against_coturn_over_udp_and_tcp(coturn):
    """RFC 8656 against coturn: Allocate through its 401 (MD5, MESSAGE-INTEGRITY), a second
    allocation, CreatePermission both ways, Send/Data and ChannelData (padded on TCP, RFC 8656
    §12.5) both ways, Refresh, Refresh with LIFETIME 0."""
    server = coturn("--allow-loopback-peers")
    rc, report, out = check(
        turn_uri(server), turn_uri(server, "?transport=tcp"), "-u", USER, "-p", PASSWORD, "--realm", REALM,
        "--count", "5", "--interval", "5",
    )
    assert rc == 0, out
    for result in report["results"]:
        assert set(steps(result).values()) == {"ok"}, out
        assert list(steps(result))[-1] == "deallocate", out
        assert result["facts"]["realm"] == REALM
        for framing in ("send_data", "channel_data"):
            stats = result["facts"][framing]
            assert (stats["sent"], stats["delivered"], stats["returned"]) == (5, 5, 5), out
    assert [r["transport"] for r in report["results"]] == ["udp", "tcp"]


def test_coturn_refusing_loopback_peers_is_a_relay_failure(coturn):
    """coturn without --allow-loopback-peers answers CreatePermission for 127.0.0.1 with 403
    (RFC 8656 §9.1): exit 7, and the diagnosis names the peer policy."""
    server = coturn()
    rc, report, out = check(turn_uri(server), "-u", USER, "-p", PASSWORD)
    assert rc == 7, out
    [result] = report["results"]
    assert result["outcome"] == "relay"
    assert steps(result)["permissions"] == "fail", out
    assert "peer policy" in " ".join(result["diagnoses"]), out
    assert "--allow-loopback-peers" in " ".join(result["diagnoses"]), out


def test_wrong_password_and_realm_against_coturn(coturn):
    """RFC 8489 §9.2.5: coturn's 401 to the signed retry is a wrong password (exit 5); a realm other
    than the one expected is reported with both names (exit 5)."""
    server = coturn("--allow-loopback-peers")
    rc, report, out = check(turn_uri(server), "-u", USER, "-p", "wrong")
    assert rc == 5, out
    assert report["results"][0]["diagnoses"][0].startswith('Wrong username or password for realm "r"'), out
    rc, report, out = check(turn_uri(server), "-u", USER, "-p", PASSWORD, "--realm", "example.org")
    assert rc == 5, out
    assert 'realm is "r", not "example.org"' in " ".join(report["results"][0]["diagnoses"]), out


def test_tls_against_coturn_valid_and_expired(coturn, tmp_path):
    """turns: to coturn: the handshake, the certificate's names and days left, then every TURN step
    over TLS; an expired certificate fails the tls step (exit 4) with the days since it expired,
    and --insecure goes on with a warning."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed (scripts/install-test-deps installs it)")
    now = time.gmtime()
    start = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 86400))
    end = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 30 * 86400 + 3600))
    cert, key = certificate(tmp_path, start, end)
    server = coturn("--allow-loopback-peers", tls=(cert, key))
    target = f"turns:{server.ip}:{server.tls_port}"
    rc, report, out = check(target, "-u", USER, "-p", PASSWORD, "--ca-file", str(cert), "--count", "3")
    assert rc == 0, out
    [result] = report["results"]
    assert result["transport"] == "tls"
    assert set(steps(result).values()) == {"ok"}, out
    assert result["facts"]["certificate"]["names"] == ["127.0.0.1"], out
    assert result["facts"]["certificate"]["expires_in_days"] == 30, out
    assert result["facts"]["channel_data"]["returned"] == 3, out
    server.stop()

    expired = certificate(tmp_path, "20200101000000Z", f"{now.tm_year - 2}0101000000Z")
    server = coturn("--allow-loopback-peers", tls=expired)
    target = f"turns:{server.ip}:{server.tls_port}"
    rc, report, out = check(target, "-u", USER, "-p", PASSWORD, "--ca-file", str(expired[0]))
    assert rc == 4, out
    [result] = report["results"]
    assert steps(result)["tls"] == "fail", out
    assert result["facts"]["certificate"]["expires_in_days"] < -365, out
    assert "The certificate expired" in " ".join(result["diagnoses"]), out
    rc, report, out = check(target, "-u", USER, "-p", PASSWORD, "--insecure", "--count", "2")
    assert rc == 0, out
    assert steps(report["results"][0])["tls"] == "warn", out


def test_dtls_against_coturn(tmp_path, tls_cert):
    """turns:…?transport=udp (RFC 7350) to coturn's DTLS listener: the handshake with the
    certificate trusted through --ca-file, then every TURN step inside DTLS sessions, data relayed
    both ways; without --ca-file the certificate is refused (exit 4) with one diagnosis."""
    server = Coturn(tmp_path, tls=tls_cert, dtls=True)
    try:
        target = f"turns:{server.ip}:{server.tls_port}?transport=udp"
        rc, report, out = check(
            target, "-u", USER, "-p", PASSWORD, "--realm", REALM, "--ca-file", str(tls_cert[0]),
            "--count", "3", "--interval", "5", "--timeout", "10",
        )
        assert rc == 0, out
        [result] = report["results"]
        assert result["transport"] == "dtls", out
        # The shared test certificate expires in two days: the dtls step warns of that.
        verdicts = steps(result)
        assert verdicts.pop("dtls") in ("ok", "warn"), out
        assert set(verdicts.values()) == {"ok"}, out
        assert list(steps(result)) == [
            "dns", "dtls", "binding", "allocate", "allocate (second)", "permissions", "send/data",
            "channels", "channel data", "refresh", "deallocate",
        ], out
        for framing in ("send_data", "channel_data"):
            stats = result["facts"][framing]
            assert (stats["sent"], stats["delivered"], stats["returned"]) == (3, 3, 3), out
        assert result["facts"]["certificate"]["names"] == ["localhost", "127.0.0.1"], out

        rc, report, out = check(target, "-u", USER, "-p", PASSWORD)
        assert rc == 4, out
        [result] = report["results"]
        assert steps(result)["dtls"] == "fail", out
        assert len(result["diagnoses"]) == 1, out
        # `openssl req -x509` marks the certificate a CA: WebPKI may name that rather than the issuer.
        assert "certificate" in result["diagnoses"][0], out
    finally:
        server.stop()


def test_ice_servers_list_of_turnpike(turnpike):
    """--ice-servers: the list `GET /api/ice-servers` hands a local caller (a stun: URI and TURN
    URIs over UDP and TCP with a REST credential), every URI checked with its credential."""
    server = turnpike(rest_secrets=["check-secret-0123"], relay_ip=["127.0.0.1"])
    if server.http_port is None:
        pytest.skip("this turnpike serves no HTTP")
    url = f"http://127.0.0.1:{server.http_port}/api/ice-servers"
    rc, report, out = check("--ice-servers", url, "--count", "3")
    assert rc == 0, out
    uris = [r["uri"] for r in report["results"]]
    assert any(u.startswith("stun:") for u in uris), out
    assert any(u.startswith("turn:") and u.endswith("transport=udp") for u in uris), out
    assert any(u.startswith("turn:") and u.endswith("transport=tcp") for u in uris), out
    for result in report["results"]:
        assert result["outcome"] == "ok", out
        if result["uri"].startswith("turn:"):
            assert result["facts"]["channel_data"]["returned"] == 3, out


def test_ice_servers_with_a_join_token(turnpike):
    """With a `signaling-secret`, `GET /api/ice-servers` wants a join token: without --token the
    check stops with the server's 401 and a hint (exit 1); with a token from `turnpike token` it
    checks the list (exit 0)."""
    secret = "check-signaling-secret-0123"
    server = turnpike(rest_secrets=["check-secret-0123"], relay_ip=["127.0.0.1"], args=["--signaling-secret", secret])
    if server.http_port is None:
        pytest.skip("this turnpike serves no HTTP")
    url = f"http://127.0.0.1:{server.http_port}/api/ice-servers"
    done = subprocess.run([str(turnpike_bin()), "check", "--ice-servers", url], capture_output=True, text=True,
                          timeout=CHECK_TIMEOUT)
    assert done.returncode == 1, done
    assert "401" in done.stderr and "--token" in done.stderr, done.stderr
    token = subprocess.run([str(turnpike_bin()), "token", "--room", "checks", "--secret", secret],
                           capture_output=True, text=True, check=True).stdout.strip()
    rc, report, out = check("--ice-servers", url, "--token", token, "--count", "2")
    assert rc == 0, out
    assert any(r["uri"].startswith("turn:") for r in report["results"]), out


@pytest.fixture
def netns():
    """A network namespace of our own with its loopback up, deleted afterwards."""
    if shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs ip and nft (iproute2, nftables)")
    name = f"tpcheck-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    # `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: a name with an A and an AAAA
    # record, both on the namespace's loopback, without touching the machine's resolver.
    etc = Path("/etc/netns") / name
    try:
        etc.mkdir(parents=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.0.1 {DUAL}\n::1 {DUAL}\n")
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


NS_PORT, NS_RELAY = 3478, (40000, 40099)
DUAL = "dual.turnpike.test"


@contextlib.contextmanager
def coturn_behind_firewall(netns: str, tmp: Path, drop: str | None, ip: str = "127.0.0.1",
                           relay_ip: str = "127.0.0.1"):
    """coturn in `netns` on IP:NS_PORT (IPv4 only), relaying on RELAY_IP:NS_RELAY, with an nftables
    input rule `drop` (e.g. `udp dport 3478`) in force; yields the command prefix that runs
    inside."""
    inside = ["ip", "netns", "exec", netns]
    if drop is not None:
        rules = tmp / "firewall.nft"
        rules.write_text(
            "table inet tpcheck {\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    {drop} drop\n"
            "  }\n"
            "}\n"
        )
        subprocess.run([*inside, "nft", "-f", str(rules)], check=True)
    log = tmp / "turnserver.log"
    proc = subprocess.Popen([*inside, *coturn_command(tmp, NS_PORT, NS_RELAY, ip, relay_ip)], stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
    try:
        # Ready once it accepts TCP (UDP may be the thing dropped).
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            probe = subprocess.run([*inside, str(turnpike_bin()), "stun", f"stun:{ip}:{NS_PORT}",
                                    "--timeout", "0.5"], capture_output=True, text=True, timeout=10)
            listening = subprocess.run([*inside, "ss", "-ltn", f"sport = :{NS_PORT}"],
                                       capture_output=True, text=True).stdout
            if probe.returncode == 0 or f":{NS_PORT}" in listening:
                break
            assert time.monotonic() < deadline, f"turnserver did not start:\n{log.read_text(errors='replace')}"
            time.sleep(0.2)
        yield inside
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_firewalled_relay_range_against_coturn(tmp_path, netns):
    """Allocations and permissions work but the relay ports are firewalled (an nftables drop on the
    relay range, inside a namespace of our own): exit 7 and the diagnosis names the port range."""
    drop = f"udp dport {NS_RELAY[0]}-{NS_RELAY[1]}"
    with coturn_behind_firewall(netns, tmp_path, drop) as inside:
        rc, report, out = check(f"turn:127.0.0.1:{NS_PORT}", "-u", USER, "-p", PASSWORD, "--count", "3",
                                "--timeout", "1", prefix=inside)
    assert rc == 7, out
    [result] = report["results"]
    assert steps(result)["permissions"] == "ok", out
    assert steps(result)["send/data"] == "fail", out
    assert "relay port range" in " ".join(result["diagnoses"]), out


def test_udp_blocked_but_tcp_works_against_coturn(tmp_path, netns):
    """UDP to the listening port dropped, TCP open: the UDP URI is unreachable (exit 3) and its
    diagnosis says TCP to the same host works; the TCP URI passes every step."""
    with coturn_behind_firewall(netns, tmp_path, f"udp dport {NS_PORT}") as inside:
        rc, report, out = check(f"turn:127.0.0.1:{NS_PORT}", f"turn:127.0.0.1:{NS_PORT}?transport=tcp",
                                "-u", USER, "-p", PASSWORD, "--count", "3", "--timeout", "1", prefix=inside)
    assert rc == 3, out
    udp, tcp = report["results"]
    assert (udp["outcome"], tcp["outcome"]) == ("unreachable", "ok"), out
    said = " ".join(udp["diagnoses"])
    assert "No answer over UDP" in said and "UDP is blocked but TCP to the same host works" in said, out


def test_a_silent_aaaa_record_against_coturn(tmp_path, netns):
    """A name with an AAAA record (::1) where nothing answers and an A record (127.0.0.1) where coturn
    does: the IPv6 Binding is a warning, the check goes on over IPv4 and passes (exit 0), and the
    diagnosis says to listen on ::1 or remove the AAAA record."""
    with coturn_behind_firewall(netns, tmp_path, None) as inside:
        rc, report, out = check(f"turn:{DUAL}:{NS_PORT}", "-u", USER, "-p", PASSWORD, "--count", "2",
                                "--timeout", "1", prefix=inside)
    assert rc == 0, out
    [result] = report["results"]
    assert result["server"] == f"127.0.0.1:{NS_PORT}", out
    assert steps(result)["binding"] == "warn" and steps(result)["other family"] == "ok", out
    assert steps(result)["deallocate"] == "ok", out
    said = " ".join(result["diagnoses"])
    assert f"{DUAL} resolves to ::1 too" in said and "AAAA record" in said, out


def test_missing_external_ip_against_coturn(tmp_path, netns):
    """coturn behind a 1:1 NAT without --external-ip: it listens on a public address
    (203.0.113.10, documentation range) and relays on its private one (10.0.0.10), and hands out
    the private one as the relayed address. Relaying between its own allocations still works
    (exit 0), but the allocate step warns and the diagnosis says to set external-ip."""
    inside = ["ip", "netns", "exec", netns]
    # Both addresses on the namespace's loopback: one host, a public and a private address.
    for address in ("203.0.113.10/32", "10.0.0.10/32"):
        subprocess.run([*inside, "ip", "addr", "add", address, "dev", "lo"], check=True)
    with coturn_behind_firewall(netns, tmp_path, None, ip="203.0.113.10", relay_ip="10.0.0.10") as inside:
        rc, report, out = check(f"turn:203.0.113.10:{NS_PORT}", "-u", USER, "-p", PASSWORD, "--count", "2",
                                prefix=inside)
    assert rc == 0, out
    [result] = report["results"]
    assert steps(result)["allocate"] == "warn", out
    assert result["facts"]["relayed"][0].startswith("10.0.0.10:"), out
    said = " ".join(result["diagnoses"])
    assert "The relayed address 10.0.0.10 is not a public address" in said and "external-ip" in said, out
