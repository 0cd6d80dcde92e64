"""The pull engine's own guarantees: no deadlock when consumers come and go while the disk
guard aborts, no timed polling, every path ends (no thread, no socket left), and outcomes are
kept. Every wait is bounded; a thread that would hang fails the test instead."""

from __future__ import annotations

import dataclasses

import threading
from datetime import datetime, timedelta, timezone

import psutil
import pytest

import contextpilot as cp
from contextpilot import machine, pull
from contextpilot.pull._registry import Outcomes
from tests.fake_ollama import FakeModel
from tests.ui_helpers import wait_until

ENGINE_THREADS = ("pull ", "stall ")


@pytest.fixture(autouse=True)
def no_old_outcomes():
    pull._outcomes.clear()
    yield
    pull._outcomes.clear()


def engine_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(ENGINE_THREADS)]


def sockets_to(port: int) -> list:
    return [c for c in psutil.Process().net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED]


def assert_nothing_left(fake) -> None:
    wait_until(lambda: not engine_threads(), timeout=5, what="the pull and stall threads")
    wait_until(lambda: fake.open_streams == 0, timeout=5, what="the fake's stream to close")
    port = int(fake.url.rsplit(":", 1)[1])
    wait_until(lambda: not sockets_to(port), timeout=5, what="our sockets to the fake")
    assert not cp.active_pulls(fake.url)


def run(target, *args) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def finished(*threads: threading.Thread, timeout: float = 10) -> None:
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread is stuck (deadlock?)"


def consume(gen, into: dict, first: threading.Event | None = None) -> None:
    """Iterate ``gen`` to its end; its values and its error go into ``into``."""
    into["values"] = []
    try:
        for value in gen:
            into["values"].append(value)
            if first is not None:
                first.set()
    except cp.ContextPilotError as exc:
        into["error"] = exc


# -- the old deadlock ------------------------------------------------------------------------


def test_join_and_leave_while_the_disk_guard_aborts_do_not_deadlock(fake_ollama, mocker,
                                                                      tmp_path, monkeypatch):
    """The disk guard runs in the pull thread; the old engine ran it under the job's lock,
    then took the registry lock to abort, while a joining or leaving consumer took the two
    the other way round. Here the guard blocks until one consumer has joined and another has
    left, then finds the disk too small."""
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    fake_ollama.add_remote(FakeModel(name="phi:latest", layers=[800_000, 100]))
    fake_ollama.chunk_size, fake_ollama.event_delay = 100_000, 0.01
    url = fake_ollama.url
    guard_entered, joined, left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def guard():
        if seen:  # later layers, and later pulls: plenty of room
            return None
        guard_entered.set()
        seen["joined"], seen["left"] = joined.wait(5), left.wait(5)
        return 1_000_000  # mistral's weights are 4 MB

    mocker.patch.object(machine, "guard_disk", side_effect=guard)
    stays, newcomer = {}, {}
    a = run(consume, cp.pull_model("mistral", host=url), stays)
    assert guard_entered.wait(5), "the disk guard was never asked"

    def leave():
        gen = cp.pull_model("mistral", host=url)
        next(gen)  # joined the running pull...
        gen.close()  # ...and leaves it while the guard decides
        left.set()

    b = run(leave)
    j = run(consume, cp.pull_model("mistral", host=url), newcomer, joined)
    finished(a, b, j)
    assert seen == {"joined": True, "left": True}  # neither waited for the guard
    for result in (stays, newcomer):
        error = result["error"]
        assert isinstance(error, cp.PullFailed) and error.kind == "disk full", error
        # the weights' first report comes a tick (100,000 bytes) into their download
        assert "no space left on device: 3.9 MB more is needed" in str(error)
        assert "Free some disk space" in str(error)
    assert fake_ollama.pull_requests["mistral:latest"] == 1  # one pull, all three on it

    again = {}
    finished(run(consume, cp.pull_model("mistral", host=url), again))  # a new pull starts
    assert again["values"][-1].done and fake_ollama.pull_requests["mistral:latest"] == 2

    fake_ollama.faults.stall_pull_after = 300_000
    stalled, cancelled = {}, {}
    s = run(consume, cp.pull_model("phi", host=url), stalled)
    wait_until(lambda: fake_ollama.partial_bytes("phi") == 300_000, what="phi to stall")
    finished(run(lambda: cancelled.update(result=cp.cancel_pull("phi", host=url))), s)
    assert cancelled["result"] is True and isinstance(stalled["error"], cp.PullCancelled)
    assert [o.outcome for o in cp.recent_pulls(url)] == ["cancelled", "done", "failed"]
    assert_nothing_left(fake_ollama)


