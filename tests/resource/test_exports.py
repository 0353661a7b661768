"""Every public module of sealring.resource offers exactly what its __all__ says (cf. httpx's
tests/test_exported_members.py): a name added without being exported, or exported without
existing, fails here."""

from __future__ import annotations

import pytest

from tests.helpers.exports import assert_all_is_exact, public_modules


@pytest.mark.parametrize("name", public_modules("sealring.resource"))
def test_resource_all_is_exact(name: str) -> None:
    assert_all_is_exact(name)
