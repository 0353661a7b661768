"""Item 7 of issue 14: the Makefile's venv step (scripts/venv.sh) checks the interpreter first
and rebuilds a .venv that another interpreter made, instead of failing until it is removed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "venv.sh"
VERSION = ".".join(str(n) for n in sys.version_info[:3])


def _check(python: str, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "check"], env={"PATH": "/usr/bin:/bin", "PYTHON": python,
                                     "VENV": str(venv)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that says it is ``version``, as an old python3 on PATH would."""
    fake = tmp_path / f"python{version}"
    major, minor, micro = (int(x) for x in version.split("."))
    fake.write_text(
        "#!/bin/sh\n"
        f'exec {sys.executable} -c "import sys; sys.version_info = ({major}, {minor}, {micro}, '
        '\'final\', 0); exec(sys.argv[1])" "$2"\n'
    )
    fake.chmod(0o755)
    return fake


def _venv(path: Path, version: str, works: bool = True) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text(f"home = /somewhere\nversion = {version}\n")
    python = path / "bin" / "python"
    python.write_text("#!/bin/sh\nexit 0\n" if works else "#!/bin/sh\nexit 127\n")
    python.chmod(0o755)
    (path / ".installed").touch()
    return path


def test_an_old_python_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    old = _fake_python(tmp_path, "3.10.12")
    done = _check(str(old), tmp_path / "venv")
    assert done.returncode == 1
    assert done.stderr == (
        f"make: Sealring needs Python 3.11 or newer; '{old}' is 3.10.12 "
        "(set PYTHON=python3.11, for example)\n"
    )
    missing = _check("no-such-python3", tmp_path / "venv")
    assert missing.returncode == 1
    assert "no 'no-such-python3' on PATH" in missing.stderr


def test_a_venv_made_by_another_python_is_rebuilt(tmp_path: Path) -> None:
    stale = _venv(tmp_path / "venv", "3.10.12")
    done = _check(sys.executable, stale)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"make: rebuilding {stale}: it was made by Python 3.10.12, not {VERSION} "
        f"('{sys.executable}')\n"
    )
    assert not stale.exists()


def test_a_broken_venv_is_rebuilt_and_a_good_one_kept(tmp_path: Path) -> None:
    broken = _venv(tmp_path / "broken", VERSION, works=False)
    assert _check(sys.executable, broken).returncode == 0
    assert not broken.exists()
    good = _venv(tmp_path / "good", VERSION)
    done = _check(sys.executable, good)
    assert (done.returncode, done.stderr) == (0, "")
    assert (good / ".installed").exists()
