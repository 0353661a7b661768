"""Mutation testing of Sealring's security-critical modules with mutmut 3.

    python mutation/run.py src/sealring/jose/jwt.py [...]   # the named modules
    python mutation/run.py --all                            # every module of modules.toml

For each module: a scratch directory ``.mutation/<module>/`` gets the sources, the tests and a
``pyproject.toml`` whose ``[tool.mutmut]`` table mutates that one module and selects its tests
(mutation/modules.toml); mutmut then runs, per mutant and on every core, the selected tests that
execute the mutated function. The source tree itself is never modified.

The report gives the score (killed / (total - reviewed equivalents)) and each survivor as
``file:line function``, with the original and the mutated source line. A survivor listed in
mutation/equivalents.toml is reported as equivalent with its reason and left out of the score.

Mutants that change nothing but the message text of a raised exception (``raise X("...")`` ->
``raise X("XX...XX")`` or ``raise X(None)``) are counted apart and left out of the score: callers and tests switch
on the error class and its code (docs/testing.md), never on the message, so a test that pinned
each message's wording would only make rewording a message fail the suite.
Exit status 0 when every module reaches ``--target`` (default 95%), 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "mutation"
SCRATCH = ROOT / ".mutation"

# mutmut's exit-code classification (mutmut.stats.status_by_exit_code), reduced to what the
# score needs. A timeout is a mutant the tests stopped (an endless loop), so it counts as killed.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests"}


@dataclass(frozen=True)
class Equivalent:
    module: str
    function: str
    original: str
    mutated: str
    reason: str


@dataclass
class Survivor:
    name: str
    status: str
    function: str
    line: int
    original: str
    mutated: str
    equivalent: Equivalent | None = None


@dataclass
class Score:
    module: str
    total: int = 0
    killed: int = 0
    messages: int = 0
    survivors: list[Survivor] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    @property
    def equivalents(self) -> int:
        return sum(1 for s in self.survivors if s.equivalent is not None)

    @property
    def counted(self) -> int:
        return self.total - self.messages - self.equivalents

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def load_modules() -> dict[str, list[str]]:
    data = tomllib.loads((HERE / "modules.toml").read_text())
    return {name: list(entry["tests"]) for name, entry in data["modules"].items()}


def load_equivalents() -> list[Equivalent]:
    data = tomllib.loads((HERE / "equivalents.toml").read_text())
    return [
        Equivalent(
            module=e["module"],
            function=e["function"],
            original=normalise(e["original"]),
            mutated=normalise(e["mutated"]),
            reason=e["reason"],
        )
        for e in data.get("equivalent", [])
    ]


def normalise(code: str) -> str:
    """One line per source line, each stripped: equivalents survive re-indentation."""
    return "\n".join(line.strip() for line in code.strip().splitlines())


def functions(source: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method of a module, by the name mutmut reports (``Class.method``)."""
    tree = ast.parse(source)

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{prefix}{child.name}", child

    yield from walk(tree, "")  # type: ignore[misc]


