"""The command line: what it prints, on which stream, and its exit codes."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import contextpilot as cp
from contextpilot import cli, console
from tests.conftest import ROOT


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_a_table_of_installed_models(ollama_env, capsys):
    code, out, err = _run(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].split() == ["NAME", "SIZE", "PARAMS", "QUANT", "MODIFIED"]
    assert lines[1].split()[:5] == ["qwen3:0.6b", "1.5", "MB", "751M", "Q4_K_M"]
    assert lines[2].split()[:5] == ["llama3.2:latest", "3.0", "MB", "3.2B", "Q4_K_M"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_ollama_host_option_before_or_after_the_command(fake_ollama, capsys, where):
    argv = (["--ollama-host", fake_ollama.url, "list"] if where == "before"
            else ["list", "--ollama-host", fake_ollama.url])
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "llama3.2:latest" in out


def test_unreachable_ollama_is_exit_1_with_the_message_on_stderr(dead_host, capsys):
    code, out, err = _run(capsys, "--ollama-host", dead_host, "list")
    assert code == 1 and out == ""
    assert err == (f"Error: Cannot connect to Ollama server at {dead_host}. Please ensure Ollama "
                   f"is installed and running. Install: https://ollama.com/download | "
                   f"Start: 'ollama serve'\n")


@pytest.mark.parametrize("argv", [[], ["bogus"], ["pull"], ["serve", "--auth", "nopassword"],
                                  ["serve", "--port", "x"]])
def test_usage_errors_are_exit_2(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("usage: contextpilot") and "Traceback" not in err


def test_help_is_exit_0(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "serve" in out and "pull" in out


def test_invalid_model_name_is_exit_1_before_any_request(ollama_env, capsys):
    code, _, err = _run(capsys, "pull", "../x")
    assert code == 1 and err.startswith("Error: Invalid model name '../x'")
    assert ollama_env.pull_requests == {}


def test_pull_draws_a_bar_and_says_the_model_is_ready(ollama_env, capsys):
    code, out, err = _run(capsys, "pull", "mistral")
    assert code == 0
    assert out == "Model 'mistral:latest' is ready (4.0 MB).\n"
    # stderr is not a terminal here: one line per step, no bar redraws (issue 20); the
    # weights only: the small layers finish inside a tick and are never announced
    assert "mistral: done 100% · 4.0 MB / 4.0 MB\n" in err and "\r" not in err
    assert "mistral:latest" in ollama_env.installed_names()


def test_pull_of_an_unknown_model_is_exit_1(ollama_env, capsys):
    code, out, err = _run(capsys, "pull", "no-such-model")
    assert code == 1 and out == ""
    assert err.rstrip().splitlines()[-1].startswith(
        "Error: Model 'no-such-model:latest' was not found in the Ollama registry.")
    assert "Traceback" not in err


def test_chat_streams_the_answer_with_thinking_apart(ollama_env, capsys):
    code, out, err = _run(capsys, "chat", "qwen3:0.6b", "hello there")
    assert code == 0 and err == ""
    assert out == "> Thinking about: hello there\n\nYou said: hello there\n"


def test_chat_can_hide_thinking_and_send_a_system_prompt(ollama_env, capsys):
    code, out, _ = _run(capsys, "chat", "qwen3:0.6b", "hi", "--hide-thinking",
                        "--system", "be brief")
    assert code == 0 and out == "You said: hi\n"
    assert ollama_env.chat_requests[-1]["messages"][0] == {"role": "system",
                                                           "content": "be brief"}


def test_chat_pulls_a_missing_model_with_a_bar_first(ollama_env, capsys):
    code, out, err = _run(capsys, "chat", "mistral", "hi")
    assert code == 0 and out == "You said: hi\n"
    assert "mistral:latest: done 100% · 4.0 MB / 4.0 MB\n" in err
    assert ollama_env.pull_requests["mistral:latest"] == 1


def test_chat_without_pull_fails_for_a_missing_model(ollama_env, capsys):
    code, out, err = _run(capsys, "chat", "mistral", "hi", "--no-pull")
    assert code == 1 and out == ""
    assert err == ("Error: Model 'mistral:latest' is not installed. Please pull it first: "
                   "ollama pull mistral:latest\n")


def test_chat_without_prompt_answers_each_stdin_line_with_history(ollama_env, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n\nsecond\n"))
    code, out, _ = _run(capsys, "chat", "llama3.2")
    assert code == 0 and out == "You said: hi\nYou said: second\n"
    roles = [m["role"] for m in ollama_env.chat_requests[-1]["messages"]]
    assert roles == ["user", "assistant", "user"]


def test_rm_deletes_then_reports_a_missing_model(ollama_env, capsys):
    assert _run(capsys, "rm", "llama3.2")[:2] == (0, "Deleted 'llama3.2'.\n")
    assert "llama3.2:latest" not in ollama_env.installed_names()
    code, out, err = _run(capsys, "rm", "llama3.2")
    assert code == 1 and out == "" and "'llama3.2:latest' is not installed" in err


def test_ps_lists_loaded_models(ollama_env, capsys):
    assert _run(capsys, "ps")[1] == "No models loaded.\n"
    cp.load_model("llama3.2")
    code, out, _ = _run(capsys, "ps")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NAME", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    assert lines[1].startswith("llama3.2:latest") and "minutes from now" in lines[1]


def test_serve_builds_and_launches_the_app_with_the_options(ollama_env, capsys, mocker):
    import contextpilot.ui

    build = mocker.patch.object(contextpilot.ui, "build_app")
    code, _, err = _run(capsys, "serve", "--ollama-host", ollama_env.url, "--host", "0.0.0.0",
                        "--port", "8123", "--auth", "ann:s3cret:x")
    assert code == 0
    build.assert_called_once()
    assert build.call_args.kwargs["host"] == ollama_env.url
    assert build.call_args.kwargs["policy"].shared  # bound beyond loopback: shared rules
    build.return_value.launch.assert_called_once_with(
        server_name="0.0.0.0", server_port=8123, share=False, auth=("ann", "s3cret:x"),
        max_file_size="20mb")
    assert f"Ollama is running at {ollama_env.url}." in err


def test_serve_defaults_to_loopback_and_takes_auth_from_the_environment(ollama_env, capsys,
                                                                        mocker, monkeypatch):
    import contextpilot.ui

    monkeypatch.setenv("CONTEXTPILOT_AUTH", "op:pw")
    build = mocker.patch.object(contextpilot.ui, "build_app")
    assert _run(capsys, "serve")[0] == 0
    build.assert_called_once()
    assert build.call_args.kwargs["host"] is None
    policy = build.call_args.kwargs["policy"]
    assert not policy.explicit  # not shared at launch: decided per request (policy.Visit)
    build.return_value.launch.assert_called_once_with(
        server_name="127.0.0.1", server_port=None, share=False, auth=("op", "pw"),
        max_file_size="20mb")


# -- Ctrl-C -----------------------------------------------------------------------------------

def test_ctrl_c_during_a_pull_is_130_and_keeps_the_partial(ollama_env, capsys, monkeypatch):
    ollama_env.chunk_size = 250_000
    ollama_env.faults.stall_pull_after = 1_000_000  # the stream stays open at 1 MB
    real_show = console.PullBar.show

    def show(self, p):
        real_show(self, p)
        if p.step == "download":
            _wait_for(lambda: ollama_env.partial_bytes("mistral") == 1_000_000)
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    monkeypatch.setattr(console.PullBar, "show", show)
    code, out, err = _run(capsys, "pull", "mistral")
    assert code == 130 and out == ""
    assert "The download can be resumed" in err and "Traceback" not in err
    assert ollama_env.disconnected.wait(2)
    assert ollama_env.partial_bytes("mistral") > 0


def _wait_for(condition, seconds: float = 30.0) -> None:
    """Poll the fake server's state (bounded); it changes in its own threads."""
    tick, deadline = threading.Event(), time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        tick.wait(0.02)
    assert condition()


