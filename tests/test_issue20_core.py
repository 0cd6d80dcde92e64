"""Issue 20, in the library: what a user felt against a real Ollama, item by item.

Each test names its item. The texts asserted are what a user reads (the CLI's stderr, the
chat's message, the Downloads panel's outcome)."""

from __future__ import annotations

import pytest

import contextpilot as cp
from contextpilot import pull as pull_engine

MSG = [{"role": "user", "content": "hi"}]
# What a real Ollama says when the registry's storage host went away mid-blob: the blob's
# signed URL, 400 characters of it (server/download.go, "max retries exceeded").
SIGNED = ('https://dd20bb891979d25aebc8bec07b2b3bbc.r2.cloudflarestorage.com/ollama/docker/'
          'registry/v2/blobs/sha256/d5/sha256-{hex}/data?X-Amz-Algorithm=AWS4-HMAC-SHA256'
          '&X-Amz-Credential=66898800fa6fd9b1b2ea8b9d5d1aaa26%2F20261207%2Fauto%2Fs3%2Faws4_'
          'request&X-Amz-Date=20261207T101530Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
          '&X-Amz-Signature=3c0d1c1c7f0b8a1f2ae1b3f1d36aa8f6f0e3b1aa94d2f1d4e0c0a8a5a5b1c2d3')
REGISTRY_GONE = (f'max retries exceeded: Get "{SIGNED}": dial tcp 104.18.8.90:443: connect: '
                 f'connection refused')
DIGEST = ("digest mismatch, file must be downloaded again: want sha256:{hex}, got "
          "sha256:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b")


@pytest.fixture(autouse=True)
def _fresh_engine():
    pull_engine._outcomes.clear()
    yield


def _chat_error(fake) -> cp.ContextPilotError:
    with pytest.raises(cp.ContextPilotError) as info:
        list(cp.chat_stream("mistral", MSG, host=fake.url))
    return info.value


def _pull_error(fake) -> cp.ContextPilotError:
    with pytest.raises(cp.ContextPilotError) as info:
        list(cp.pull_model("mistral", host=fake.url))
    return info.value


# -- item 2: the chat says what the library says ---------------------------------------------

@pytest.mark.parametrize("setup, kind, advice", [
    (lambda f: f.faults.disk_full(), "disk full", "Free some disk space"),
    (lambda f: setattr(f.faults, "pull_error", REGISTRY_GONE), "registry unreachable",
     "could not reach the model registry"),
    (lambda f: setattr(f.faults, "pull_error", DIGEST), "digest mismatch",
     "starts over from the beginning"),
], ids=["disk full", "registry gone", "digest mismatch"])
def test_item2_a_failed_auto_download_keeps_its_kind_and_advice(fake_ollama, setup, kind,
                                                                  advice):
    setup(fake_ollama)
    in_chat = _chat_error(fake_ollama)
    by_hand = _pull_error(fake_ollama)
    assert isinstance(in_chat, cp.PullFailed) and in_chat.auto
    assert in_chat.kind == by_hand.kind == kind
    assert "not found" not in str(in_chat)
    assert str(in_chat).startswith("Model 'mistral:latest' is not installed, and downloading "
                                   "it failed (")
    # the same reason and advice as pull_model's: only the lead differs
    assert str(in_chat).split(" failed ", 1)[1] == str(by_hand).split(" failed ", 1)[1]
    assert advice in str(in_chat)


def test_item2_a_signed_blob_url_reaches_no_text(fake_ollama):
    fake_ollama.faults.pull_error = REGISTRY_GONE
    error = _chat_error(fake_ollama)
    texts = [str(error), error.reason, *(o.message for o in cp.recent_pulls())]
    for text in texts:
        assert "X-Amz" not in text and "sha256" not in text and "?" not in text, text
    assert ('max retries exceeded: Get "https://dd20bb891979d25aebc8bec07b2b3bbc.r2.'
            'cloudflarestorage.com/…": dial tcp 104.18.8.90:443: connect: connection refused'
            ) in str(error)
    assert len(str(error)) < 500


# -- item 7: the advice fits the failure -----------------------------------------------------

