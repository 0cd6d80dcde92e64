"""The library against the fake Ollama server, through the real ollama client."""

from __future__ import annotations

import logging
import threading

import pytest

import contextpilot as cp
from contextpilot import (
    ChatDone,
    ContentDelta,
    InvalidModelName,
    ModelNotFound,
    OllamaUnavailable,
    PullFailed,
    PullProgress,
    ThinkingDelta,
)
from tests.fake_ollama import FakeModel


def test_list_models(ollama_env):
    models = {m.name: m for m in cp.list_models()}
    assert set(models) == {"llama3.2:latest", "qwen3:0.6b"}
    llama = models["llama3.2:latest"]
    assert llama.size == 3_012_500
    assert (llama.family, llama.parameter_size, llama.quantization) == ("llama", "3.2B", "Q4_K_M")
    assert llama.modified_at is not None


@pytest.mark.parametrize("name", [
    "llama3.2", "llama3.2:latest", "LLAMA3.2", "registry.ollama.ai/library/llama3.2:latest",
    "qwen3:0.6b",
])
def test_model_exists_matches_like_ollama(fake_ollama, name):
    assert cp.model_exists(name, host=fake_ollama.url)


@pytest.mark.parametrize("name", ["mistral", "llama3.2:1b", "user/llama3.2", "hf.co/u/r:Q4_K_M"])
def test_model_exists_false_for_absent(fake_ollama, name):
    assert not cp.model_exists(name, host=fake_ollama.url)


def test_model_exists_invalid_name_raises_before_any_request(fake_ollama):
    before = len(fake_ollama.requests)
    with pytest.raises(InvalidModelName):
        cp.model_exists("../../etc/passwd", host=fake_ollama.url)
    assert len(fake_ollama.requests) == before


def test_model_exists_is_cached_between_messages(fake_ollama):
    cp.model_exists("llama3.2", host=fake_ollama.url)
    tags = lambda: sum(1 for m, p, _ in fake_ollama.requests if p == "/api/tags")  # noqa: E731
    first = tags()
    for _ in range(5):
        assert cp.model_exists("llama3.2", host=fake_ollama.url)
    assert tags() == first


# -- pull ----------------------------------------------------------------------------------

def _pull(fake, name="mistral", **kw):
    return list(cp.pull_model(name, host=fake.url, **kw))


def test_pull_progress_is_whole_model_and_monotonic(fake_ollama):
    fake_ollama.chunk_size = 100_000
    values = _pull(fake_ollama)
    assert all(isinstance(v, PullProgress) for v in values)
    completed = [v.completed for v in values]
    fractions = [v.fraction for v in values if v.fraction is not None]
    assert completed == sorted(completed)
    assert fractions == sorted(fractions)
    assert values[-1].done and values[-1].fraction == 1.0
    # the weights: the 20,000 and 700 byte layers finish inside one tick and are never
    # announced, as with a real Ollama (test_today.py)
    assert values[-1].completed == values[-1].total == 4_000_000
    assert values[0].status == "pulling manifest" and values[0].fraction is None
    steps = [v.step for v in values]
    assert steps.index("download") < steps.index("verify") < steps.index("write") < len(steps)
    assert [v.done for v in values].count(True) == 1
    assert cp.model_exists("mistral", host=fake_ollama.url)  # cache refreshed after the pull


def test_pull_total_grows_layer_by_layer_without_dipping(fake_ollama):
    # a vision model: the projector is big enough to be announced on its own
    fake_ollama.add_remote(FakeModel(name="llava:latest", layers=[3_000_000, 1_000_000, 700]))
    fake_ollama.chunk_size = 500_000
    values = _pull(fake_ollama, "llava")
    totals = sorted({v.total for v in values})
    assert totals == [0, 3_000_000, 4_000_000]
    fractions = [v.fraction for v in values if v.fraction is not None]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))


def test_pull_clamps_a_shrinking_completed(fake_ollama):
    fake_ollama.chunk_size = 200_000
    fake_ollama.faults.regress = True
    values = _pull(fake_ollama)
    completed = [v.completed for v in values]
    assert completed == sorted(completed)
    assert values[-1].done


