"""Amplification regression (RFC 8489 §16.1.2, RFC 8656 §21): what `turnpike serve` sends back to
a spoofed UDP source, measured from outside by amplification.py in a network namespace of its
own (the per-source budget exempts loopback, which cannot be spoofed from the network).

- Unauthenticated TURN requests no client sends (header-only Allocate, Refresh, CreatePermission,
  ChannelBind; Send indications) are dropped; 400 and 438 answers are no larger than their
  requests; the one answer a real client needs, the 401 to its first Allocate, stays within the
  RFC 8489 §9.2.4 minimum (REALM, NONCE, PASSWORD-ALGORITHMS).
- Binding answers are at most 2.2× their request (XOR-MAPPED-ADDRESS is required).
- Over a burst of 1,000 requests in one victim's name, the victim gets at most the budget's
  burst (4 s × 4096 B/s) plus its refill more than was sent in its name.

Needs root and `ip` (namespaces) and coturn's turnserver (measured alongside, not asserted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import turnpike_bin

HERE = Path(__file__).resolve().parent
RATE, BURST_SECONDS = 4096, 4

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("turnserver"),
    reason="needs root, iproute2 and coturn's turnserver",
)


@pytest.fixture(scope="module")
def measured():
    out = subprocess.run(
        [sys.executable, str(HERE / "amplification.py"), "--json", "--bin", str(turnpike_bin())],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def row(measured, name):
    rows = [r for r in measured["rows"] if r["request"] == name]
    assert len(rows) == 1, name
    return rows[0]


@pytest.mark.parametrize(
    "name",
    ["Allocate, header only", "Refresh, header only", "CreatePermission, header only",
     "ChannelBind, header only", "Send indication, header only"],
)
def test_requests_no_client_sends_unauthenticated_are_dropped(measured, name):
    assert row(measured, name)["turnpike"] == 0


@pytest.mark.parametrize(
    "name", ["Allocate + bogus MESSAGE-INTEGRITY", "Allocate, forged NONCE + MESSAGE-INTEGRITY"]
)
def test_refusals_are_no_larger_than_the_request(measured, name):
    r = row(measured, name)
    assert 0 < r["turnpike"] <= r["bytes"], r


def test_first_allocate_challenge_is_minimal(measured):
    # 20 header + 8 ERROR-CODE 401 (no phrase) + 12 REALM "turnpike" + 44 NONCE + 12
    # PASSWORD-ALGORITHMS: what RFC 8489 §9.2.4 requires, nothing more.
    r = row(measured, "Allocate + REQUESTED-TRANSPORT")
    assert (r["bytes"], r["turnpike"]) == (28, 96), r


def test_binding_answers_at_most_2_2x(measured):
    bindings = [r for r in measured["rows"] if r["kind"] == "binding"]
    assert len(bindings) == 6
    for r in bindings:
        assert 0 < r["turnpike"] <= 2.2 * r["bytes"], r


@pytest.mark.parametrize("index", [0, 1, 2])
def test_budget_caps_what_a_spoofed_victim_receives(measured, index):
    burst = measured["bursts"][index]
    ours = burst["turnpike"]
    allowed = ours["sent"] + RATE * BURST_SECONDS + RATE * (ours["seconds"] + 0.5)
    assert 0 < ours["received"] <= allowed, burst
