"""Reliability: Ollama dying or stalling, Stop, load, hostile input — through the running app
(gradio_client) and the fake server's fault switches. Nothing here asserts a duration; waits
are on conditions the fake server or the app makes true."""

from __future__ import annotations

import gc
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from contextpilot.ui.safe_chatbot import SafeChatbot
from tests.conftest import REMOTE, SMALL, THINKER
from tests.fake_ollama import FakeModel, FakeOllama, parse_name
from tests.ui_helpers import Client, running_app, wait_until

WORDS = " ".join(f"word{i}" for i in range(20))
BRIDGE_AND_PULL = ("contextpilot-bridge", "pull ", "stall ")


@pytest.fixture
def app_url(fake_ollama):
    fake_ollama.add_installed(FakeModel(name="story:latest", reply=lambda m: WORDS))
    with running_app(fake_ollama.url) as url:
        yield url


@pytest.fixture
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def _hostile_app():
    """One app for the hostile-input tests, which change nothing on the server: each test
    gets it with the fake's request logs emptied (an app takes a second to start)."""
    srv = FakeOllama()
    for m in (SMALL, THINKER, FakeModel(name="story:latest", reply=lambda m: WORDS)):
        srv.add_installed(m)
    srv.add_remote(REMOTE)
    srv.start()
    with running_app(srv.url) as url:
        yield url, srv
    srv.stop()


@pytest.fixture
def hostile(_hostile_app):
    """(a new client session, the fake Ollama with no request recorded yet)."""
    url, srv = _hostile_app
    srv.faults.reset()
    with srv._lock:
        srv.requests.clear()
        srv.chat_requests.clear()
        srv.pull_requests.clear()
    return Client(url, verbose=False), srv


def chat(client, text, model):
    job = client.submit({"text": text, "files": []}, model, api_name="/chat")
    list(job)
    return job.outputs()[-1][0]


def answers(messages):
    return [m["content"] for m in messages if not m.get("metadata")]


def pull(client, name):
    return list(client.submit(name, api_name="/pull_model"))


def worker_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith(BRIDGE_AND_PULL)]


def no_worker_threads_left():
    wait_until(lambda: not worker_threads(), timeout=10, what="bridge and pull threads to end")


# ----------------------------------------------------------------------------- Ollama dies


