"""ensure_ollama(): start a local `ollama serve` when nothing answers, and say what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from urllib.parse import urlsplit

import pytest

import contextpilot as cp
from contextpilot import autostart
from contextpilot.autostart import Autostart, ensure_ollama
from contextpilot.types import ServerStatus
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def log_dir(tmp_path, monkeypatch):
    """The `ollama serve` logs land in this test's own temp dir."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def popen(mocker):
    proc = mocker.Mock(pid=4242)
    proc.poll.return_value = None
    return mocker.patch("contextpilot.autostart.subprocess.Popen", return_value=proc)


@pytest.fixture
def which(mocker):
    return mocker.patch("contextpilot.autostart.shutil.which", return_value="/opt/bin/ollama")


def test_a_running_server_is_left_alone(fake_ollama, popen, which):
    result = ensure_ollama(fake_ollama.url)
    assert result.outcome is Autostart.ALREADY_RUNNING and result.reachable
    assert result.message == f"Ollama is running at {fake_ollama.url}."
    popen.assert_not_called()


def test_a_local_server_is_started_and_waited_for(fake_ollama, popen, which, log_dir):
    fake_ollama.faults.refuse = True  # nothing answers until `ollama serve` "starts"
    popen.side_effect = lambda *a, **kw: (setattr(fake_ollama.faults, "refuse", False),
                                          popen.return_value)[1]
    result = ensure_ollama(fake_ollama.url)
    assert result.outcome is Autostart.STARTED and result.reachable and result.pid == 4242
    assert result.message == f"Started Ollama ('ollama serve') at {fake_ollama.url}."
    (argv,), kw = popen.call_args
    assert argv == ["/opt/bin/ollama", "serve"]
    assert kw["env"]["OLLAMA_HOST"] == urlsplit(fake_ollama.url).netloc  # it binds our port
    assert kw["start_new_session"] and kw["stdin"] is subprocess.DEVNULL
    assert os.path.dirname(result.log_path) == str(log_dir) and os.path.exists(result.log_path)
    assert cp.list_models(fake_ollama.url)  # it really answers now


def test_a_server_that_never_answers_fails_after_the_wait(dead_host, popen, which):
    ticks = iter(range(100))
    naps = []
    result = ensure_ollama(dead_host, wait=5, clock=lambda: next(ticks), sleep=naps.append)
    assert result.outcome is Autostart.FAILED and not result.reachable
    assert result.message == ("Started 'ollama serve', but it did not answer within 5 s. "
                              f"See its log: {result.log_path}")
    assert naps == [autostart.POLL_INTERVAL] * 4  # clock reads 1..4 are before the deadline


def test_a_server_that_exits_is_reported_with_its_code(dead_host, popen, which):
    popen.return_value.poll.return_value = 1
    result = ensure_ollama(dead_host, sleep=pytest.fail)
    assert result.outcome is Autostart.FAILED
    assert result.message.startswith("Started 'ollama serve', but it exited with code 1.")


def test_a_binary_that_cannot_run_is_a_failure(dead_host, popen, which):
    popen.side_effect = PermissionError(13, "Permission denied")
    result = ensure_ollama(dead_host)
    assert result.outcome is Autostart.FAILED
    assert "Could not start '/opt/bin/ollama serve'" in result.message


def test_no_binary_says_how_to_install(dead_host, popen, mocker):
    mocker.patch("contextpilot.autostart.shutil.which", return_value=None)
    result = ensure_ollama(dead_host)
    assert result.outcome is Autostart.NO_BINARY
    assert "Install Ollama: https://ollama.com/download" in result.message
    popen.assert_not_called()


@pytest.mark.parametrize("how", ["env", "argument"])
def test_autostart_can_be_turned_off(dead_host, popen, which, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("CONTEXTPILOT_AUTOSTART", "0")
    result = ensure_ollama(dead_host, autostart=False if how == "argument" else None)
    assert result.outcome is Autostart.DISABLED
    assert result.message.endswith("Start it yourself: ollama serve")
    popen.assert_not_called()


def test_a_remote_host_is_never_started(popen, which, mocker):
    url = "http://gpu-box.example:11434"
    mocker.patch("contextpilot.autostart.server_status",
                 return_value=ServerStatus(host=url, reachable=False, error="refused"))
    result = ensure_ollama(url, autostart=True)
    assert result.outcome is Autostart.REMOTE
    assert "remote host" in result.message and url in result.message
    popen.assert_not_called()


def test_host_comes_from_ollama_host(dead_host, popen, mocker, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", dead_host)
    mocker.patch("contextpilot.autostart.shutil.which", return_value=None)
    assert ensure_ollama().host == dead_host


@pytest.mark.skipif(sys.platform == "win32", reason="a shebang stand-in is POSIX")
def test_a_stand_in_ollama_on_path_is_really_started(dead_host, tmp_path, monkeypatch):
    # An executable called `ollama` that serves the fake on the port in OLLAMA_HOST.
    script = tmp_path / "ollama"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import os, sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from tests.fake_ollama import FakeOllama
        from tests.conftest import SMALL
        assert sys.argv[1:] == ["serve"], sys.argv
        srv = FakeOllama()
        srv.add_installed(SMALL)
        srv._port = int(os.environ["OLLAMA_HOST"].rsplit(":", 1)[1])
        srv.start()
        print("stand-in listening on", srv.url, flush=True)
        threading.Event().wait()
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = ensure_ollama(dead_host)
    try:
        assert result.outcome is Autostart.STARTED, result.message
        assert [m.name for m in cp.list_models(dead_host)] == ["llama3.2:latest"]
        with open(result.log_path) as log:
            assert f"stand-in listening on {dead_host}" in log.read()
    finally:
        proc = autostart._started.pop()
        proc.terminate()
        proc.wait(10)