# -- no timed polling ------------------------------------------------------------------------


def test_a_waiting_consumer_sleeps_until_something_changes(fake_ollama, mocker):
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 1_000_000  # Ollama says nothing at all
    gen = cp.pull_model("mistral", host=fake_ollama.url, stall_timeout=60)
    while next(gen).completed < 1_000_000:
        pass
    job = pull._registry.get((fake_ollama.url, "registry.ollama.ai/library/mistral:latest"))
    waits = mocker.spy(job.broadcast._cond, "wait")
    waiting = threading.Event()
    result = {}
    t = run(lambda: (waiting.set(), result.update(value=next(gen, None))))
    assert waiting.wait(5)
    threading.Event().wait(0.5)  # half a second of silence: nothing to wake for
    assert waits.call_count == 1 and waits.call_args == mocker.call()  # no timeout given
    fake_ollama.faults.stall_pull_after = None
    fake_ollama.release()  # the next event wakes it
    finished(t)
    assert result["value"].completed > 1_000_000
    gen.close()
    assert_nothing_left(fake_ollama)


# -- every path ends -------------------------------------------------------------------------


def _success(fake):
    assert list(cp.pull_model("mistral", host=fake.url))[-1].done


def _failure(fake):
    fake.faults.drop_pull_after = 1_000_000
    with pytest.raises(cp.PullFailed, match="connection lost"):
        list(cp.pull_model("mistral", host=fake.url))


def _ollama_error(fake):
    fake.faults.disk_full()
    with pytest.raises(cp.PullFailed, match="no space left"):
        list(cp.pull_model("mistral", host=fake.url))


def _stall(fake):
    fake.faults.stall_pull_after = 1_000_000
    with pytest.raises(cp.PullFailed, match="stalled"):
        list(cp.pull_model("mistral", host=fake.url, stall_timeout=0.3))


def _cancel(fake):
    fake.faults.stall_pull_after = 1_000_000
    gen = cp.pull_model("mistral", host=fake.url)
    while next(gen).completed < 1_000_000:
        pass
    assert cp.cancel_pull("mistral", host=fake.url)
    with pytest.raises(cp.PullCancelled):
        list(gen)


def _last_consumer_leaves(fake):
    fake.faults.stall_pull_after = 1_000_000
    gens = [cp.pull_model("mistral", host=fake.url) for _ in range(2)]
    for gen in gens:
        next(gen)
    for gen in gens:
        gen.close()


def _disk_guard(fake, tmp_path, monkeypatch, mocker):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    mocker.patch.object(machine, "guard_disk", return_value=1_000_000)
    with pytest.raises(cp.PullFailed) as info:
        list(cp.pull_model("mistral", host=fake.url))
    assert info.value.kind == "disk full"


PATHS = {"success": (_success, "done"), "failure": (_failure, "failed"),
         "ollama error": (_ollama_error, "failed"), "stall": (_stall, "failed"),
         "cancel": (_cancel, "cancelled"), "last consumer leaves": (_last_consumer_leaves,
                                                                     "cancelled"),
         "disk guard": (_disk_guard, "failed")}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_ends_with_no_thread_and_no_socket_left(fake_ollama, path, tmp_path,
                                                            monkeypatch, mocker):
    fake_ollama.chunk_size, fake_ollama.event_delay = 100_000, 0.002
    action, outcome = PATHS[path]
    args = (tmp_path, monkeypatch, mocker) if path == "disk guard" else ()
    action(fake_ollama, *args)
    assert_nothing_left(fake_ollama)
    assert not cp.is_pulling("mistral", host=fake_ollama.url)
    assert [o.outcome for o in cp.recent_pulls(fake_ollama.url)] == [outcome]