def test_ollama_dies_mid_download_then_the_next_pull_resumes(client, fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.event_delay = 0.005  # lines a little apart, as Ollama's (resumed is timed)
    fake_ollama.faults.drop_pull_after = 2_000_000
    updates = pull(client, "mistral")
    assert updates[-1].startswith("Downloading model 'mistral:latest' failed (connection lost")
    assert "Make sure it is running ('ollama serve')" in updates[-1]
    assert fake_ollama.partial_bytes("mistral") == 2_000_000

    fake_ollama.faults.drop_pull_after = None
    updates = pull(client, "mistral")
    assert updates[-1] == "mistral:latest is ready (4.0 MB)."
    assert any("Resumed from 2.0 MB" in u for u in updates)
    assert "mistral:latest" in fake_ollama.installed_names()
    no_worker_threads_left()


def test_ollama_dies_mid_answer_keeps_the_partial_answer(client, fake_ollama):
    fake_ollama.faults.drop_chat_after = 5
    messages = chat(client, "tell me", "story")
    assert answers(messages)[0] == " ".join(WORDS.split()[:5])
    assert messages[-1]["content"].startswith(
        f"⚠️ Lost the connection to Ollama at {fake_ollama.url} during the answer.")

    fake_ollama.faults.drop_chat_after = None
    fake_ollama.faults.refuse = True  # Ollama is down for a while
    messages = chat(client, "again", "story")
    assert messages[-1]["content"].startswith(f"⚠️ Cannot connect to Ollama server at "
                                              f"{fake_ollama.url}")
    fake_ollama.faults.refuse = False  # and back
    assert answers(chat(client, "again", "story")) == [WORDS]
    no_worker_threads_left()


def test_a_stalled_download_ends_at_the_stall_limit(client, fake_ollama, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_STALL_TIMEOUT", "0.3")
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 1_000_000
    results = {}
    stalled = threading.Thread(target=lambda: results.update(updates=pull(client, "mistral")))
    stalled.start()
    # meanwhile the app serves another user
    other = Client(client.src, verbose=False)
    assert answers(chat(other, "still there?", "llama3.2")) == ["You said: still there?"]
    stalled.join(timeout=60)
    assert not stalled.is_alive(), "the stalled download never ended"
    last = results["updates"][-1]
    assert last.startswith("Downloading model 'mistral:latest' failed (stalled: no new data "
                           "for 0.3 s).")
    no_worker_threads_left()
    wait_until(lambda: fake_ollama.open_streams == 0, what="the stalled stream to close")
    assert fake_ollama.disconnects == 1
    assert answers(chat(other, "and now?", "llama3.2")) == ["You said: and now?"]


# ----------------------------------------------------------------------------- Stop


def test_stop_during_an_answer_closes_the_stream(client, fake_ollama):
    fake_ollama.token_delay = 0.2
    job = client.submit({"text": "go", "files": []}, "story", api_name="/chat")
    wait_until(lambda: fake_ollama.open_streams, what="the answer stream")
    job.cancel()
    assert fake_ollama.disconnected.wait(10), "the stream to Ollama stayed open"
    no_worker_threads_left()
    wait_until(lambda: fake_ollama.open_streams == 0, what="the stream to close")


def test_stop_during_a_download_closes_the_stream(client, fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 10_000, 0.05  # a slow download
    job = client.submit("mistral", api_name="/pull_model")
    wait_until(lambda: fake_ollama.partial_bytes("mistral"), what="bytes flowing")
    job.cancel()
    assert fake_ollama.disconnected.wait(10), "the stream to Ollama stayed open"
    no_worker_threads_left()
    assert "mistral:latest" not in fake_ollama.installed_names()
    assert 0 < fake_ollama.partial_bytes("mistral") < 4_000_000  # kept for a resume


def test_stop_during_a_stalled_download_closes_the_stream(client, fake_ollama):
    fake_ollama.faults.stall_pull_after = 1_000_000  # Ollama says nothing at all
    job = client.submit("mistral", api_name="/pull_model")
    wait_until(lambda: fake_ollama.partial_bytes("mistral") == 1_000_000, what="the stall")
    job.cancel()
    assert fake_ollama.disconnected.wait(10), "the stream to Ollama stayed open"
    no_worker_threads_left()


# ----------------------------------------------------------------------------- load


def _conversation_reply(messages):
    return " | ".join(f"{m['role']}:{m['content']}" for m in messages)


def test_thirty_concurrent_sessions_get_their_own_exact_answers(app_url, fake_ollama):
    fake_ollama.add_installed(FakeModel(name="mirror:latest", reply=_conversation_reply))
    fake_ollama.token_delay = 0.002
    clients = [Client(app_url, verbose=False) for _ in range(31)]
    chat(clients[30], "warm up", "mirror")
    gc.collect()
    before = psutil.Process().memory_info().rss

    def converse(i):
        """Two turns: the second answer echoes this session's whole conversation."""
        first = f"session {i}: " + " ".join(f"t{i}-{k}" for k in range(40))
        second = f"and again {i}"
        one = answers(chat(clients[i], first, "mirror"))
        two = answers(chat(clients[i], second, "mirror"))
        return one, two, [f"user:{first}"], [f"user:{first} | assistant:user:{first} | "
                                             f"user:{second}"]

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(converse, range(30)))
    for one, two, expected_one, expected_two in results:
        assert (one, two) == (expected_one, expected_two)
    assert len(fake_ollama.chat_requests) == 61
    no_worker_threads_left()
    del results
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    assert grown < 100e6, f"memory grew by {grown / 1e6:.0f} MB"


# ----------------------------------------------------------------------------- hostile input

HOSTILE_NAMES = ["", "x" * 10_000, "../../etc/passwd", "a;rm -rf /", "モデル", "llama\x00",
                 "llama3.2\x00;ls", "model:tag:extra", " ", "\n", "${HOME}", "<script>",
                 "http://evil.example/x", "a" * 129]


def _valid_names_only(fake):
    """Every model name that reached the fake server is one Ollama accepts."""
    for _method, path, body in fake.requests:
        for key in ("model", "name"):
            if isinstance(body, dict) and key in body:
                assert parse_name(body[key]).valid, (path, body[key][:80])
                assert "\x00" not in body[key]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:20]))