# -- a real process -----------------------------------------------------------------------

def _env(url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CONTEXTPILOT_"))}
    return dict(env, OLLAMA_HOST=url, PYTHONPATH=str(ROOT))


def _cli(*args: str) -> list:
    return [sys.executable, "-m", "contextpilot", *args]


def test_python_m_contextpilot_list(fake_ollama):
    done = subprocess.run(_cli("list"), env=_env(fake_ollama.url), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert "llama3.2:latest" in done.stdout and "qwen3:0.6b" in done.stdout


def test_python_m_contextpilot_failure_has_no_traceback(dead_host):
    done = subprocess.run(_cli("chat", "llama3.2", "hi"), env=_env(dead_host), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"Error: Cannot connect to Ollama server at {dead_host}.")
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_sigint_stops_a_pull_in_a_real_process(fake_ollama):
    fake_ollama.chunk_size = 250_000
    fake_ollama.faults.stall_pull_after = 1_000_000
    proc = subprocess.Popen(_cli("pull", "mistral"), env=_env(fake_ollama.url), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: fake_ollama.partial_bytes("mistral") == 1_000_000)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out == ""
    # where the bar stood, when the client had read a size before the signal (under load it
    # may not have read any progress line yet)
    assert re.search(r"^Stopped downloading 'mistral'( at [\d.]+ (B|KB|MB) of 4\.0 MB)?\.",
                     err, re.M)
    assert "The download can be resumed" in err and "Traceback" not in err
    assert fake_ollama.disconnected.wait(2)
    assert fake_ollama.partial_bytes("mistral") == 1_000_000
