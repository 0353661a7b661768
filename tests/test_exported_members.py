"""Each public package exports exactly what its ``__all__`` says (httpx's test_exported_members).

``sealring.resource`` has its own test (tests/resource/test_exports.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import sealring
import sealring.server

# Names a module gets from `from __future__ import annotations` and `typing.TYPE_CHECKING`.
_NOT_EXPORTS = {"annotations", "TYPE_CHECKING"}
# Dunder names a package exports on purpose.
_PUBLIC_DUNDERS = {"__version__"}


def _public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name in _PUBLIC_DUNDERS)
        and name not in _NOT_EXPORTS
        and not isinstance(value, ModuleType)  # submodules appear once imported anywhere
    }


PACKAGES = [
    "sealring",
    "sealring.server",
    "sealring.server.endpoints",
    "sealring.server.grants",
    "sealring.server.http",
    "sealring.server.protocol",
    "sealring.server.stores",
    "sealring.server.tokens",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exact(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(set(exported)) == len(exported)
    for member in exported:
        getattr(package, member)  # lazily provided names resolve too
    assert _public_names(package) <= set(exported)


def test_the_server_package_exports_the_app_and_its_settings() -> None:
    assert set(sealring.server.__all__) == {"create_app", "Settings", "SettingsError"}
    from sealring.server.app import create_app
    from sealring.server.settings import Settings

    assert sealring.server.create_app is create_app
    assert sealring.server.Settings is Settings
    with pytest.raises(AttributeError):
        _ = sealring.server.no_such_name  # type: ignore[attr-defined]


def test_every_name_in_a_server_module_all_exists() -> None:
    for info in pkgutil.walk_packages(sealring.server.__path__, "sealring.server."):
        module = importlib.import_module(info.name)
        for member in getattr(module, "__all__", ()):
            assert hasattr(module, member), f"{info.name}.__all__ names missing {member}"