def test_hostile_model_names_are_refused_on_every_endpoint(hostile, name):
    client, fake_ollama = hostile
    updates = pull(client, name)
    assert updates[-1].startswith(("Invalid model name", "Model '")), updates[-1][:200]
    messages = chat(client, "hi", name)
    last = messages[-1]["content"]
    if name.strip():
        assert last.startswith("⚠️ Invalid model name") or "not found" in last, last[:200]
    else:  # no model given: the default (newest installed) model answers
        assert answers(messages) == [WORDS]
    assert "error" in client.predict(api_name="/list_models")  # the app still serves
    _valid_names_only(fake_ollama)
    assert fake_ollama.pull_requests.get("x" * 10_000) is None


@pytest.mark.parametrize("text", [
    "word " * 50_000,
    "\x00\x01\x07\x1b[2J\x1b]0;title\x07\r\n\t\x7f end",
    "\ud7ff\ufeff\u202e reversed \u200b",
    "<script>alert(1)</script> & \"quotes\"",
], ids=["very-long", "control-chars", "unicode-format-chars", "html"])
def test_hostile_chat_input_is_answered_or_refused(hostile, text):
    client, fake_ollama = hostile
    messages = chat(client, text, "llama3.2")
    shown = answers(messages)
    if shown and not shown[-1].startswith("⚠️"):
        assert len(fake_ollama.chat_requests) == 1
        sent = fake_ollama.chat_requests[0]["messages"][-1]["content"]
        assert sent == text  # what the user typed reached the model unchanged
        page = SafeChatbot().postprocess(messages).root[-1].content[-1].text
        assert "<script>" not in page  # and the page gets the answer as text
    else:
        assert messages[-1]["content"].startswith("⚠️")
    assert answers(chat(client, "fine?", "llama3.2")) == ["You said: fine?"]
    _valid_names_only(fake_ollama)


def test_hostile_requests_do_not_break_the_json_to_ollama(hostile):
    client, fake_ollama = hostile
    chat(client, '"}], "model": "../../etc/passwd', "llama3.2")
    body = fake_ollama.chat_requests[-1]
    assert body["model"] == "llama3.2:latest"
    assert json.dumps(body)  # one well-formed request, the quote stayed inside the content
    _valid_names_only(fake_ollama)


# ----------------------------------------------------------------------------- closed tab


@pytest.mark.browser
def test_closing_the_tab_while_ollama_is_silent_closes_the_stream(fake_ollama):
    """Gradio closes a handler only when it yields; the bridge's heartbeat makes it yield
    while Ollama says nothing, so closing the page closes the stream to Ollama too."""
    import os

    from tests.test_browser import CHROMIUM, FLAGS, open_app

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    fake_ollama.faults.chat_first_token_delay = 30  # a model loading: silence, no token
    with running_app(fake_ollama.url) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            open_app(page, url)
            page.locator("#model-dropdown input").fill("llama3.2")
            page.locator("#chat-input textarea").fill("are you there?")
            page.locator("#chat-input textarea").press("Enter")
            wait_until(lambda: fake_ollama.chat_requests, timeout=15, what="the chat request")
            assert not fake_ollama.disconnected.is_set()
            context.close()  # the tab is gone; nobody pressed Stop
            assert fake_ollama.disconnected.wait(5), "the stream to Ollama stayed open"
        finally:
            browser.close()
    no_worker_threads_left()
