"""The command line over a fleet (issue 18, item 6): ``hosts``, ``--host NAME`` on each
command, ``pull --all-hosts``; what it prints, on which stream, and its exit codes."""

from __future__ import annotations

import pytest

from contextpilot import cli
from tests.test_fleet import two  # noqa: F401 - the fixture


@pytest.fixture
def fleet_env(two, dead_host, monkeypatch):
    a, b = two
    monkeypatch.setenv("OLLAMA_HOSTS", f"gpu1={a.url},gpu2={b.url},gpu3={dead_host}")
    return a, b


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_hosts_lists_each_host_with_its_state(fleet_env, dead_host, capsys):
    a, b = fleet_env
    code, out, err = run(capsys, "hosts")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "ADDRESS", "STATE", "VERSION", "MODELS", "LOADED"],
        ["gpu1", a.url, "up", "0.33.0", "2", "-"],
        ["gpu2", b.url, "up", "0.33.0", "1", "-"],
        ["gpu3", dead_host, "down", "-", "-", "-"]]
    assert err == "gpu3 refused the connection (just now).\n"


def test_hosts_with_every_host_down_is_exit_1(dead_host, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOSTS", f"gpu1={dead_host}")
    code, out, err = run(capsys, "hosts")
    assert code == 1 and "down" in out and err == "gpu1 refused the connection (just now).\n"


def test_list_shows_every_host_and_host_narrows_it(fleet_env, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "SIZE", "PARAMS", "QUANT", "HOSTS", "LOADED", "ON"],
        ["qwen3:0.6b", "1.5", "MB", "751M", "Q4_K_M", "gpu1", "-"],
        ["llama3.2:latest", "3.0", "MB", "3.2B", "Q4_K_M", "gpu1,", "gpu2", "-"]]
    code, out, _ = run(capsys, "list", "--host", "gpu2")
    assert code == 0 and "qwen3" not in out and "llama3.2:latest" in out


def test_chat_is_routed_and_says_which_host_was_skipped(fleet_env, capsys):
    a, b = fleet_env
    a.faults.refuse = True
    code, out, err = run(capsys, "chat", "llama3.2", "hello")
    assert (code, out) == (0, "You said: hello\n")
    assert err == "(gpu1 did not answer; gpu3 did not answer; answered by gpu2)\n"
    assert len(b.chat_requests) == 1


def test_chat_on_a_named_host(fleet_env, capsys):
    a, b = fleet_env
    code, out, _ = run(capsys, "chat", "llama3.2", "hello", "--host", "gpu2")
    assert (code, out) == (0, "You said: hello\n")
    assert (len(a.chat_requests), len(b.chat_requests)) == (0, 1)


def test_pull_all_hosts_names_the_host_that_failed(fleet_env, capsys):
    a, b = fleet_env
    code, out, err = run(capsys, "pull", "mistral", "--all-hosts")
    assert code == 1
    assert out == ("Model 'mistral:latest' is ready on gpu1 (4.0 MB).\n"
                   "Model 'mistral:latest' is ready on gpu2 (4.0 MB).\n")
    assert err.splitlines()[-1].startswith(
        "Error: Downloading 'mistral:latest' failed on gpu3. gpu3: Cannot connect to Ollama")
    assert "Traceback" not in err


def test_pull_without_a_host_goes_where_a_chat_would(fleet_env, capsys):
    a, b = fleet_env
    code, out, _ = run(capsys, "pull", "mistral")
    assert (code, out) == (0, "Model 'mistral:latest' is ready on gpu1 (4.0 MB).\n")
    assert b.pull_requests == {}


def test_rm_asks_which_host_when_the_model_is_on_several(fleet_env, capsys):
    a, b = fleet_env
    code, _, err = run(capsys, "rm", "llama3.2")
    assert code == 1 and err == ("Error: 'llama3.2:latest' is installed on gpu1, gpu2: say "
                                 "which with --host NAME, or --all-hosts for every one.\n")
    code, out, _ = run(capsys, "rm", "qwen3:0.6b")
    assert (code, out) == (0, "Deleted 'qwen3:0.6b' on gpu1.\n")
    code, out, _ = run(capsys, "rm", "llama3.2", "--host", "gpu2")
    assert (code, out) == (0, "Deleted 'llama3.2'.\n") and "llama3.2:latest" in a.installed_names()


def test_ps_shows_the_host_of_each_model(fleet_env, capsys):
    run(capsys, "chat", "llama3.2", "hi", "--host", "gpu2")
    code, out, _ = run(capsys, "ps")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["llama3.2:latest", "gpu2"]


@pytest.mark.parametrize("argv, message", [
    (["pull", "x", "--host", "gpu1", "--all-hosts"], "use --host NAME or --all-hosts, not both"),
    (["list", "--host", "gpu1", "--ollama-host", "http://x"], "or --ollama-host URL, not both"),
])
def test_conflicting_host_options_are_usage_errors(fleet_env, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err


@pytest.mark.parametrize("name", ["../gpu1", "http://127.0.0.1:11434", "gpu9"])
def test_an_unknown_host_is_exit_1_before_any_request(fleet_env, capsys, name):
    a, b = fleet_env
    code, out, err = run(capsys, "chat", "llama3.2", "hi", "--host", name)
    assert code == 1 and out == ""
    assert err.startswith(f"Error: There is no host {name!r} here: choose one of gpu1, gpu2, "
                          f"gpu3 (or auto).")
    assert a.requests == [] == b.requests


def test_a_bad_ollama_hosts_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOSTS", "gpu1=http://x:1,gpu1=http://y:2")
    code, out, err = run(capsys, "list")
    assert code == 1 and out == ""
    assert err == ("Error: OLLAMA_HOSTS='gpu1=http://x:1,gpu1=http://y:2' is not valid. The "
                   "entry 'gpu1=http://y:2' names 'gpu1' a second time (each host needs a name "
                   "of its own). Set it to a comma list of name=url or url, e.g. "
                   "gpu1=http://10.0.0.5:11434,gpu2=http://10.0.0.6:11434.\n")


def test_serve_keeps_host_as_the_address_to_bind(capsys):
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0 and "for serve, --host is this address" in " ".join(out.split())
