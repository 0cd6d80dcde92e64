"""One visitor cannot starve the others (issue 19, item 3): a client flooding a shared app
with chats (raw queue joins, a new session for each) while a second visitor, from another
address, has a conversation; and a page past its own share of answers told so in its chat.
Each test fails against the app before the per-visitor limits."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from contextpilot.policy import AccessPolicy
from contextpilot.ui import gradio_app
from tests.test_gate import chat_as
from tests.ui_helpers import running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")
LONG = " ".join(f"w{i}" for i in range(20))  # an answer of ~20 tokens


@pytest.fixture
def small_app(monkeypatch):
    """Room for 2 answers, 4 waiting in the line, 16 events in Gradio's queue; one page
    may have 3 chats, one address 4."""
    for name, value in (("STREAM_CONCURRENCY", 2), ("LINE_SIZE", 4), ("QUEUE_SIZE", 16),
                        ("LINE_PATIENCE", 60.0), ("VISITOR_ANSWERS", 3),
                        ("ADDRESS_ANSWERS", 4)):
        monkeypatch.setattr(gradio_app, name, value, raising=False)


def test_a_flood_from_one_client_does_not_starve_another_visitor(fake_ollama, small_app):
    fake_ollama.token_delay = 0.1  # each flood answer takes ~2 s
    policy = AccessPolicy(shared=True, host=fake_ollama.url)
    flood: list[str] = []
    with running_app(fake_ollama.url, policy=policy) as url:
        def flooder() -> None:
            with httpx.Client(base_url=url, timeout=120) as http:  # no cookie kept
                flood.append(chat_as(http, url, {"text": LONG, "files": []}, "llama3.2"))

        threads = [threading.Thread(target=flooder, daemon=True) for _ in range(40)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the flood is under way
        said = []
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, timeout=120, transport=transport) as visitor:
            visitor.get("/config")
            for text in ("first question", "second question"):
                said.append(chat_as(visitor, url, {"text": text, "files": []}, "llama3.2"))
        for t in threads:
            t.join(120)
    assert "You said: first question" in said[0], said[0][-400:]
    assert "You said: second question" in said[1], said[1][-400:]
    assert not any("busy" in s or "HTTP 503" in s for s in said)
    refused = [f for f in flood if "You already have 4 answers running" in f
               or "HTTP 429" in f]
    answered = [f for f in flood if f"You said: {LONG}" in f]
    assert len(answered) + len(refused) == 40 and 4 <= len(answered) < 40


def test_a_page_past_its_share_is_told_in_its_chat(fake_ollama, small_app):
    fake_ollama.token_delay = 0.2
    policy = AccessPolicy(shared=True, host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        from tests.ui_helpers import Client

        client = Client(url, verbose=False)  # one session for all its calls
        jobs = [client.submit({"text": LONG, "files": []}, "llama3.2", api_name="/chat")
                for _ in range(3)]
        time.sleep(1.0)
        fourth = client.submit({"text": "one more", "files": []}, "llama3.2",
                               api_name="/chat").result(timeout=60)[0]
        done = [j.result(timeout=120)[0][-1]["content"] for j in jobs]
    assert fourth[-1]["content"] == ("⚠️ You already have 3 answers running: wait for one "
                                     "to finish (or stop it), then send this again.")
    assert done == [f"You said: {LONG}"] * 3
