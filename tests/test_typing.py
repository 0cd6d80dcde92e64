"""The core library type-checks (mypy): the types state the contract."""

import subprocess
import sys
from pathlib import Path

import pytest

CORE = ["_client", "cancel", "catalog", "chat", "errors", "hardware", "models", "names",
        "policy", "progress", "pull", "pull_broadcast", "pull_disk", "pull_job", "pull_reader",
        "pull_registry", "pull_watchdog", "types", "discovery", "estimate", "gguf", "hub",
        "usage", "settings", "netaddr"]


def test_core_type_checks():
    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parent.parent
    files = [str(root / "contextpilot" / f"{m}.py") for m in CORE]
    result = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports",
                             "--no-incremental", *files], capture_output=True, text=True,
                            cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
