"""Shared fixtures: a clean environment, and a fake Ollama server per test."""

from __future__ import annotations

import os
import sys
from collections import namedtuple
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fake_ollama import FakeModel, FakeOllama  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"

SMALL = FakeModel(name="llama3.2:latest", layers=[3_000_000, 12_000, 500], family="llama",
                  parameter_size="3.2B", quantization="Q4_K_M",
                  capabilities=["completion", "tools"])
THINKER = FakeModel(name="qwen3:0.6b", layers=[1_500_000, 8_000, 300], family="qwen3",
                    parameter_size="751M", quantization="Q4_K_M",
                    capabilities=["completion", "tools", "thinking"], thinking=True)
REMOTE = FakeModel(name="mistral:latest", layers=[4_000_000, 20_000, 700], family="llama",
                   parameter_size="7.2B", quantization="Q4_K_M",
                   capabilities=["completion", "tools"])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Every test starts without OLLAMA_* / CONTEXTPILOT_* / GRADIO_* settings and caches."""
    for key in list(os.environ):
        if key.startswith(("OLLAMA_", "CONTEXTPILOT_", "SPACE_ID")):
            monkeypatch.delenv(key, raising=False)
    from contextpilot import models

    models._cache.clear()
    yield
    models._cache.clear()


GiB = 2**30
Mem = namedtuple("Mem", "total available")
Disk = namedtuple("Disk", "total used free")


@pytest.fixture
def machine(mocker):
    """A 24 GiB machine with 100 GB free and no GPU; tests change the figures in the dict."""
    from contextpilot import machine as this_machine

    state = {"ram": 24 * GiB, "free": 100_000_000_000}
    mocker.patch.object(this_machine.psutil, "virtual_memory",
                        side_effect=lambda: Mem(state["ram"], state["ram"]))
    mocker.patch.object(this_machine.psutil, "disk_usage",
                        side_effect=lambda p: Disk(10**12, 0, state["free"]))
    mocker.patch.object(this_machine.shutil, "which", return_value=None)
    return state


@pytest.fixture
def registry(monkeypatch):
    """A fake Ollama registry as CONTEXTPILOT_REGISTRY_URL, lookups switched on."""
    from tests.fake_registry import FakeRegistry

    reg = FakeRegistry().start()
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_URL", reg.url)
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    yield reg
    reg.stop()


@pytest.fixture
def fake_ollama():
    """A started fake Ollama server with llama3.2 and qwen3:0.6b installed, mistral pullable."""
    srv = FakeOllama()
    srv.add_installed(SMALL)
    srv.add_installed(THINKER)
    srv.add_remote(REMOTE)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def gpus():
    """Two fake Ollama hosts for a test module's fleet: the first has llama3.2 and
    qwen3:0.6b, the second llama3.2; both can pull mistral."""
    from tests.fake_fleet import make_host

    a, b = make_host([SMALL, THINKER], [REMOTE]), make_host([SMALL], [REMOTE])
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def ollama_env(fake_ollama, monkeypatch):
    """OLLAMA_HOST points at the fake server."""
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    return fake_ollama


@pytest.fixture
def dead_host():
    """An address where nothing listens (connection refused)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def offline_registry(clean_env, monkeypatch, tmp_path):
    """Tests never reach out to the public registry, nor write the user's usage file."""
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "0")
    monkeypatch.setenv("CONTEXTPILOT_USAGE_FILE", str(tmp_path / "usage.json"))


@pytest.fixture
def roomy_machine(monkeypatch):
    """A machine where every catalog model fits (1 TB free disk, 256 GB RAM, no GPU), so
    UI tests do not depend on the host running them; tests shrink it to make things not fit."""
    from contextpilot import machine

    monkeypatch.setattr(machine, "free_disk", lambda path=None: 10**12)
    monkeypatch.setattr(machine, "total_memory", lambda: 256 * 2**30)
    monkeypatch.setattr(machine, "gpu_memory", lambda: None)
    return machine


@pytest.fixture
def app_url(fake_ollama):
    """The app for the fake Ollama, launched on a free port; its URL."""
    from tests.ui_helpers import running_app

    with running_app(fake_ollama.url) as url:
        yield url


@pytest.fixture
def client(app_url):
    """A gradio_client session with that app."""
    from tests.ui_helpers import Client

    return Client(app_url, verbose=False)
