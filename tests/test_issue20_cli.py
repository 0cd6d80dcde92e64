"""Issue 20 at the command line (items 7 and 8): what `python -m contextpilot` says and
the codes it exits with, against the fake Ollama."""

from __future__ import annotations

import re

import pytest

from contextpilot import cli, console
from contextpilot.pull import _job
from tests.test_console import Terminal


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- item 8: fit answers with its exit code ------------------------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_item8_fit_exits_0_for_a_model_that_fits(ollama_env, capsys):
    code, out, _ = _run(capsys, "fit", "mistral")
    assert code == 0 and "mistral:latest fits" in out


def test_item8_fit_exits_3_for_a_model_that_may_not_fit(ollama_env, capsys, machine):
    machine["ram"] = 2 * 2**30  # llama3.1:405b needs far more
    code, out, _ = _run(capsys, "fit", "llama3.1:405b")
    assert code == cli.EXIT_MAY_NOT_FIT == 3 and "of memory" in out


@pytest.mark.usefixtures("machine")
def test_item8_fit_exits_4_for_a_model_that_does_not_exist(ollama_env, registry, capsys):
    code, out, _ = _run(capsys, "fit", "someone/nothing:here")
    assert code == cli.EXIT_NO_SUCH_MODEL == 4
    assert "has no model someone/nothing:here" in out


@pytest.mark.usefixtures("machine")
def test_item8_fit_exits_5_when_the_size_cannot_be_found(ollama_env, capsys, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_SIZE_PROBE", "0")  # offline, no probe: nobody can say
    code, out, _ = _run(capsys, "fit", "someone/unlisted:1b")
    assert code == cli.EXIT_FIT_UNKNOWN == 5 and "not known" in out


def test_item8_the_exit_codes_are_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for words in ("3 it may not fit", "4 there is no such model", "5 its size could not"):
        assert words in cli.__doc__.replace("\n", " ")
    assert "`fit`: 0 it fits" in readme and "3 it may not fit" in readme


# -- item 7: fit for an installed model ----------------------------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_item7_fit_for_an_installed_model_quotes_the_installed_copy(ollama_env, capsys):
    """llama3.2 is in the catalog as a 2.0 GB download; the copy installed here is 3.0 MB."""
    code, out, _ = _run(capsys, "fit", "llama3.2")
    assert code == 0
    assert out.startswith("llama3.2:latest is installed (3.0 MB) and fits")
    assert "(size from the installed copy)" in out
    assert "2.0 GB" not in out and "download" not in out


# -- item 8: pull into a log, and right after a resume ---------------------------------------

def test_item8_pull_into_a_log_writes_one_line_per_step_and_tenth(ollama_env, capsys):
    ollama_env.chunk_size, ollama_env.event_delay = 100_000, 0.03  # ~1.2 s, 40 counts
    code, _, err = _run(capsys, "pull", "mistral")
    assert code == 0
    assert "\r" not in err and "\x1b" not in err  # no redraws, no cursor moves
    lines = err.splitlines()
    assert len(lines) == len(set(lines)) and len(lines) <= 16, lines
    assert lines[0] == "mistral: pulling manifest"
    assert lines[-1] == "mistral: done 100% · 4.0 MB / 4.0 MB"
    tenths = [int(m.group(1)) for m in map(re.compile(r"mistral: downloading (\d+)%").match,
                                           lines) if m]
    assert tenths == sorted(tenths) and len(tenths) >= 5
    assert len({t // 10 for t in tenths}) == len(tenths)  # one line per 10%


def _interrupted_at_2_mb(fake) -> None:
    fake.chunk_size, fake.event_delay = 100_000, 0.01  # ~10 MB/s
    fake.faults.drop_pull_after = 2_000_000
    with pytest.raises(Exception):
        list(console.pull_with_progress("mistral", fake.url, file=Terminal()))
    fake.faults.drop_pull_after = None
    assert fake.partial_bytes("mistral") == 2_000_000


def test_item8_a_pull_resumed_in_a_new_process_says_so(ollama_env, capsys, monkeypatch):
    _interrupted_at_2_mb(ollama_env)
    monkeypatch.setattr(_job, "_partials", {})  # a new CLI process knows nothing of it
    code, _, err = _run(capsys, "pull", "mistral")
    assert code == 0
    said = re.search(r"^Resumed from (\d\.\d) MB$", err, re.M)
    assert said and 1.5 <= float(said.group(1)) <= 2.0, err


def test_item8_right_after_a_resume_the_speed_is_the_downloads(fake_ollama, monkeypatch):
    """tqdm's own rate counted the 2 MB kept on disk as bytes of the first moment."""
    _interrupted_at_2_mb(fake_ollama)
    fake_ollama.chunk_size, fake_ollama.event_delay = 40_000, 0.02  # 2 MB/s for a second
    monkeypatch.setattr(_job, "_partials", {})
    out = Terminal()
    console.pull_with_progress("mistral", fake_ollama.url, file=out)
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    speeds = [float(n) * units[u] for n, u in
              re.findall(r"(\d+(?:\.\d+)?) ?([kKMGT]?B)/s", out.getvalue())]
    assert speeds, out.getvalue()
    assert max(speeds) < 8e6, sorted(speeds)[-3:]  # ~2 MB/s, never the kept 2 MB at once


def test_item3_a_stalled_pull_says_so_in_the_log(ollama_env, capsys, monkeypatch):
    """Real Ollama repeats its count every 60 ms while the registry stalls: the log says
    that no data came, once, instead of a speed and a time left."""
    import threading

    from contextpilot.pull import progress

    # seconds, so the test is short (raising=False: the test says why an older build fails)
    monkeypatch.setattr(progress, "STALL_NOTICE", 1.0, raising=False)
    ollama_env.chunk_size, ollama_env.event_delay = 100_000, 0.01
    ollama_env.faults.stall_pull_after, ollama_env.faults.stall_repeat = 1_000_000, True
    threading.Timer(2.0, ollama_env.release).start()
    code, _, err = _run(capsys, "pull", "mistral")
    assert code == 0
    stalled = [line for line in err.splitlines() if "no data for" in line]
    assert stalled == ["mistral: downloading 25% · 1.0 MB / 4.0 MB · no data for 1 s — "
                       "Ollama is retrying"], err
