"""No secret rides along (issue 19, item 7): a visitor's Hub search and lookups carry no
Hugging Face token (the fake Hub records every request's headers); no text a visitor can
reach shows the Ollama address (Make room's errors) or a server path (the page's config);
the fit note stays well-formed HTML when paths are taken out of it. Each test fails
against the app before."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from contextpilot.policy import AccessPolicy
from tests.fake_hub import sample_hub
from tests.ui_helpers import event_id, queue_text, running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")
TOKEN = "hf_operatorsecret0123456789"
REPO = "bartowski/Llama-3.2-1B-Instruct-GGUF"


@pytest.fixture
def hub(monkeypatch):
    """The fake Hub as HF_ENDPOINT, the operator's token in HF_TOKEN, lookups on."""
    from huggingface_hub import constants

    srv = sample_hub().start()
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield srv
    srv.stop()


def in_session(url: str, session: str, api_name: str, *data) -> str:
    """A crafted event in ``session`` (so a search's results are that page's choices)."""
    return queue_text(url, event_id(url, api_name), list(data), session, check=True)


def look_on_the_hub(url: str) -> str:
    """What a visitor does with the Find models tab, and a Hub model's fit note."""
    session = uuid.uuid4().hex
    said = in_session(url, session, "find_models", "llama 3.2")
    said += in_session(url, session, "model_files", REPO)
    said += in_session(url, session, "model_changed", f"hf.co/{REPO}:Q4_K_M")
    return said


def _tokens(hub) -> list:
    return [h.get("authorization", "") for h in hub.headers if TOKEN in json.dumps(h)]


def test_a_visitors_hub_calls_carry_no_token(hub, fake_ollama):
    policy = AccessPolicy(shared=True, host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        said = look_on_the_hub(url)
    assert "2 repositories" in said and "Q4_K_M" in said
    assert any("/tree/" in r for r in hub.requests) and hub.resolved  # the header read too
    assert _tokens(hub) == []


def test_the_operators_own_hub_calls_may_carry_it(hub, fake_ollama):
    with running_app(fake_ollama.url) as url:  # private: the operator's page
        look_on_the_hub(url)
    assert _tokens(hub) and all(t == f"Bearer {TOKEN}" for t in _tokens(hub))


# -- no server path, no Ollama address ------------------------------------------------------

def test_the_page_and_its_config_name_no_server_path(fake_ollama):
    import os
    import sys
    from pathlib import Path

    import gradio

    secrets = {sys.prefix, str(Path(gradio.__file__).parent), os.getcwd(),
               str(Path(__file__).resolve().parent.parent)}
    with running_app(fake_ollama.url) as url:
        said = "".join(httpx.get(url + p, timeout=10).text
                       for p in ("/", "/config", "/gradio_api/info"))
    assert [s for s in secrets if s in said] == []


class _Tags:
    """Whether an HTML fragment's tags are balanced (void elements aside)."""

    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source"}

    def __init__(self, html: str) -> None:
        from html.parser import HTMLParser

        self.open: list = []
        self.broken = False
        tags = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                if tag not in tags.VOID:
                    tags.open.append(tag)

            def handle_endtag(self, tag):
                if not tags.open or tags.open.pop() != tag:
                    tags.broken = True

        Parser().feed(html)

    @property
    def balanced(self) -> bool:
        return not self.broken and not self.open


def test_the_fit_note_keeps_its_markup_without_the_path(fake_ollama, roomy_machine,
                                                        monkeypatch):
    from tests.ui_helpers import call_event

    monkeypatch.setenv("OLLAMA_MODELS", "/srv/operator-models")
    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000_000)
    policy = AccessPolicy(shared=True, allowed_models=["mistral", "llama3.2"],
                          host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        note = call_event(url, "model_changed", "mistral")[0]
    assert "is free where Ollama keeps models (&lt;path&gt;)." in note, note
    assert "/srv/operator-models" not in note
    assert _Tags(note).balanced, note


def test_make_room_errors_do_not_name_the_ollama_address(fake_ollama, roomy_machine,
                                                         monkeypatch):
    import contextpilot as cp
    from tests.fake_ollama import FakeModel
    from tests.ui_helpers import call_event

    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000_000)
    fake_ollama.add_remote(FakeModel(name="someone/mid:latest", layers=[3_500_000, 100]))
    fake_ollama.event_delay = 0.01  # the probe stops before the end

    def gone(name, host=None):  # Ollama went away between the offer and the removal
        raise cp.OllamaUnavailable(fake_ollama.url)

    policy = AccessPolicy(shared=True, allow_delete=True, host=fake_ollama.url,
                          allowed_models=["someone/mid", "llama3.2", "qwen3:0.6b"])
    with running_app(fake_ollama.url, policy=policy) as url:
        note = call_event(url, "refresh_models", "someone/mid")[2]  # probes once
        assert "would make room" in note, note
        monkeypatch.setattr(cp, "delete_model", gone)
        said = call_event(url, "make_room", "someone/mid")[2]
    address = fake_ollama.url.split("://")[1]
    assert "Cannot connect to Ollama server at the configured host" in said, said
    assert address not in said


def test_uploads_are_named_without_the_servers_folder(fake_ollama):
    from gradio.utils import get_upload_folder

    from tests.test_attacks import VISION
    from tests.test_gate import chat_as, visitor_client
    from tests.test_ui_api import _png
    from tests.test_uploads import file_data

    fake_ollama.add_installed(VISION)
    folder = str(get_upload_folder())
    with running_app(fake_ollama.url) as url:
        http = visitor_client(url)
        answer = http.post("/gradio_api/upload",
                           files={"files": ("dot.png", _png(), "image/png")}).text
        (path,) = json.loads(answer)
        said = chat_as(http, url, {"text": "what is this?", "files": [file_data(path)]})
        fetched = http.get(f"/gradio_api/file={path}").content  # the page shows it so
        http.close()
    assert path.startswith("uploads/") and folder not in answer
    assert "1 image(s)" in said and folder not in said.replace("\\/", "/")
    assert fetched == _png()
