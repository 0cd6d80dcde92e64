"""The core library type-checks (mypy): the types state the contract."""

import subprocess
import sys
from pathlib import Path

import pytest

FRONT_ENDS = ("__init__.py", "__main__.py", "cli.py", "console.py")
"The package's roof and its text front ends; the Gradio front end (ui/) is left out too."


def test_core_type_checks():
    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parent.parent
    package = root / "contextpilot"
    files = sorted(str(p) for p in package.rglob("*.py") if "ui" not in p.relative_to(
        package).parts and p.relative_to(package).as_posix() not in FRONT_ENDS)
    assert len(files) > 25  # every service, the talker and the pure values
    result = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports",
                             "--no-incremental", *files], capture_output=True, text=True,
                            cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
