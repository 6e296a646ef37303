"""Scraping `GET /metrics` (OpenMetrics text) of `turnpike serve` and reading series out of it."""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Callable

Labels = frozenset[tuple[str, str]]
Series = dict[tuple[str, Labels], float]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> Series:
    """Every sample of an exposition: (name, labels) -> value."""
    out: Series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def scrape(address: tuple[str, int], path: str = "/metrics") -> Series:
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    assert text.rstrip().endswith("# EOF"), text[-200:]
    return parse(text)


def value(series: Series, name: str, **labels: str) -> float:
    """The sample `name{labels}`; fails when the scrape does not have it."""
    key = (name, frozenset(labels.items()))
    assert key in series, f"no {name}{labels} in the scrape: {sorted(k for k in series if k[0] == name)}"
    return series[key]


def wait_for(address: tuple[str, int], check: Callable[[Series], bool], timeout: float = 10.0) -> Series:
    """Scrapes until `check` holds (the relay loops count asynchronously to the test)."""
    deadline = time.monotonic() + timeout
    while True:
        series = scrape(address)
        if check(series) or time.monotonic() > deadline:
            return series
        time.sleep(0.05)