def test_pull_of_installed_model_counts_layers_as_complete(fake_ollama):
    values = _pull(fake_ollama, "llama3.2")
    downloading = [v for v in values if v.step == "download" and v.total]
    assert downloading and all(v.completed == v.total for v in downloading)
    assert values[-1].resumed_bytes == 0  # blobs already on disk: nothing was resumed


def test_pull_resumes_after_a_dropped_connection(fake_ollama):
    fake_ollama.chunk_size = 250_000
    fake_ollama.event_delay = 0.005  # lines a little apart, as Ollama's (resumed is timed)
    fake_ollama.faults.drop_pull_after = 2_000_000
    with pytest.raises(PullFailed) as info:
        _pull(fake_ollama)
    assert info.value.kind == "connection lost"
    assert "resumes" in str(info.value) and "pull it manually" not in str(info.value)
    kept = fake_ollama.partial_bytes("mistral")
    assert kept >= 1_500_000
    fake_ollama.faults.drop_pull_after = None
    values = _pull(fake_ollama)
    first_known = next(v for v in values if v.total)
    assert first_known.completed >= 1_500_000  # resumed position, not 0
    assert values[-1].resumed_bytes >= 1_500_000 and values[-1].done


def test_unknown_model_is_model_not_found(fake_ollama):
    with pytest.raises(ModelNotFound) as info:
        _pull(fake_ollama, "no-such-model")
    text = str(info.value)
    assert "no-such-model" in text and "Check the name" in text
    assert "ollama pull" not in text  # pulling it again by hand cannot help


def test_disk_full_is_redacted_and_says_to_free_space(fake_ollama):
    fake_ollama.faults.disk_full()
    with pytest.raises(PullFailed) as info:
        _pull(fake_ollama)
    text = str(info.value)
    assert "no space left on device" in text
    assert "/root" not in text and ".ollama" not in text
    assert "Free some disk space" in text and "resume" in text
    assert info.value.kind == "disk full"


def test_stream_without_success_is_a_failure(fake_ollama):
    fake_ollama.faults.end_without_success = True
    with pytest.raises(PullFailed, match="ended before Ollama reported success"):
        _pull(fake_ollama)


@pytest.mark.parametrize("repeat", [False, True])
def test_stall_limit_ends_a_silent_or_repeating_pull(fake_ollama, repeat):
    fake_ollama.chunk_size = 500_000
    fake_ollama.faults.stall_pull_after = 1_000_000
    fake_ollama.faults.stall_repeat = repeat
    with pytest.raises(PullFailed) as info:
        _pull(fake_ollama, stall_timeout=0.5)
    assert info.value.kind == "stalled"
    assert "Try again; it resumes" in str(info.value)
    assert fake_ollama.disconnected.wait(3)  # the stream to Ollama was closed
    assert not cp.is_pulling("mistral", host=fake_ollama.url)


def test_stall_timeout_default_comes_from_env(monkeypatch):
    from contextpilot.pull import stall_timeout_default

    assert stall_timeout_default() == 120
    monkeypatch.setenv("CONTEXTPILOT_STALL_TIMEOUT", "7.5")
    assert stall_timeout_default() == 7.5


def test_unreachable_host_is_ollama_unavailable(dead_host):
    for call in (lambda: cp.list_models(host=dead_host),
                 lambda: list(cp.pull_model("mistral", host=dead_host)),
                 lambda: list(cp.chat_stream("llama3.2", [{"role": "user", "content": "hi"}],
                                             host=dead_host))):
        with pytest.raises(OllamaUnavailable) as info:
            call()
        assert str(info.value) == (
            f"Cannot connect to Ollama server at {dead_host}. Please ensure Ollama is installed "
            "and running. Install: https://ollama.com/download | Start: 'ollama serve'")


def test_default_host_follows_ollama_host(monkeypatch):
    from contextpilot._client import resolve_host

    assert resolve_host() == "http://localhost:11434"
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.5:1234")
    assert resolve_host() == "http://10.0.0.5:1234"


# -- chat ----------------------------------------------------------------------------------

def _text(events, kind=ContentDelta):
    return "".join(e.text for e in events if isinstance(e, kind))


