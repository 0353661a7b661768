"""Prometheus metrics of one application instance (its own ``CollectorRegistry``).

Labels never carry a secret or a token: client ids, grant types, error codes, endpoint names,
key algorithms and states only.  With several workers each process exposes its own counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _KeyStates(Collector):
    def __init__(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sealring_signing_keys", "Signing keys by algorithm and state", labels=["alg", "state"]
        )
        try:
            states = self._source()
        except Exception:  # a scrape must not fail because the database blinked
            states = {}
        for (alg, state), count in sorted(states.items()):
            family.add_metric([alg, state], count)
        yield family


class Metrics:
    def __init__(self, key_states: Callable[[], Mapping[tuple[str, str], int]] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.tokens_issued = Counter(
            "sealring_tokens_issued",
            "Access tokens issued",
            ["grant_type", "client_id"],
            registry=self.registry,
        )
        self.errors = Counter(
            "sealring_oauth_errors",
            "OAuth error responses by endpoint and error code",
            ["endpoint", "error"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sealring_request_duration_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Issue 12: dependencies' outages, and requests the rate limiter let through unchecked.
        self.dependency_up = Gauge(
            "sealring_dependency_up",
            "1 while the dependency answers, 0 during an outage",
            ["dependency"],
            registry=self.registry,
        )
        self.dependency_outages = Counter(
            "sealring_dependency_outages",
            "Outages of a dependency seen by this process",
            ["dependency"],
            registry=self.registry,
        )
        self.rate_limit_bypassed = Counter(
            "sealring_rate_limit_bypassed",
            "Token requests let through unlimited because the rate limiter's store was down",
            registry=self.registry,
        )
        if key_states is not None:
            self.registry.register(_KeyStates(key_states))
        self._issued: dict[tuple[str, str], Callable[[], None]] = {}

    def token_issued(self, grant_type: str, client_id: str) -> None:
        """Count one access token; the labelled child is kept rather than found per token
        (``labels()`` checks, locks and builds a key on every call)."""
        inc = self._issued.get((grant_type, client_id))
        if inc is None:
            inc = self._issued[(grant_type, client_id)] = self.tokens_issued.labels(
                grant_type, client_id
            ).inc
        inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
