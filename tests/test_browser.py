"""The app in a real browser (Debian's chromium through Playwright), against the fake Ollama."""

from __future__ import annotations

import os

import pytest

from tests.ui_helpers import running_app

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser

# Records every value the download bar shows, as the browser renders it.
WATCH_BAR = """() => {
  window.seenPercents = [];
  const root = document.querySelector('#pull-status');
  const record = () => {
    const bar = root.querySelector('[role=progressbar]');
    if (!bar) return;
    const value = Number(bar.getAttribute('aria-valuenow'));
    const seen = window.seenPercents;
    if (seen[seen.length - 1] !== value) seen.push(value);
  };
  new MutationObserver(record).observe(
    root, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def open_app(page, url):
    page.goto(url)
    page.locator("#ollama-status").get_by_text("Ollama 0.12.3").wait_for()


def test_missing_model_downloads_with_a_rising_bar_then_answers(page, fake_ollama, artifacts):
    fake_ollama.chunk_size, fake_ollama.event_delay = 150_000, 0.04  # ~1.1 s download
    with running_app(fake_ollama.url) as url:
        open_app(page, url)
        page.locator("#model-dropdown input").click()
        page.get_by_role("option", name="mistral — download 4.1 GB").click()
        page.locator("#model-note").get_by_text("not installed yet").wait_for()
        page.evaluate(WATCH_BAR)

        page.locator("#chat-input textarea").fill("hello mistral")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text("You said: hello mistral").wait_for()
        page.wait_for_function("() => window.seenPercents.includes(100)")
        page.screenshot(path=str(artifacts / "browser-download-then-answer.png"), full_page=True)

        seen = page.evaluate("() => window.seenPercents")
        assert seen == sorted(seen) and seen[-1] == 100, seen
        assert any(0 < v < 100 for v in seen), f"no live progress was shown: {seen}"
        assert page.locator("#pull-status").inner_text().count("Ready") == 1
        assert page.locator("#chatbot").get_by_text("Downloaded mistral — 100%").is_visible()
        assert fake_ollama.pull_requests["mistral:latest"] == 1
        page.locator("#model-note").get_by_text("mistral:latest is installed").wait_for()
        page.locator("#model-dropdown input").click()
        page.get_by_role("option", name="mistral:latest (4.0 MB)").wait_for()


def test_ollama_down_shows_the_fix_then_recovers(page, fake_ollama, artifacts):
    fake_ollama.faults.refuse = True
    with running_app(fake_ollama.url) as url:
        page.goto(url)
        status = page.locator("#ollama-status")
        status.get_by_text("Cannot connect to Ollama server").wait_for()
        page.screenshot(path=str(artifacts / "browser-ollama-down.png"), full_page=True)
        assert "'ollama serve'" in status.inner_text()
        assert fake_ollama.url in status.inner_text()

        fake_ollama.faults.refuse = False
        page.locator("#refresh-models").click()
        status.get_by_text("Ollama 0.12.3").wait_for()
        page.locator("#model-dropdown input").click()
        page.get_by_role("option", name="llama3.2:latest (3.0 MB)").wait_for()