def test_item7_a_digest_mismatch_starts_over_it_does_not_resume(fake_ollama):
    fake_ollama.faults.pull_error = DIGEST
    error = _pull_error(fake_ollama)
    assert error.kind == "digest mismatch"
    assert str(error) == (
        "Downloading model 'mistral:latest' failed (digest mismatch: the downloaded file was "
        "corrupt). The downloaded file did not match its checksum, so Ollama deleted it: try "
        "again, and the download starts over from the beginning (if it happens again, the "
        "registry or a proxy between it and Ollama is corrupting the file).")
    assert "resume" not in str(error)


@pytest.mark.parametrize("kind", ["stalled", "cancelled", "connection lost", "disk full",
                                  "registry unreachable", "digest mismatch", "update ollama",
                                  "unsupported", "permission"])
def test_item7_no_failure_with_its_own_advice_says_pull_it_manually(kind):
    error = cp.PullFailed("mistral:latest", "why", kind=kind)
    assert "pull it manually" not in str(error) and "ollama pull" not in str(error)


def test_item7_only_an_unknown_failure_points_at_ollamas_own_output():
    error = cp.PullFailed("mistral:latest", "something new", kind="other")
    assert str(error).endswith("If it keeps failing, pull it in a terminal to see Ollama's "
                               "own output: ollama pull mistral:latest")


