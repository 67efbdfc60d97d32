"""Reading a daemon's ``/healthz``, ``/readyz`` and ``/metrics`` over real HTTP.

:func:`scrape` parses the Prometheus text with ``prometheus_client``'s own parser, as a
Prometheus server would; :func:`value` picks one sample out of it.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["ISO", "get_json", "scrape", "value"]

#: how every time in the health report looks: ISO 8601, UTC, milliseconds
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a GET, 4xx/5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def scrape(url: str) -> dict[str, Metric]:
    """``GET /metrics`` parsed: metric families by name (counters without ``_total``)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of sample ``sample`` (``floorstream_source_posts_total``…) with exactly
    ``labels`` among its labels (other labels must be absent: ``le`` for buckets)."""
    for family in families.values():
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    return None
