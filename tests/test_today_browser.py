"""The think controls and the cloud badge in a real browser (Debian's chromium)."""

from __future__ import annotations

import pytest

import contextpilot as cp
from tests.fake_ollama import FakeModel
from tests.test_browser import browser, open_app, page  # noqa: F401 - fixtures
from tests.ui_helpers import running_app

pytestmark = pytest.mark.browser


def test_levels_for_gpt_oss_on_off_for_other_thinkers(page, fake_ollama, artifacts):  # noqa: F811
    fake_ollama.add_cloud(FakeModel(name="gpt-oss:20b", family="gptoss",
                                    capabilities=["completion", "thinking"]))
    list(cp.pull_model("gpt-oss:20b-cloud", fake_ollama.url))  # the stub Ollama writes
    with running_app(fake_ollama.url) as url:
        open_app(page, url)
        page.locator("#model-dropdown input").click()
        option = page.get_by_role("option", name="gpt-oss:20b-cloud (☁ cloud)").first
        option.wait_for()
        option.click()
        page.locator("#think-level").wait_for(state="visible")
        assert not page.locator("#think-toggle").is_visible()
        page.locator("#model-note").get_by_text("runs on ollama.com").wait_for()
        page.screenshot(path=str(artifacts / "browser-think-level.png"), full_page=True)
        page.locator("#model-dropdown input").click()
        page.get_by_role("option", name="qwen3:0.6b").first.click()
        page.locator("#think-toggle").wait_for(state="visible")
        page.locator("#think-level").wait_for(state="hidden")