def function_of(mutant: str) -> str:
    """``sealring.jose.jwt.xǁClaimRulesǁ__init____mutmut_3`` -> ``ClaimRules.__init__``."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if "ǁ" in mangled:
        _, cls, name = mangled.split("ǁ")
        return f"{cls}.{name}"
    return mangled.removeprefix("x_")


def locate(source: str, function: str, original: str, offset: int) -> int:
    """The file line of the mutated code: its first original line inside ``function``.

    ``offset`` (the line within the function that the diff names) breaks ties between
    identical lines.
    """
    lines = source.splitlines()
    spans = {
        name: (node.lineno, node.end_lineno or node.lineno) for name, node in functions(source)
    }
    start, end = spans.get(function, (1, len(lines)))
    first = original.splitlines()[0] if original else ""
    candidates = [n for n in range(start, end + 1) if lines[n - 1].strip() == first]
    if not candidates:
        return start + offset
    return min(candidates, key=lambda n: abs(n - (start + offset)))


def parse_diff(diff: str) -> tuple[str, str, int]:
    """Original lines, mutated lines and the 0-based offset of the change in the function."""
    removed, added, offset, line_no, seen = [], [], 0, 0, False
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            line_no = int(line.split()[1].split(",")[0].lstrip("-")) - 1
            continue
        if line.startswith("-"):
            if not seen:
                offset, seen = line_no, True
            removed.append(line[1:])
            line_no += 1
        elif line.startswith("+"):
            if not seen:
                offset, seen = line_no, True
            added.append(line[1:])
        else:
            line_no += 1
    return normalise("\n".join(removed)), normalise("\n".join(added)), offset


def scratch(module: str) -> Path:
    return SCRATCH / module.replace("/", "_").removesuffix(".py")


def prepare(work: Path, module: str, tests: list[str]) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The sources are linked, not copied: mutmut copies them into work/mutants and mutates
    # only the copy. Linking also lets mutmut drop the editable install's path to src from
    # sys.path (it removes the resolved ./src), so the tests import the mutated copy.
    (work / "src").symlink_to(ROOT / "src")
    shutil.copytree(
        ROOT / "tests",
        work / "tests",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"),
    )
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        # Each run starts from a fresh scratch directory: no state to carry over.
        "use_git_change_detection = false\n"
    )
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)


def run_mutmut(work: Path, jobs: int) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "mutmut", "run", f"--max-children={jobs}"]
    log = work / "mutmut.log"
    with log.open("w") as out:
        done = subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603 - fixed command
    if done.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        raise SystemExit(f"mutmut failed on {work.name} (exit {done.returncode}); see {log}")


def collect(module: str, work: Path, equivalents: list[Equivalent]) -> Score:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    source = (ROOT / module).read_text()
    score = Score(module)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        data = SourceFileMutationData(path=Path(module))
        data.load()
        for name, code in sorted(data.exit_code_by_key.items(), key=lambda kv: mutant_order(kv[0])):
            status = status_by_exit_code[code]
            score.total += 1
            if message_only(name, Path(module)):
                score.messages += 1
                continue
            if status in KILLED:
                score.killed += 1
                continue
            if status not in SURVIVED:
                score.other[status] = score.other.get(status, 0) + 1
            function = function_of(name)
            original, mutated, offset = parse_diff(get_diff_for_mutant(name, path=Path(module)))
            survivor = Survivor(
                name=name,
                status=status,
                function=function,
                line=locate(source, function, original, offset),
                original=original,
                mutated=mutated,
            )
            for eq in equivalents:
                if (eq.module, eq.function, eq.original, eq.mutated) == (
                    module,
                    function,
                    original,
                    mutated,
                ):
                    survivor.equivalent = eq
                    break
            score.survivors.append(survivor)
    finally:
        os.chdir(cwd)
    return score


def message_only(name: str, path: Path) -> bool:
    """Whether the mutant changes only the message (first argument) of a raised exception."""
    import libcst as cst
    from mutmut.mutation.diff_apply import (
        read_functions_from_index,
        read_mutant_function,
        read_mutants_module,
        read_original_function,
    )

    pair = read_functions_from_index(name, path)
    if pair is None:
        module = read_mutants_module(path)
        pair = (read_original_function(module, name), read_mutant_function(module, name))
    original, mutated = (ast.parse(cst.Module([f]).code.strip()) for f in pair)
    if ast.dump(original) == ast.dump(mutated):
        return False
    for tree in (original, mutated):
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                first = node.exc.args[0]
                # A literal message, an f-string, or one built with "+" or chosen by "if"; not a value
                # passed on (``exc.message``), which is behaviour.
                # A message mutated to None is still only a message.
                literal = isinstance(first, ast.Constant) and (
                    first.value is None or isinstance(first.value, str)
                )
                if literal or isinstance(first, ast.JoinedStr | ast.BinOp | ast.IfExp):
                    node.exc.args[0] = ast.Constant("message")
    return ast.dump(original) == ast.dump(mutated)


def mutant_order(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number)


def report(score: Score) -> None:
    print(f"\n== {score.module}")
    print(
        f"   score {score.percent:.1f}%: killed {score.killed} / total {score.total}"
        f" - {score.equivalents} equivalent = {score.counted}"
    )
    print(f"   ({score.messages} mutants of exception message text not scored)")
    if score.other:
        print(f"   not decided: {score.other}")
    for s in score.survivors:
        label = "equivalent" if s.equivalent else s.status.upper()
        print(f"   {score.module}:{s.line} {s.function} [{label}] {s.name}")
        for line in s.original.splitlines():
            print(f"       - {line}")
        for line in s.mutated.splitlines() or [""]:
            print(f"       + {line}")
        if s.equivalent:
            print(f"       why equivalent: {s.equivalent.reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths as in mutation/modules.toml")
    parser.add_argument("--all", action="store_true", help="every module of modules.toml")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--target", type=float, default=95.0)
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="report the last run's results again (after editing equivalents.toml)",
    )
    args = parser.parse_args()

    modules = load_modules()
    chosen = list(modules) if args.all else args.modules
    if not chosen:
        parser.error("name a module (see mutation/modules.toml) or pass --all")
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        parser.error(f"not in mutation/modules.toml: {', '.join(unknown)}")
    equivalents = load_equivalents()

    scores = []
    for module in chosen:
        work = scratch(module)
        if not args.report_only:
            prepare(work, module, modules[module])
            run_mutmut(work, args.jobs)
        score = collect(module, work, equivalents)
        report(score)
        scores.append(score)

    print(
        "\nmodule                                      killed / counted (total - equivalent)  score"
    )
    for s in scores:
        print(
            f"{s.module:<44}{s.killed:>6} / {s.counted:<7} ({s.total} - {s.equivalents})"
            f"{s.percent:>12.1f}%"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "module": s.module,
                        "total": s.total,
                        "killed": s.killed,
                        "equivalents": s.equivalents,
                        "messages": s.messages,
                        "survivors": [
                            {"line": v.line, "function": v.function, "name": v.name}
                            for v in s.survivors
                            if v.equivalent is None
                        ],
                    }
                    for s in scores
                ],
                indent=2,
            )
        )
    return 0 if all(s.percent >= args.target for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
