"""The Find models tab in a real browser: search the (fake) Hub, pick a quantisation that
fits, use it, and chat after the usual auto-pull from the fake Ollama."""

from __future__ import annotations

import pytest

from tests.fake_hub import sample_hub
from tests.fake_ollama import FakeModel
from tests.test_browser import browser, open_app, page  # noqa: F401  (fixtures)
from tests.ui_helpers import running_app

pytestmark = pytest.mark.browser
REPO = "bartowski/Llama-3.2-1B-Instruct-GGUF"
NAME = f"hf.co/{REPO}:Q4_K_M"


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    srv = sample_hub().start()
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield srv
    srv.stop()


@pytest.mark.usefixtures("roomy_machine")
def test_search_pick_a_quant_use_it_and_chat(page, fake_ollama, hub, artifacts):  # noqa: F811
    fake_ollama.add_remote(FakeModel(name=NAME, layers=[2_000_000, 9_000, 400]))
    with running_app(fake_ollama.url) as url:
        open_app(page, url)
        page.get_by_role("tab", name="Find models").click()
        page.locator("#find-query textarea, #find-query input").first.fill("llama 3.2 1b")
        page.locator("#find-search").click()
        results = page.locator("#find-results")
        results.get_by_text(REPO, exact=False).first.wait_for()
        assert "250,000 downloads" in results.inner_text()
        results.get_by_label(f"{REPO} —", exact=False).check()

        quants = page.locator("#find-quants")
        recommended = quants.get_by_label("Q4_K_M —", exact=False)
        recommended.wait_for()
        assert recommended.is_checked()  # the one that fits is chosen
        assert "★ recommended" in quants.inner_text() and "fits" in quants.inner_text()
        table = page.locator("#find-quant-table")
        assert "F16" in table.inner_text() and "2.5 GB" in table.inner_text()
        page.screenshot(path=str(artifacts / "browser-find-models.png"), full_page=True)

        page.locator("#use-model").click()
        page.locator("#model-note").get_by_text("not installed yet", exact=False).wait_for()
        assert page.locator("#model-dropdown input").input_value() == NAME
        assert hub.requests  # sized from the Hub, not by a probe
        assert fake_ollama.pull_requests[NAME] == 0

        page.locator("#chat-input textarea").fill("hello gguf")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text("You said: hello gguf").wait_for()
        page.screenshot(path=str(artifacts / "browser-find-then-chat.png"), full_page=True)
        assert fake_ollama.pull_requests[NAME] == 1
        assert NAME in fake_ollama.installed_names()
