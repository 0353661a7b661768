"""The mutation-testing lists stay true to the code (docs/testing.md).

`make mutation` is too long for CI, but its two lists are read without it: a reviewed equivalent
mutant whose line has changed no longer describes anything, and a module that moved would be
skipped silently. These checks fail as soon as either happens.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
MUTATION = ROOT / "mutation"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", MUTATION / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up by name while being defined.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


RUN = _runner()
MODULES: dict[str, list[str]] = RUN.load_modules()
EQUIVALENTS = tomllib.loads((MUTATION / "equivalents.toml").read_text()).get("equivalent", [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_mutated_module_and_its_tests_exist(module: str) -> None:
    assert (ROOT / module).is_file(), f"{module} is listed in mutation/modules.toml but missing"
    assert MODULES[module], f"{module} has no tests in mutation/modules.toml"
    for selection in MODULES[module]:
        path = selection.partition("=")[2] if selection.startswith("--") else selection
        path = path.split("::")[0]
        assert (ROOT / path).exists(), f"{module}: test selection {selection} does not exist"


def _describe(entry: dict[str, str]) -> str:
    return f"{entry.get('module')}:{entry.get('function')}: {entry.get('original', '')[:40]!r}"


@pytest.mark.parametrize("entry", EQUIVALENTS, ids=_describe)
def test_every_equivalent_mutant_still_matches_the_code(entry: dict[str, str]) -> None:
    assert set(entry) == {"module", "function", "original", "mutated", "reason"}, entry
    module = entry["module"]
    assert module in MODULES, f"{module} is not a mutated module (mutation/modules.toml)"
    reason = entry["reason"].strip()
    assert reason, "every equivalent gives its reason"
    assert "\n" not in reason, "the reason is one line"
    original = RUN.normalise(entry["original"])
    assert original
    assert RUN.normalise(entry["mutated"]) != original

    source = (ROOT / module).read_text()
    spans = {
        name: (node.lineno, node.end_lineno or node.lineno) for name, node in RUN.functions(source)
    }
    assert entry["function"] in spans, f"{module} has no function {entry['function']}"
    start, end = spans[entry["function"]]
    body = [line.strip() for line in source.splitlines()[start - 1 : end]]
    wanted = original.splitlines()
    found = any(body[i : i + len(wanted)] == wanted for i in range(len(body) - len(wanted) + 1))
    assert found, f"{_describe(entry)}: the original line is no longer in the function"


def test_equivalents_are_listed_once() -> None:
    keys = [
        (e["module"], e["function"], RUN.normalise(e["original"]), RUN.normalise(e["mutated"]))
        for e in EQUIVALENTS
    ]
    assert len(keys) == len(set(keys))


def test_the_equivalent_check_refuses_a_stale_entry() -> None:
    # The check above must be able to fail: a line that is not in the function is not found.
    source = (ROOT / "src/sealring/jose/jwt.py").read_text()
    spans = dict(RUN.functions(source))
    node = spans["_check_claims"]
    body = source.splitlines()[node.lineno - 1 : node.end_lineno]
    assert "if issuer is not None:" in [line.strip() for line in body]
    assert "if issuer is None:" not in [line.strip() for line in body]