def test_item7_a_cancel_the_user_pressed_is_not_a_failure(fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 50_000, 0.02
    values = cp.pull_model("mistral", host=fake_ollama.url)
    next(values)
    assert cp.cancel_pull("mistral", host=fake_ollama.url)
    with pytest.raises(cp.PullCancelled) as info:
        list(values)
    text = str(info.value)
    assert text == ("The download of 'mistral:latest' was cancelled. What was downloaded is "
                    "kept: starting it again resumes where it stopped.")
    assert "failed" not in text and "ollama pull" not in text


# -- items 3 and 6: the progress a pull reports (pure, with a fake clock) --------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


LAYER = "sha256:d5aa131f25f271772c42018ad3c488704c2358205af054affde3936cb744690b"


def _feed(folder, clock, t, completed, total=5_000_000):
    clock.now = t
    return folder.feed(f"pulling {LAYER[7:19]}", LAYER, total, completed)


def _healthy_then_stalled(stall_seconds: float):
    """1 MB/s for 3 s at Ollama's 60 ms ticker, then the same count repeated every 60 ms (a
    registry that stalls, or is gone: Ollama retries and its ticker repeats)."""
    from contextpilot.pull.progress import ProgressFolder

    clock = Clock()
    folder = ProgressFolder("llama3.2:latest", clock=clock)
    folder.feed("pulling manifest", None, None, None)
    t, done, values = 0.0, 0, []
    while t < 3.0:
        t, done = t + 0.06, done + 60_000
        values.append(_feed(folder, clock, t, done))
    healthy = values[-1]
    stalled_at = t
    while t < stalled_at + stall_seconds:
        t += 0.06
        values.append(_feed(folder, clock, t, done))
    return healthy, values, folder, clock


def test_item3_a_stall_says_how_long_no_byte_arrived_and_the_eta_goes_unknown():
    healthy, values, _, _ = _healthy_then_stalled(30)
    assert healthy.speed == pytest.approx(1_000_000, rel=0.05)
    assert healthy.eta == pytest.approx(2.0, rel=0.1) and healthy.stalled_for is None
    two_s = next(v for v in values if v.completed == healthy.completed and v is not healthy
                 and v.stalled_for is None and v.speed is not None and v.speed < 1_000)
    assert two_s.completed == healthy.completed  # the speed decays at once
    at_12 = next(v for v in values if v.stalled_for and v.stalled_for >= 12)
    assert at_12.stalled_for == pytest.approx(12, abs=0.1)
    assert at_12.eta is None and at_12.speed is not None and at_12.speed < 1.0
    assert values[-1].stalled_for == pytest.approx(30, abs=0.1) and values[-1].eta is None
    said_stalled = [v.stalled_for for v in values if v.stalled_for is not None]
    assert min(said_stalled) == pytest.approx(3.0, abs=0.07)  # after a few seconds, not at once


def test_item3_bytes_again_end_the_stall_and_the_speed_recovers():
    healthy, values, folder, clock = _healthy_then_stalled(12)
    t, done = clock.now, values[-1].completed
    for _ in range(20):
        t, done = t + 0.06, done + 60_000
        value = _feed(folder, clock, t, done)
    assert value.stalled_for is None and value.eta is not None
    assert value.speed == pytest.approx(1_000_000, rel=0.1)


def test_item3_a_part_retried_from_zero_is_data_arriving_not_a_stall():
    """Real Ollama after its own 30 s stall limit: the part restarts at byte 0, so the count
    drops (300,000 -> 7,500) and climbs again; bytes arrive, though the total waits."""
    _, values, folder, clock = _healthy_then_stalled(30)
    t = clock.now
    for raw in range(7_500, 300_000, 60_000):
        t += 0.06
        value = _feed(folder, clock, t, raw)
    assert value.stalled_for is None
    assert value.completed == values[-1].completed  # never backwards
    assert value.speed and value.speed > 500_000


def _resumed(known: int, reports: list, manifest_at: float = 0.005, total: int = 1_025_152):
    from contextpilot.pull.progress import ProgressFolder

    clock = Clock()
    clock.now = manifest_at
    folder = ProgressFolder("tiny", clock=clock,
                            known_partials={LAYER: known} if known else None)
    folder.feed("pulling manifest", None, None, None)
    for t, completed in reports:
        _feed(folder, clock, t, completed, total)
    clock.now += 0.01
    folder.feed("verifying sha256 digest", None, None, None)
    return folder.feed("success", None, None, None).resumed_bytes


def _ticks(first_t: float, first: int, step: int, n: int = 30) -> list:
    return [(first_t + 0.06 * i, first + step * i) for i in range(n)]


def test_item6_a_resume_ollama_really_did_says_resumed():
    """pull-resume-after-cancel: the part file kept 375,000 bytes; the first report already
    says 390,000 ~60 ms in, and the count then grows 7,500 a tick."""
    assert _resumed(375_000, _ticks(0.067, 390_000, 7_500)) == 375_000


def test_item6_a_restart_from_zero_after_ollama_was_killed_is_not_resumed():
    """The partial was lost (Ollama killed, or another client removed it): the first report
    is the first tick's download (pull-cancel-midway: 15,000 at 0.112 s)."""
    assert _resumed(375_000, _ticks(0.112, 15_000, 7_500)) == 0


def test_item6_a_small_partial_is_not_claimed_when_the_first_tick_alone_explains_it():
    """30 KB left by an earlier pull, a fast link, and a restart from zero: the first report
    (60 KB) is larger than the partial, but the speed alone brought it."""
    assert _resumed(30_000, _ticks(0.065, 60_000, 60_000), total=5_000_000) == 0


def test_item6_a_partial_another_client_finished_is_not_resumed():
    assert _resumed(375_000, [(0.01, 1_025_152)]) == 0


def test_item6_a_partial_left_by_another_process_is_seen_in_the_first_report():
    """The CLI is a new process each time: nothing known, the first report still shows it."""
    assert _resumed(0, _ticks(0.067, 390_000, 7_500)) == pytest.approx(375_000, rel=0.03)
    assert _resumed(0, _ticks(0.112, 15_000, 7_500)) == 0  # a fresh start


def test_item6_a_fresh_download_whose_lines_arrive_in_a_burst_is_not_resumed():
    """A busy client (or a buffering proxy) reads the manifest line and the first report at
    once: timed by arrival, the first tick's 700 KB looked kept (seen under the whole
    suite: "Resumed from 412 KB" on a fresh pull). One report brings as much as the first."""
    burst = [(0.0051, 700_000)] + [(0.0051 + 0.001 * i, 700_000 * (i + 1)) for i in range(1, 5)]
    assert _resumed(0, burst, total=4_000_000) == 0
    assert _resumed(700_000, burst, total=4_000_000) == 0  # a partial known, then lost


def test_item6_a_resume_whose_lines_arrive_in_a_burst_is_still_said():
    burst = [(0.0051, 2_100_000)] + [(0.0051 + 0.001 * i, 2_100_000 + 100_000 * i)
                                     for i in range(1, 10)]
    assert _resumed(0, burst, total=4_000_000) == pytest.approx(2_000_000, rel=0.03)


# -- today's releases (0.34-0.40) ------------------------------------------------------------

def test_today_a_name_with_128_character_parts_reaches_ollama(fake_ollama):
    name = "hf.co/bartowski/" + "Long-Model-Name-" * 7 + "GGUF:Q4_K_M"  # a 123-char part
    assert 80 < len(cp.parse_name(name).model) <= 128
    with pytest.raises(cp.ContextPilotError):  # this fake is v0.33.0: 80 characters
        list(cp.chat_stream(name, MSG, host=fake_ollama.url))
    assert any(isinstance(b, dict) and b.get("model") == name
               for _, path, b in fake_ollama.requests if path == "/api/pull")


def test_today_a_spurious_404_on_an_installed_model_never_downloads_it(fake_ollama, caplog):
    caplog.set_level("INFO", logger="contextpilot")
    fake_ollama.faults.spurious_not_found = 1  # servers before 0.34.4, on large libraries
    events = list(cp.chat_stream("llama3.2", MSG, host=fake_ollama.url))
    assert "".join(e.text for e in events if isinstance(e, cp.ContentDelta)) == "You said: hi"
    assert fake_ollama.pull_requests == {}  # no multi-GB download
    assert len(fake_ollama.chat_requests) == 2
    assert "lists as installed; asking again" in caplog.text


def test_today_a_404_that_persists_on_an_installed_model_says_so(fake_ollama):
    fake_ollama.faults.spurious_not_found = 2
    with pytest.raises(cp.OllamaError) as info:
        list(cp.chat_stream("llama3.2", MSG, host=fake_ollama.url))
    assert "though it lists it as installed" in str(info.value)
    assert "Nothing was downloaded" in str(info.value)
    assert fake_ollama.pull_requests == {}


def test_today_a_model_really_removed_is_still_pulled_again(fake_ollama):
    fake_ollama.faults.remove_before_chat = True
    events = list(cp.chat_stream("llama3.2", MSG, host=fake_ollama.url))
    assert any(isinstance(e, cp.PullProgress) for e in events)
    assert fake_ollama.pull_requests["llama3.2:latest"] == 1


@pytest.mark.parametrize("caps, words", [
    (["embedding"], "is an embedding model: it turns text into vectors (for search and "
                    "similarity) and cannot chat. Use it through Ollama's /api/embed"),
    (["image"], "is an image-generation model: it makes pictures from a prompt and cannot "
                "chat. Use it with `ollama run"),
    (["decision"], "is not a chat model: Ollama says it does decision, and a chat needs "
                   "'completion'. Use it through the endpoint made for it (a decision model "
                   "answers at /v1/systemone)."),
], ids=["embedding", "image generation", "decision"])
def test_today_a_model_that_cannot_chat_is_refused_with_what_it_is_for(fake_ollama, caps,
                                                                        words):
    from tests.fake_ollama import FakeModel

    fake_ollama.add_installed(FakeModel(name="special:latest", layers=[1_000], capabilities=caps))
    with pytest.raises(cp.NotAChatModel) as info:
        list(cp.chat_stream("special", MSG, host=fake_ollama.url))
    assert str(info.value).startswith(f"special:latest {words}")
    assert str(info.value).endswith("To chat, choose a chat model.")
    assert info.value.capabilities == tuple(caps)
    assert fake_ollama.chat_requests == []  # nothing Ollama would reject was sent


def test_today_ollamas_own_does_not_support_chat_is_the_same_error():
    import ollama

    from contextpilot._errortable import Context, map_error

    error = map_error(ollama.ResponseError('"nomic-embed-text" does not support chat', 400),
                      Context("http://h", "chat", "nomic-embed-text:latest"))
    assert isinstance(error, cp.NotAChatModel)
    assert "To chat, choose a chat model." in str(error)


# -- items 1 and 4: Stop ends a chat's download, a closed page does not ----------------------

def _slow(fake):
    fake.chunk_size, fake.event_delay = 20_000, 0.02  # ~4 s


def _chat_downloading(fake, events: int):
    """A chat (detached pull, as the page's) whose download is slow, consumed in a thread
    until it has seen ``events``: (its CancelToken, the events, the thread)."""
    from tests.ui_helpers import wait_until

    _slow(fake)
    token = cp.CancelToken()
    seen, thread = _consume_in_thread(cp.chat_stream("mistral", MSG, host=fake.url,
                                                     cancel=token, detach_pull=True))
    wait_until(lambda: len(seen) > events, what="the chat's download to start")
    return token, seen, thread


def _consume_in_thread(values):
    import threading

    seen = []

    def run():
        try:
            for v in values:
                seen.append(v)
        except cp.PullCancelled:
            seen.append("cancelled")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return seen, thread


def test_item4_a_chat_whose_page_closed_leaves_its_download_running(fake_ollama):
    from tests.ui_helpers import wait_until

    token, _, thread = _chat_downloading(fake_ollama, 2)
    token.leave()  # the page went away: nobody asked to stop
    thread.join(2)
    assert not thread.is_alive() and cp.is_pulling("mistral", fake_ollama.url)
    token.cancel()  # Stop, pressed after all: withdrawn, nobody else keeps it
    wait_until(lambda: not cp.is_pulling("mistral", fake_ollama.url), timeout=2,
               what="the download to stop")
    assert fake_ollama.disconnected.wait(2)
    assert "mistral:latest" not in fake_ollama.installed_names()


def test_item1_stop_ends_a_chats_download_unless_someone_else_keeps_it(fake_ollama):
    _slow(fake_ollama)
    kept = cp.pull_model("mistral", host=fake_ollama.url, detach=True)  # the Download button
    next(kept)
    kept.close()  # its page closed: it goes on
    token, _, thread = _chat_downloading(fake_ollama, 1)  # it joins the download
    token.cancel()  # Stop in the chat: the chat ends, the Download button's pull does not
    thread.join(2)
    assert not thread.is_alive()
    assert cp.is_pulling("mistral", fake_ollama.url)
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    cp.cancel_pull("mistral", fake_ollama.url)


def test_item1_stop_ends_a_chats_download_nobody_else_wants(fake_ollama):
    token, _, thread = _chat_downloading(fake_ollama, 1)
    token.cancel()
    thread.join(2)
    assert not thread.is_alive() and fake_ollama.disconnected.wait(2)
    assert not cp.is_pulling("mistral", fake_ollama.url)
    assert 0 < fake_ollama.partial_bytes("mistral") < 4_000_000  # kept for a resume


# -- the same, with the fake's registry faults as a real Ollama reports them -----------------

def test_item2_a_registry_that_dies_mid_blob_says_so_in_the_chat_without_its_url(fake_ollama):
    """pull-registry-dies-midway: identical ticks through six retries, then "max retries
    exceeded: Get "<signed blob URL>": dial tcp ...", the chat's error is the library's."""
    fake_ollama.scale_time(0.01, tick_bytes=100_000)  # 63 s of retries in 0.63 s
    fake_ollama.faults.registry_gone_at = 1_000_000
    error = _chat_error(fake_ollama)
    assert isinstance(error, cp.PullFailed) and error.kind == "registry unreachable"
    assert str(error).startswith("Model 'mistral:latest' is not installed, and downloading "
                                 "it failed (max retries exceeded: Get \"https://")
    assert "X-Amz" not in str(error) and "?" not in str(error) and "…\"" in str(error)
    assert "could not reach the model registry" in str(error)


def test_item3_a_real_registry_stall_is_said_then_the_retry_flows(fake_ollama, monkeypatch):
    """pull-stall-once: bytes stop, Ollama repeats its count for its 30 s stall timeout,
    then retries the part from byte 0; here 10x faster, with a 1 s notice."""
    from contextpilot.pull import progress

    monkeypatch.setattr(progress, "STALL_NOTICE", 1.0, raising=False)
    fake_ollama.scale_time(0.1, tick_bytes=100_000)  # a 3 s stall
    fake_ollama.faults.registry_stall_at = 1_000_000
    values = list(cp.pull_model("mistral", host=fake_ollama.url))
    stalled = [v for v in values if v.stalled_for is not None]
    assert stalled and all(v.eta is None for v in stalled)
    assert max(v.stalled_for for v in stalled) >= 2.0
    assert all(v.completed == stalled[0].completed for v in stalled)  # nothing went backwards
    after = values[values.index(stalled[-1]) + 1:]
    assert after and all(v.stalled_for is None for v in after) and values[-1].done


def test_item7_the_fakes_digest_mismatch_starts_over(fake_ollama):
    fake_ollama.faults.digest_mismatch = True
    error = _pull_error(fake_ollama)
    assert error.kind == "digest mismatch" and "starts over from the beginning" in str(error)
    assert "resumes" not in str(error)
