"""The public surface of sealring.resource is exactly what __all__ says (cf. httpx)."""

from __future__ import annotations

import sealring.resource as resource


def test_all_is_exact() -> None:
    public = {name for name in dir(resource) if not name.startswith("_")}
    modules = {
        "bearer",
        "cache",
        "errors",
        "example_api",
        "integrations",
        "jwks",
        "verifier",
    }
    assert public - modules == set(resource.__all__)
    assert sorted(resource.__all__) == resource.__all__
    for name in resource.__all__:
        assert getattr(resource, name).__module__.startswith("sealring.resource.")
