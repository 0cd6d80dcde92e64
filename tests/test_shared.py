"""A shared app's rules, through the public API and crafted requests to private handlers:
refused with a clear message, nothing changed on the Ollama server. And model output with
HTML/JS runs nothing in a real browser."""

from __future__ import annotations

import pytest

from contextpilot.policy import AccessPolicy
from tests.fake_ollama import FakeModel
from tests.test_browser import browser, open_app, page  # noqa: F401  (fixtures)
from tests.test_ui_api import answers, chat
from tests.ui_helpers import Client, call_event, running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")
REFUSED = "not allowed on this shared app"


@pytest.fixture
def app_url(fake_ollama):
    policy = AccessPolicy(shared=True, allowed_models=["llama3.2"], host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        yield url


@pytest.fixture
def client(app_url):
    return Client(app_url, verbose=False)


def test_pull_outside_the_allowlist_is_refused(client, fake_ollama):
    updates = list(client.submit("mistral", api_name="/pull_model"))
    assert updates == ["Downloads of 'mistral:latest' are not allowed on this shared app. "
                       "Choose one of the models offered, or ask the operator to add it to "
                       "CONTEXTPILOT_ALLOWED_MODELS."]
    assert fake_ollama.pull_requests == {}


def test_chat_with_a_model_outside_the_allowlist_pulls_nothing(client, fake_ollama):
    _, (messages, *_) = chat(client, "hi", "mistral")
    assert REFUSED in messages[-1]["content"] and messages[-1]["content"].startswith("⚠️")
    assert fake_ollama.pull_requests == {} and fake_ollama.chat_requests == []
    _, (messages, *_) = chat(client, "hi", "llama3.2")  # installed models still answer
    assert answers(messages) == ["You said: hi"]


def test_the_download_button_handler_refuses_too(app_url, fake_ollama):
    bar, *_ = call_event(app_url, "download", "mistral", True, first=True)
    assert REFUSED in bar and 'role="alert"' in bar
    assert fake_ollama.pull_requests == {}


@pytest.mark.parametrize("handler", ["ask_delete", "delete_model"])
def test_a_crafted_delete_is_refused(app_url, fake_ollama, handler):
    said = call_event(app_url, handler, "llama3.2")[1]
    assert said.startswith("⚠️ Delete of &#x27;llama3.2:latest&#x27; is not allowed on this "
                           "shared app")
    assert "llama3.2:latest" in fake_ollama.installed_names()


def test_unload_and_cancel_are_operator_actions(app_url, fake_ollama):
    call_event(app_url, "load_model", "llama3.2")  # loading an installed model is fine
    said, running = call_event(app_url, "unload_model", "llama3.2")
    assert REFUSED in said and 'data-model="llama3.2:latest"' in running
    (said,) = call_event(app_url, "cancel_download", "llama3.2")
    assert REFUSED in said


def test_the_operator_may_allow_delete(fake_ollama):
    policy = AccessPolicy(shared=True, allowed_models=["llama3.2"], allow_delete=True,
                          host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        said = call_event(url, "delete_model", "qwen3:0.6b")[1]
    assert said == "Deleted qwen3:0.6b."
    assert fake_ollama.installed_names() == ["llama3.2:latest"]


@pytest.mark.parametrize("name", ["../x", "a b", "x" * 400])
def test_invalid_names_are_refused_everywhere(client, app_url, fake_ollama, name):
    assert list(client.submit(name, api_name="/pull_model"))[-1].startswith(
        "Invalid model name")
    _, (messages, *_) = chat(client, "hi", name)
    assert messages[-1]["content"].startswith("⚠️ Invalid model name")
    for handler, said_at in (("delete_model", 1), ("unload_model", 0), ("load_model", 0),
                             ("cancel_download", 0)):
        said = call_event(app_url, handler, name)[said_at]
        assert "Invalid model name" in said, (handler, said)
    assert fake_ollama.pull_requests == {} and fake_ollama.chat_requests == []
    assert len(fake_ollama.installed_names()) == 2


def test_an_oversized_message_is_refused(client, fake_ollama):
    _, (messages, *_) = chat(client, "x" * 100_001, "llama3.2")
    assert "The message is too long (100,001 characters" in messages[-1]["content"]
    assert fake_ollama.chat_requests == []


def test_the_dropdown_offers_only_allowed_downloads(app_url):
    dropdown, *_ = call_event(app_url, "refresh_models", "llama3.2")
    values = [v for _label, v in dropdown["choices"]]
    assert sorted(values) == ["llama3.2:latest", "qwen3:0.6b"]  # installed, none to pull


@pytest.mark.browser
def test_html_in_a_model_answer_runs_nothing(page, fake_ollama):  # noqa: F811
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    fake_ollama.add_installed(FakeModel(name="evil:latest", reply=lambda msgs: payload))
    with running_app(fake_ollama.url, default_model="evil:latest") as url:
        open_app(page, url)
        page.locator("#chat-input textarea").fill("hi")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text(payload).wait_for()
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#chatbot img[src=x]").count() == 0


SMUGGLED = [  # raw HTML dressed up as code, which Markdown would still render as HTML
    'x ```\n<div id="overlay" style="position:fixed;inset:0">FAKE LOGIN</div><form id="phish">'
    '<input name=pw></form>',
    'see \\`<img id="tracker" src="https://example.invalid/t.png">\\`',
]


@pytest.mark.browser
@pytest.mark.parametrize("payload", SMUGGLED)
def test_html_dressed_as_code_stays_text(page, fake_ollama, payload):  # noqa: F811
    fake_ollama.add_installed(FakeModel(name="evil:latest", reply=lambda msgs: payload))
    with running_app(fake_ollama.url, default_model="evil:latest") as url:
        open_app(page, url)
        page.locator("#chat-input textarea").fill("hi")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text("FAKE LOGIN" if "FAKE" in payload else "see").last \
            .wait_for()
        for selector in ("#overlay", "#phish", "#tracker"):
            assert page.locator(f"#chatbot {selector}").count() == 0, selector


def test_a_model_removed_meanwhile_is_not_pulled_outside_the_allowlist(fake_ollama):
    policy = AccessPolicy(shared=True, allowed_models=["llama3.2"], host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        client = Client(url, verbose=False)
        chat(client, "first", "qwen3:0.6b")  # installed, so chatting with it is fine
        fake_ollama.faults.remove_before_chat = True  # then it disappears before the call
        _, (messages, *_rest) = chat(client, "second", "qwen3:0.6b")
    assert fake_ollama.pull_requests["qwen3:0.6b"] == 0
    assert "ollama pull qwen3:0.6b" in messages[-1]["content"]
