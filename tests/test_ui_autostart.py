"""The status line when Ollama is not running: start it when we can, else say how to."""

from __future__ import annotations

import html
import subprocess

from contextpilot import autostart
from tests.test_ui_api import answers, chat
from tests.ui_helpers import Client, running_app


def test_no_ollama_binary_says_how_to_install(dead_host, mocker):
    mocker.patch.object(autostart.shutil, "which", return_value=None)
    with running_app(dead_host) as url:
        _, (messages, _bar, _dd, _note, status) = chat(Client(url, verbose=False), "hi",
                                                       "llama3.2")
    assert f"Cannot connect to Ollama server at {dead_host}" in status
    assert "Install Ollama: https://ollama.com/download" in status
    assert messages[-1]["content"].startswith("⚠️ Cannot connect")


def test_local_ollama_is_started_and_the_status_says_so(fake_ollama, mocker):
    fake_ollama.faults.refuse = True  # installed but not running
    mocker.patch.object(autostart.shutil, "which", return_value="/usr/local/bin/ollama")

    def serve(binary, url, log_path):  # what `ollama serve` does: start answering
        assert binary == "/usr/local/bin/ollama" and url == fake_ollama.url
        fake_ollama.faults.refuse = False
        return mocker.Mock(spec=subprocess.Popen, pid=4242)

    spawn = mocker.patch.object(autostart, "_spawn", side_effect=serve)
    with running_app(fake_ollama.url) as url:
        client = Client(url, verbose=False)
        _, (_messages, _bar, _dd, _note, status) = chat(client, "hi", "llama3.2")
        assert "Started Ollama ('ollama serve')" in html.unescape(status)
        _, (messages, *_rest) = chat(client, "again", "llama3.2")
    assert answers(messages)[-1] == "You said: again"
    spawn.assert_called_once()


def test_remote_host_is_never_started(mocker):
    which = mocker.patch.object(autostart.shutil, "which", return_value="/usr/bin/ollama")
    spawn = mocker.patch.object(autostart, "_spawn")
    down = mocker.Mock(reachable=False, host="http://gpu-box.invalid:11434", error="down")
    mocker.patch.object(autostart, "server_status", return_value=down)
    import contextpilot

    mocker.patch.object(contextpilot, "server_status", return_value=down)
    from contextpilot.ui.service import Service
    from contextpilot.policy import AccessPolicy

    line = Service("http://gpu-box.invalid:11434", AccessPolicy(shared=False), False).status_html()
    assert "remote host" in line and "does not start Ollama there" in line
    spawn.assert_not_called()
    which.assert_not_called()
