"""Cloud by what Ollama says, not by the name (issue 19, item 6): a cloud model copied to a
plain name (``ollama cp gpt-oss:120b-cloud team-assistant``) is listed by /api/tags with
``remote_host``/``remote_model``, and a shared app's cloud rule holds for it; a visitor's
request never makes Ollama ask ollama.com about a cloud name the operator has not allowed.
The first test fails against the app before (the copy answered on the operator's account)."""

from __future__ import annotations

import html

import pytest

from contextpilot.policy import AccessPolicy
from tests.fake_ollama import FakeModel
from tests.test_attacks import chat_call, queue_call
from tests.ui_helpers import call_event, running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")

COPY = FakeModel(name="team-assistant:latest", layers=[380], family="gptoss",
                 capabilities=["completion", "tools", "thinking"], quantization="",
                 remote_host="https://ollama.com:443", remote_model="gpt-oss:120b")


@pytest.fixture
def copied_cloud(fake_ollama):
    fake_ollama.add_cloud(FakeModel(name="gpt-oss:120b", family="gptoss"))
    fake_ollama.add_installed(COPY)  # the stub, under a plain name
    return fake_ollama


def _shows(fake) -> list:
    return [r[2].get("model") for r in fake.requests if r[1] == "/api/show"]


def test_a_copied_cloud_model_is_refused_on_a_shared_app(copied_cloud):
    policy = AccessPolicy(shared=True, host=copied_cloud.url)  # allowlist: installed models
    with running_app(copied_cloud.url, policy=policy) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "team-assistant", False)
        said += queue_call(url, "load_model", "team-assistant")
        status = call_event(url, "refresh_models", "team-assistant")[1]
    said = html.unescape(said)  # /chat says it as text, the Models tab's status as HTML
    assert said.count("Cloud model 'team-assistant:latest' is not allowed") >= 2, said[-400:]
    assert copied_cloud.chat_requests == []
    assert [r for r in copied_cloud.requests if r[1] == "/api/generate"] == []
    assert "team-assistant" not in status  # not among the downloads visitors may make
    assert "team-assistant:latest" not in _shows(copied_cloud)


def test_a_copied_cloud_model_the_operator_allowed_answers(copied_cloud):
    policy = AccessPolicy(shared=True, host=copied_cloud.url,
                          allowed_models=["team-assistant", "llama3.2"])
    with running_app(copied_cloud.url, policy=policy) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "team-assistant", False)
    assert "You said: hi" in said


def test_a_private_app_still_uses_it(copied_cloud):
    with running_app(copied_cloud.url) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "team-assistant", False)
    assert "You said: hi" in said


def test_a_visitor_never_makes_ollama_ask_about_a_cloud_name(fake_ollama):
    policy = AccessPolicy(shared=True, host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        for api_name in ("model_changed", "show_details", "refresh_models", "controls"):
            queue_call(url, api_name, "secret-project:cloud")
        chat_call(url, {"text": "hi", "files": []}, "secret-project:cloud", False)
    assert _shows(fake_ollama) == [] and fake_ollama.chat_requests == []
    assert fake_ollama.pull_requests == {}