# -- outcomes --------------------------------------------------------------------------------


def test_outcomes_say_how_each_pull_ended(fake_ollama):
    fake_ollama.chunk_size = 500_000
    fake_ollama.faults.drop_pull_after = 2_000_000
    with pytest.raises(cp.PullFailed) as info:
        list(cp.pull_model("mistral", host=fake_ollama.url))
    fake_ollama.faults.drop_pull_after = None
    done = list(cp.pull_model("mistral", host=fake_ollama.url))[-1]
    newest, failed = cp.recent_pulls()
    assert isinstance(newest, cp.PullOutcome)
    assert (newest.model, newest.host, newest.outcome, newest.message) == (
        "mistral:latest", fake_ollama.url, "done", "")
    # the weights; the small layers finish inside a tick and are never announced
    assert (newest.completed, newest.total) == (done.completed, done.total) == (4_000_000,) * 2
    assert (failed.outcome, failed.message) == ("failed", str(info.value))
    assert failed.completed == 2_000_000 and failed.total == 4_000_000
    assert failed.ended_at.tzinfo is not None and failed.ended_at <= newest.ended_at
    assert cp.recent_pulls("http://127.0.0.1:1") == []
    with pytest.raises(Exception):
        newest.outcome = "failed"  # frozen


def test_outcomes_are_kept_for_an_hour_newest_first():
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)]
    outcomes = Outcomes(now=lambda: now[0])
    outcomes.record("a:latest", "http://h1", "done", "", 10, 10)
    now[0] += timedelta(minutes=30)
    outcomes.record("b:latest", "http://h2", "failed", "why", 5, 10)
    assert [o.model for o in outcomes.recent()] == ["b:latest", "a:latest"]
    assert [o.model for o in outcomes.recent("http://h1")] == ["a:latest"]
    now[0] += timedelta(minutes=31)  # a is 61 minutes old
    assert [o.model for o in outcomes.recent()] == ["b:latest"]
    assert outcomes.recent()[0].ended_at == datetime(2026, 1, 1, 12, 30, tzinfo=timezone.utc)


def test_the_downloads_panel_words_the_outcomes():
    from contextpilot.ui.render_models import downloads_html

    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def ended(model, outcome, minutes, message="", completed=4_000_000, host=""):
        # one host: the UI passes no host (its address is operator configuration)
        return cp.PullOutcome(model=model, host=host, outcome=outcome, message=message,
                              ended_at=now - timedelta(minutes=minutes), completed=completed,
                              total=4_000_000)

    running = cp.PullProgress(model="phi:latest", status="pulling abc", completed=1, total=2,
                              fraction=0.5)
    html = downloads_html([running], [
        ended("phi:latest", "failed", 1, "old news"),  # running again: not listed
        ended("a:latest", "failed", 3, "no space left <on> device", completed=1_000_000),
        ended("b:latest", "done", 1),
        ended("a:latest", "done", 30),  # older than a's failure: not listed
        ended("c:latest", "cancelled", 0.05, completed=2_000_000)], now=now)
    assert 'data-count="1"' in html and "old news" not in html
    assert ("<strong>a:latest</strong> — Failed 3 min ago at 1.0 MB of 4.0 MB: no space left "
            "&lt;on&gt; device") in html
    assert "<strong>b:latest</strong> — Done 1 min ago · 4.0 MB" in html
    assert ("<strong>c:latest</strong> — Cancelled just now at 2.0 MB of 4.0 MB; downloading "
            "it again resumes it.") in html
    assert html.index("a:latest") < html.index("b:latest") < html.index("c:latest")
    assert "No download is running." in downloads_html([], [], now=now)
    # several hosts: a row per (model, host), each naming its host; a pull running on gpu1
    # hides gpu1's old outcome only
    on_gpu1 = dataclasses.replace(running, host="gpu1")
    html = downloads_html([on_gpu1], [
        ended("phi:latest", "failed", 1, "gpu1's old news", host="gpu1"),
        ended("phi:latest", "failed", 2, "disk full", host="gpu2")], now=now)
    assert "gpu1's old news" not in html, html
    assert "<strong>phi:latest</strong> on gpu2 — Failed 2 min ago" in html, html
