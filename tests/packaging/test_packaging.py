"""Packaging (deploy/): the hardened systemd unit passes `systemd-analyze verify` and its
security rating, and the .deb that deploy/build-deb makes unpacks into a throwaway root with the
documented layout and a working binary. Nothing is installed into this machine: dpkg works on
a temporary root (`dpkg --root`), and the maintainer scripts are only read, never run.

The binary is TURNPIKE_BIN (default target/debug/turnpike): the package is made from it with
`deploy/build-deb --binary`, so no release build is needed.
"""

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "turnpike.service"


@pytest.fixture(scope="module")
def binary() -> Path:
    path = Path(os.environ.get("TURNPIKE_BIN", str(REPO / "target" / "debug" / "turnpike")))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"turnpike binary not found at {path}: run `cargo build -p turnpike` or set TURNPIKE_BIN", pytrace=False)
    return path


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command, failing the test with its output unless it exits 0."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=240, **kwargs)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done


def unit_settings(text: str) -> dict[str, list[str]]:
    """KEY -> every value it is given in a unit file."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture(scope="module")
def testable_unit(binary, tmp_path_factory) -> tuple[Path, dict]:
    """The unit with ExecStart pointed at the built binary (verify checks that it exists), and
    an environment whose MANPATH holds the generated pages (verify runs `man` for each
    Documentation= entry)."""
    tmp = tmp_path_factory.mktemp("unit")
    run(binary, "man", "--dir", tmp / "man" / "man1")
    text = UNIT.read_text()
    assert "ExecStart=/usr/bin/turnpike serve --config /etc/turnpike/turnpike.toml" in text
    unit = tmp / "turnpike.service"
    unit.write_text(text.replace("/usr/bin/turnpike", str(binary)))
    return unit, {**os.environ, "MANPATH": str(tmp / "man")}


def test_the_unit_passes_systemd_analyze_verify(testable_unit):
    unit, env = testable_unit
    done = run("systemd-analyze", "verify", unit, env=env)
    assert done.stderr.strip() == "", done.stderr


def test_the_unit_is_hardened(testable_unit):
    settings = unit_settings(UNIT.read_text())
    # Low ports are the only privilege; no capability can be regained.
    assert settings["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert settings["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    for key, value in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "turnpike"),
        ("User", "turnpike"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("RestartPreventExitStatus", "2"),
    ]:
        assert settings.get(key) == [value], (key, settings.get(key))
    assert "@system-service" in settings["SystemCallFilter"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    # systemd's own rating of the sandbox: exposure at most 2.0 of 10 ("OK"); it exits non-zero
    # above the threshold (given in tenths).
    unit, env = testable_unit
    done = run("systemd-analyze", "security", "--offline=yes", "--threshold=20", unit, env=env)
    assert "Overall exposure level" in done.stdout


@pytest.fixture(scope="module")
def deb(binary, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    # Stripped (the debug binary is mostly debug info) and quickly compressed: seconds, not
    # minutes of xz over 150 MB.
    run(REPO / "deploy" / "build-deb", "--binary", binary, "--out", out, "--", "--strip", "--fast")
    debs = list(out.glob("turnpike_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory) -> Path:
    """A throwaway root with its own dpkg database, the package unpacked into it by dpkg.
    `--unpack` places the files and records the package and its conffiles, but configures
    nothing: the postinst would run chrooted into a root that has no shell, and a conffile
    keeps its `.dpkg-new` name until configuration renames it."""
    root = tmp_path_factory.mktemp("root")
    admin = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "status").touch()
    run("dpkg", "--root", root, "--force-not-root", "--unpack", deb)
    return root


@pytest.fixture(scope="module")
def extracted(deb, tmp_path_factory) -> Path:
    """The package's files under their final names, as an installation leaves them."""
    tree = tmp_path_factory.mktemp("extracted")
    run("dpkg-deb", "--extract", deb, tree)
    return tree


LAYOUT = [
    "usr/bin/turnpike",
    "etc/turnpike/turnpike.toml",
    "usr/lib/systemd/system/turnpike.service",
    "usr/share/man/man1/turnpike.1.gz",
    "usr/share/man/man1/turnpike-serve.1.gz",
    "usr/share/man/man1/turnpike-config-check.1.gz",
    "usr/share/bash-completion/completions/turnpike",
    "usr/share/zsh/vendor-completions/_turnpike",
    "usr/share/fish/vendor_completions.d/turnpike.fish",
    "usr/share/doc/turnpike/operations.md",
]


def test_the_package_has_the_documented_layout(extracted):
    for path in LAYOUT:
        assert (extracted / path).is_file(), path
    assert (extracted / "usr/lib/systemd/system/turnpike.service").read_text() == UNIT.read_text()
    page = gzip.decompress((extracted / "usr/share/man/man1/turnpike.1.gz").read_bytes())
    assert b"\n.TH turnpike 1 " in page
    # Readable by root and the service's group only: it may hold `rest-secrets`.
    assert (extracted / "etc/turnpike/turnpike.toml").stat().st_mode & 0o777 == 0o640


def test_dpkg_unpacks_it_into_a_throwaway_root_with_its_conffile(root):
    for path in LAYOUT:
        if path.startswith("etc/"):
            path += ".dpkg-new"
        assert (root / path).is_file(), path
    status = run("dpkg-query", "--root", root, "-W", "-f", "${Status}|${Conffiles}", "turnpike").stdout
    assert status.startswith("install ok unpacked|"), status
    assert " /etc/turnpike/turnpike.toml " in status, "the configuration is a conffile"


def test_the_installed_binary_runs_and_accepts_the_installed_configuration(root, extracted):
    installed = root / "usr/bin/turnpike"
    assert run(installed, "--version").stdout.startswith("turnpike ")
    config = extracted / "etc/turnpike/turnpike.toml"
    assert run(installed, "config", "check", config).stdout.strip() == f"{config}: ok"


def test_the_maintainer_scripts_create_the_user_and_never_enable_the_unit(deb, tmp_path):
    control = tmp_path / "control"
    run("dpkg-deb", "--control", deb, control)
    postinst = (control / "postinst").read_text()
    run("sh", "-n", control / "postinst")
    assert "useradd --system" in postinst
    assert "install -d -o turnpike -g turnpike -m 0750 /var/lib/turnpike" in postinst
    assert "dpkg-statoverride --update --add root turnpike 0640 /etc/turnpike/turnpike.toml" in postinst
    # A fresh configuration has no credentials: the operator enables and starts the service;
    # an upgrade only re-enables a unit that was enabled, and restarts it if it runs.
    assert "deb-systemd-invoke start" not in postinst, postinst
    assert postinst.count("deb-systemd-helper enable") == 1, postinst
    assert "deb-systemd-helper --quiet was-enabled turnpike.service" in postinst, postinst


def test_the_dockerfile_mirrors_the_package():
    """The image is not built here (no container runtime): its text is checked against the
    unit and the package layout instead."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[1] == "FROM debian:bookworm-slim", stages
    final = lines[lines.index(stages[1]):]
    assert "USER turnpike" in final, "the server runs as an unprivileged user"
    entry = next(line for line in final if line.startswith("ENTRYPOINT "))
    cmd = next(line for line in final if line.startswith("CMD "))
    argv = json.loads(entry.removeprefix("ENTRYPOINT ")) + json.loads(cmd.removeprefix("CMD "))
    exec_start = unit_settings(UNIT.read_text())["ExecStart"][0].split()
    assert argv == exec_start, (argv, exec_start)
    assert "49152-65535/udp" in next(line for line in final if line.startswith("EXPOSE ")).split()
