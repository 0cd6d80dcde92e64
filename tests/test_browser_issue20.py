"""Issue 20 in a real browser, against the fake Ollama: Stop during a download and during an
answer (item 1), a page reloaded while its chat downloads (item 4), and the note under the
picker while Download runs (item 7). Screens are saved under test-artifacts/issue20-*.png."""

from __future__ import annotations

import re

import pytest

import contextpilot as cp
from tests.test_browser import browser, open_app, page  # noqa: F401  (shared fixtures)
from tests.ui_helpers import running_app, wait_until

pytestmark = pytest.mark.browser

# Clicks Stop and resolves with the milliseconds until the turn has ended in the page (no
# Stop button: the run is over) and until the message box takes input again (Gradio's own
# queued follow-up). Timed inside the page, so the browser driver's delays do not count.
TIMED_STOP = """() => new Promise((done) => {
  const box = document.querySelector('#chat-input');
  const t0 = performance.now();
  const seen = {};
  const look = (watcher) => {
    if (seen.ended === undefined && !box.querySelector('button[aria-label=Stop]'))
      seen.ended = performance.now() - t0;
    if (seen.input === undefined && !box.querySelector('textarea').disabled)
      seen.input = performance.now() - t0;
    if (seen.ended !== undefined && seen.input !== undefined) {
      watcher.disconnect();
      done(seen);
    }
  };
  const watcher = new MutationObserver(() => look(watcher));
  watcher.observe(box, {subtree: true, childList: true, attributes: true});
  box.querySelector('button[aria-label=Stop]').click();
})"""


def stop(page) -> dict:
    """Press Stop; the turn must end within a second, and the box take input soon after."""
    took = page.evaluate(TIMED_STOP)
    assert took["ended"] < 1000, f"the turn ended {took['ended']:.0f} ms after Stop"
    assert took["input"] < 2500, f"the box took input {took['input']:.0f} ms after Stop"
    return took


DOWNLOADING = re.compile(r"Downloading mistral — \d+%")


def pick(page, option: str) -> None:
    page.locator("#model-dropdown input").click()
    page.get_by_role("option", name=option).click()


def send(page, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def ask_mistral_while_it_downloads(page, url: str):
    """Open the app, send "hello mistral" to the missing mistral: the chat, once its
    download card shows."""
    open_app(page, url)
    pick(page, "Download · mistral · 4.1 GB")
    send(page, "hello mistral")
    chat = page.locator("#chatbot")
    chat.get_by_text(DOWNLOADING).wait_for()
    return chat


@pytest.mark.usefixtures("roomy_machine")
def test_item1_stop_during_a_download_ends_it_within_a_second(page, fake_ollama, artifacts):
    fake_ollama.chunk_size, fake_ollama.event_delay = 10_000, 0.05  # a ~20 s download
    with running_app(fake_ollama.url) as url:
        chat = ask_mistral_while_it_downloads(page, url)
        page.locator("#chat-input button[aria-label=Stop]").wait_for()  # shown while it runs
        fake_ollama.disconnected.clear()

        stop(page)
        assert fake_ollama.disconnected.wait(1), "the download's stream to Ollama stayed open"
        wait_until(lambda: not cp.is_pulling("mistral", fake_ollama.url), timeout=1,
                   what="the download to end")
        page.screenshot(path=str(artifacts / "issue20-stop-download.png"), full_page=True)
        assert chat.get_by_text("hello mistral").is_visible()  # what was written stays
        assert chat.get_by_text(DOWNLOADING).is_visible()
        assert 0 < fake_ollama.partial_bytes("mistral") < 4_000_000  # kept for a resume
        assert page.locator("#chat-input textarea").is_enabled()


def test_item1_stop_during_an_answer_ends_it_within_a_second(page, fake_ollama, artifacts):
    fake_ollama.token_delay = 0.15  # 41 tokens: ~6 s
    words = " ".join(f"w{i}" for i in range(1, 41))
    with running_app(fake_ollama.url) as url:
        open_app(page, url)
        pick(page, "Installed · llama3.2:latest · 3.0 MB")
        send(page, words)
        chat = page.locator("#chatbot")
        chat.get_by_text(re.compile(r"^You said: w1 w2 w3")).wait_for()
        fake_ollama.disconnected.clear()

        stop(page)
        assert fake_ollama.disconnected.wait(1), "the answer's stream to Ollama stayed open"
        shown = chat.get_by_text(re.compile(r"^You said:")).inner_text()
        page.screenshot(path=str(artifacts / "issue20-stop-answer.png"), full_page=True)
        assert shown.startswith("You said: w1 w2 w3") and "w40" not in shown  # kept, cut
        assert chat.get_by_text(re.compile(r"^You said:")).inner_text() == shown


@pytest.mark.usefixtures("roomy_machine")
def test_item4_a_reload_mid_download_keeps_the_download_and_the_message(page, fake_ollama,
                                                                        artifacts):
    fake_ollama.chunk_size, fake_ollama.event_delay = 20_000, 0.05  # a ~10 s download
    with running_app(fake_ollama.url) as url:
        chat = ask_mistral_while_it_downloads(page, url)

        page.reload()
        open_app(page, url)
        page.locator('#downloads-panel [data-model="mistral:latest"]').wait_for()
        assert cp.is_pulling("mistral", fake_ollama.url)  # it went on, detached
        page.get_by_text("hello mistral").first.click()  # the conversation, in the history
        chat.get_by_text("Not answered: the page closed first — press Retry or send it "
                         "again").wait_for()
        assert chat.get_by_text("hello mistral").is_visible()
        # the model it asked is picked again, so Retry (or sending it again) goes there
        page.locator("#model-note").get_by_text("mistral:latest is downloading now").wait_for()
        page.screenshot(path=str(artifacts / "issue20-reopened.png"), full_page=True)

        page.locator("#chatbot button[aria-label=Retry]").click()
        chat.get_by_text("You said: hello mistral").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "issue20-reopened-answered.png"), full_page=True)
        assert chat.get_by_text(re.compile(r"Downloaded mistral — 100%")).is_visible()
        assert fake_ollama.pull_requests["mistral:latest"] == 1  # joined, never restarted
        assert "Not answered" not in chat.inner_text()


@pytest.mark.usefixtures("roomy_machine")
def test_item7_the_note_says_downloading_while_download_runs(page, fake_ollama, artifacts):
    fake_ollama.chunk_size, fake_ollama.event_delay = 20_000, 0.05
    with running_app(fake_ollama.url) as url:
        open_app(page, url)
        pick(page, "Download · mistral · 4.1 GB")
        note = page.locator("#model-note")
        note.get_by_text("press Download now").wait_for()
        page.locator("#pull-button").click()
        note.get_by_text("mistral:latest is downloading now").wait_for()
        page.screenshot(path=str(artifacts / "issue20-note-downloading.png"), full_page=True)
        assert "Download now" not in note.inner_text()
        page.locator("#pull-button").wait_for(state="hidden")  # nothing to press meanwhile
        cp.cancel_pull("mistral", fake_ollama.url)