def test_chat_streams_the_answer_with_stats(fake_ollama):
    events = list(cp.chat_stream("llama3.2", [{"role": "user", "content": "hello"}],
                                 host=fake_ollama.url))
    assert _text(events) == "You said: hello"
    assert sum(isinstance(e, ContentDelta) for e in events) > 1  # streamed, not one block
    done = events[-1]
    assert isinstance(done, ChatDone) and done.eval_count > 0 and done.total_duration > 0
    assert not any(isinstance(e, PullProgress) for e in events)


def test_chat_sends_system_and_options(fake_ollama):
    list(cp.chat_stream("llama3.2", [{"role": "user", "content": "hi"}], system="Be brief.",
                        options={"temperature": 0.2, "num_ctx": 4096}, host=fake_ollama.url))
    body = fake_ollama.chat_requests[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["options"]["temperature"] == 0.2 and body["options"]["num_ctx"] == 4096


def test_thinking_is_apart_from_the_answer(fake_ollama):
    events = list(cp.chat_stream("qwen3:0.6b", [{"role": "user", "content": "why"}],
                                 host=fake_ollama.url))
    assert _text(events, ThinkingDelta) == "Thinking about: why"
    assert _text(events) == "You said: why"
    kinds = [type(e) for e in events if not isinstance(e, ChatDone)]
    assert kinds.index(ContentDelta) > kinds.index(ThinkingDelta)


def test_think_false_sends_no_thinking(fake_ollama):
    events = list(cp.chat_stream("qwen3:0.6b", [{"role": "user", "content": "why"}],
                                 think=False, host=fake_ollama.url))
    assert _text(events, ThinkingDelta) == ""
    assert fake_ollama.chat_requests[-1]["think"] is False


def test_chat_auto_pulls_a_missing_model_then_answers(fake_ollama, caplog):
    caplog.set_level(logging.INFO, logger="contextpilot")
    events = list(cp.chat_stream("mistral", [{"role": "user", "content": "hi"}],
                                 host=fake_ollama.url))
    pulls = [e for e in events if isinstance(e, PullProgress)]
    assert pulls and pulls[-1].done
    first_answer = next(i for i, e in enumerate(events) if isinstance(e, ContentDelta))
    assert first_answer > events.index(pulls[-1])
    assert _text(events) == "You said: hi"
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    assert "Pulling Ollama model 'mistral:latest'..." in caplog.text
    assert "Successfully pulled Ollama model 'mistral:latest'" in caplog.text


def test_chat_without_auto_pull_says_to_pull(fake_ollama):
    with pytest.raises(ModelNotFound, match="ollama pull mistral:latest"):
        list(cp.chat_stream("mistral", [{"role": "user", "content": "hi"}], auto_pull=False,
                            host=fake_ollama.url))
    assert fake_ollama.pull_requests["mistral:latest"] == 0


def test_chat_404_race_pulls_and_retries_once(fake_ollama, caplog):
    caplog.set_level(logging.INFO, logger="contextpilot")
    assert cp.model_exists("llama3.2", host=fake_ollama.url)  # cached as installed
    fake_ollama.faults.remove_before_chat = True
    events = list(cp.chat_stream("llama3.2", [{"role": "user", "content": "again"}],
                                 host=fake_ollama.url))
    assert _text(events) == "You said: again"
    assert fake_ollama.pull_requests["llama3.2:latest"] == 1
    assert "pulled successfully, retrying request..." in caplog.text


def test_chat_auto_pull_of_unknown_model_says_check_the_name(fake_ollama):
    with pytest.raises(ModelNotFound) as info:
        list(cp.chat_stream("nope", [{"role": "user", "content": "hi"}], host=fake_ollama.url))
    assert str(info.value) == (
        "Model 'nope:latest' is not installed, and the Ollama registry has no such model or "
        "tag to download. Check the name and tag (see https://ollama.com/library).")


def test_chat_dropped_mid_answer_keeps_the_partial(fake_ollama):
    fake_ollama.faults.drop_chat_after = 3
    seen = []
    with pytest.raises(OllamaUnavailable) as info:
        for e in cp.chat_stream("llama3.2", [{"role": "user", "content": "one two three four"}],
                                host=fake_ollama.url):
            seen.append(e)
    assert _text(seen)  # what came before the drop was delivered
    assert "during the answer" in str(info.value)


def test_invalid_name_never_reaches_ollama(fake_ollama):
    for bad in ["", "a;rm -rf /", "x" * 10_000, "model:tag:extra"]:
        with pytest.raises(InvalidModelName):
            list(cp.chat_stream(bad, [{"role": "user", "content": "hi"}], host=fake_ollama.url))
        with pytest.raises(InvalidModelName):
            list(cp.pull_model(bad, host=fake_ollama.url))
    assert fake_ollama.requests == []


# -- cancel ---------------------------------------------------------------------------------

def test_cancel_token_stops_a_silent_chat_and_closes_the_stream(fake_ollama):
    fake_ollama.faults.chat_first_token_delay = 30
    token = cp.CancelToken()
    gen = cp.chat_stream("llama3.2", [{"role": "user", "content": "hi"}], host=fake_ollama.url,
                         cancel=token)
    result = []
    t = threading.Thread(target=lambda: result.extend(gen))
    t.start()
    while not fake_ollama.chat_requests:  # the request is in flight; Ollama is silent
        threading.Event().wait(0.01)
    token.cancel()
    t.join(2)
    assert not t.is_alive() and result == []
    assert fake_ollama.disconnected.wait(2)


def test_cancel_pull_stops_every_consumer(fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 500_000
    errors = []

    def consume():
        try:
            list(cp.pull_model("mistral", host=fake_ollama.url))
        except cp.PullCancelled as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    while fake_ollama.open_streams == 0:
        threading.Event().wait(0.01)
    assert cp.cancel_pull("mistral", host=fake_ollama.url)
    for t in threads:
        t.join(3)
    assert len(errors) == 2 and "cancelled" in str(errors[0])
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    assert fake_ollama.disconnected.wait(2)


# -- throttle -------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_throttle_keeps_first_last_and_status_changes():
    clock = FakeClock()
    raw = []
    for i in range(100):
        status = "pulling manifest" if i == 0 else ("pulling aaa" if i < 50 else "pulling bbb")
        raw.append(PullProgress(model="m", status=status, completed=i))
    raw.append(PullProgress(model="m", status="verifying sha256 digest", completed=100))
    raw.append(PullProgress(model="m", status="success", completed=100, done=True))

    def ticking():
        for v in raw:
            clock.now += 0.001
            yield v

    out = list(cp.throttle(ticking(), interval=0.1, clock=clock))
    statuses = [v.status for v in out]
    assert statuses[0] == "pulling manifest" and out[-1].done
    for s in ("pulling aaa", "pulling bbb", "verifying sha256 digest", "success"):
        assert s in statuses
    assert len(out) <= 8


def test_throttle_yields_the_held_last_value():
    clock = FakeClock()
    raw = [PullProgress(model="m", status="x", completed=i) for i in range(10)]
    out = list(cp.throttle(iter(raw), interval=10, clock=clock))
    assert [v.completed for v in out] == [0, 9]


def test_throttle_passes_one_value_per_interval():
    clock = FakeClock()

    def ticking():
        for i in range(1000):
            clock.now = i * 0.01  # 10 s of events every 10 ms
            yield PullProgress(model="m", status="pulling aaa", completed=i)

    out = list(cp.throttle(ticking(), interval=0.1, clock=clock))
    assert 90 <= len(out) <= 101  # float clocks may round an interval up by one event


def test_safetensors_aggregated_shape_is_folded(fake_ollama):
    fake_ollama.faults.safetensors = True
    fake_ollama.chunk_size = 500_000
    values = _pull(fake_ollama)
    assert values[-1].done and values[-1].fraction == 1.0
    fractions = [v.fraction for v in values if v.fraction is not None]
    assert fractions == sorted(fractions) and values[-1].completed == values[-1].total > 0


def test_speed_and_eta_unknown_until_meaningful():
    from contextpilot.pull.progress import ProgressFolder

    clock = FakeClock()
    folder = ProgressFolder("m", clock=clock)
    first = folder.feed("pulling aaa", "sha256:aaa", 1_000_000, None)
    assert first.speed is None and first.eta is None and first.fraction == 0.0
    for i in range(1, 11):
        clock.now = i * 0.1
        value = folder.feed("pulling aaa", "sha256:aaa", 1_000_000, i * 50_000)
    assert value.speed == pytest.approx(500_000, rel=0.01)
    assert value.eta == pytest.approx(1.0, rel=0.01)


def test_think_on_a_model_without_thinking_still_answers(fake_ollama):
    events = list(cp.chat_stream("llama3.2", [{"role": "user", "content": "hi"}], think=True,
                                 host=fake_ollama.url))
    assert _text(events) == "You said: hi"
    assert [b.get("think") for b in fake_ollama.chat_requests] == [True, None]


def test_cancel_during_auto_pull_ends_the_chat_quietly(fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 500_000
    token = cp.CancelToken()
    seen = []
    for event in cp.chat_stream("mistral", [{"role": "user", "content": "hi"}],
                                host=fake_ollama.url, cancel=token):
        seen.append(event)
        if isinstance(event, PullProgress) and event.completed >= 500_000:
            token.cancel()
    assert seen and not any(isinstance(e, ContentDelta) for e in seen)
    assert fake_ollama.disconnected.wait(2)


def test_a_new_pull_right_after_a_cancel_starts_afresh(fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 500_000
    for _ in range(5):
        gen = cp.pull_model("mistral", host=fake_ollama.url)
        while next(gen).completed < 500_000:
            pass
        gen.close()  # the last consumer leaves: the pull is cancelled
        again = cp.pull_model("mistral", host=fake_ollama.url)
        assert next(again).model == "mistral:latest"  # not the cancelled pull's error
        again.close()


def test_stream_without_success_says_it_once(fake_ollama):
    fake_ollama.faults.end_without_success = True
    with pytest.raises(PullFailed) as info:
        _pull(fake_ollama)
    assert str(info.value).count("ended before Ollama reported success") == 1
    assert str(info.value).count("ollama pull") == 1


def test_cancel_during_the_404_retry_pull_ends_quietly(fake_ollama):
    assert cp.model_exists("llama3.2", host=fake_ollama.url)
    fake_ollama.faults.remove_before_chat = True
    fake_ollama.faults.stall_pull_after = 1_000_000
    fake_ollama.chunk_size = 500_000
    token = cp.CancelToken()
    seen = []
    for event in cp.chat_stream("llama3.2", [{"role": "user", "content": "hi"}],
                                host=fake_ollama.url, cancel=token):
        seen.append(event)
        if isinstance(event, PullProgress) and event.completed >= 1_000_000:
            token.cancel()
    assert any(isinstance(e, PullProgress) for e in seen)


def test_an_unreadable_image_is_refused_before_sending(fake_ollama):
    with pytest.raises(cp.InvalidRequest, match="could not be sent"):
        list(cp.chat_stream("llama3.2", [{"role": "user", "content": "see",
                                          "images": ["/nonexistent/picture.png"]}],
                            host=fake_ollama.url))
    assert fake_ollama.chat_requests == []


def test_resumed_bytes_come_from_ollamas_disk_not_a_guess(fake_ollama):
    fresh = _pull(fake_ollama)
    assert fresh[-1].resumed_bytes == 0  # a fresh download did not resume anything


def test_a_host_that_drops_connections_fails_within_seconds(monkeypatch):
    """Packets silently dropped (a full accept queue here): the connect timeout ends it."""
    import socket
    import time

    from contextpilot import _client

    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", "1")
    monkeypatch.setattr(_client, "_clients", {})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once the queue is full, SYNs go unanswered
    host = "http://127.0.0.1:%d" % listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(listener.getsockname())
        fillers.append(s)
    started = time.monotonic()
    try:
        with pytest.raises(OllamaUnavailable, match="Cannot connect"):
            cp.list_models(host=host)
        assert time.monotonic() - started < 10  # not minutes
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_a_server_that_never_answers_a_quick_call_gives_up(monkeypatch):
    import socket
    import threading

    from contextpilot import _client

    monkeypatch.setenv("CONTEXTPILOT_READ_TIMEOUT", "0.5")
    monkeypatch.setattr(_client, "_clients", {})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    try:
        with pytest.raises(cp.OllamaError, match="did not answer within 0.5 s"):
            cp.list_models(host="http://127.0.0.1:%d" % listener.getsockname()[1])
    finally:
        listener.close()
