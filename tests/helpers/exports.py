"""What a module offers, for the exact-``__all__`` tests (after httpx's test_exported_members).

A package offers every public attribute it imports from its submodules; a plain module offers
the public names it defines itself (what it merely imports is someone else's surface).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types


def _defined_names(module: types.ModuleType) -> set[str]:
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")} - {"log"}


def offered_names(module: types.ModuleType) -> set[str]:
    """The public surface of ``module`` as its code has it, whatever ``__all__`` says."""
    if hasattr(module, "__path__"):  # a package: its re-exports
        return {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name != "annotations"  # from __future__ import annotations
        }
    return _defined_names(module)


def public_modules(package: str) -> list[str]:
    """``package`` and every module below it whose dotted name has no ``_``-prefixed part."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def assert_all_is_exact(name: str) -> None:
    """``name``'s ``__all__`` lists each offered name once, and nothing else; what it exports
    is defined in the module itself or, for a package, in one of its own modules."""
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "a name is exported twice"
    assert set(exported) == offered_names(module)
    for member in exported:
        value = getattr(module, member)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == name or value.__module__.startswith(f"{name}."), member
