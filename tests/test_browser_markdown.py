"""Model answers in the real page (chromium, Gradio's own Markdown renderer, the fake Ollama):
code shows ``<p>`` and ``&&`` literally, raw HTML in prose runs nothing and shows as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from contextpilot.ui.render import escape_markdown_html
from tests.fake_ollama import FakeModel
from tests.test_browser import browser, open_app, page  # noqa: F401  (fixtures)
from tests.test_markdown import CODE_CASES, HOSTILE, code_texts
from tests.ui_helpers import running_app

pytestmark = pytest.mark.browser

PWN = '<img src=x onerror="window.__pwned=1">'
ANSWER = (f"Intro {PWN} in prose.\n\n"
          "1. Make a page:\n\n    ```html\n    <p>hi</p>\n    ```\n\n"
          "2. Then compare `a < b && c`.\n\n"
          "Indented code:\n\n    if a < b && c:\n        print('<p>')\n")

def ask(page, text):  # noqa: F811
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


# Records every element hostile HTML could have become, whenever it appears in the chat.
WATCH = """() => {
  window.__injected = [];
  const bad = 'img, script, iframe, form, input, object, embed, [onerror], [onload], [onclick]';
  new MutationObserver(() => {
    for (const bot of document.querySelectorAll('#chatbot [data-testid=bot]'))
      for (const e of bot.querySelectorAll(bad)) window.__injected.push(e.outerHTML);
  }).observe(document.querySelector('#chatbot'), {subtree: true, childList: true});
}"""
CODE = """(n) => {
  const bot = document.querySelectorAll('#chatbot [data-testid=bot]')[n - 1];
  return bot ? [...bot.querySelectorAll('code')].map(c => c.textContent.replace(/\\n$/, ''))
    .filter(c => c) : null;  // an empty unclosed fence: markdown-it has one, marked not
}"""
TEXTS = """() => [...document.querySelectorAll('#chatbot [data-testid=bot]')]
  .map(b => b.innerText)"""
# Where the page shows an escape, knowingly: a span that runs over a line starting with "<"
# is escaped there (blocks are found before spans: raw, that "<" would start an HTML block).
PAGE_ONLY = {  # what Gradio does besides Markdown, which markdown-it does not know about
    "latex cut of the page": ["$$<b>$$"],  # escaped for the cut, which shows it unescaped
    "mermaid block of the page": [],  # a diagram
    # marked's GFM autolinks run over backticks: a span starting in a URL is escaped prose
    # (render_markdown._URL), and what marked calls code there holds no "<" or "&" of ours.
    "autolink": [],
    "span inside a bare URL": [" and www.example.com"],
}
SHOWS_ESCAPES = {"span broken by an html line", "span broken in a blockquote"}


def test_code_is_literal_and_prose_html_runs_nothing(page, fake_ollama, artifacts):  # noqa: F811
    fake_ollama.add_installed(FakeModel(name="coder:latest", reply=lambda msgs: ANSWER))
    with running_app(fake_ollama.url, default_model="coder:latest") as url:
        open_app(page, url)
        page.evaluate(WATCH)
        ask(page, "show me")
        page.wait_for_function(f"([n, want]) => JSON.stringify(({CODE})(n)) === "
                               "JSON.stringify(want)", arg=[1, [
                                   "<p>hi</p>", "a < b && c", "if a < b && c:\n    print('<p>')"]])
        page.screenshot(path=str(artifacts / "markdown-answer.png"), full_page=True)
        text = page.evaluate(TEXTS)[0]
        assert f"Intro {PWN} in prose." in text  # the tag, as text
        assert "&lt;" not in text and "&amp;" not in text
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("window.__injected") == []
        assert page.locator("#chatbot img[src=x]").count() == 0


def test_every_markdown_case_renders_as_markdown_it_says(page, fake_ollama):  # noqa: F811
    """The page's marked agrees with markdown-it on each table case of test_markdown.py: the
    code elements show what markdown-it says, literally, and no hostile HTML becomes an
    element, at any moment of the conversation."""
    cases = {**{k: a for k, (a, _) in CODE_CASES.items()}, **HOSTILE, "last": "All done."}
    fake_ollama.add_installed(FakeModel(name="coder:latest",
                                        reply=lambda msgs: cases[msgs[-1]["content"]]))
    wrong = []
    with running_app(fake_ollama.url, default_model="coder:latest") as url:
        open_app(page, url)
        page.evaluate(WATCH)
        for n, name in enumerate(cases, start=1):
            ask(page, name)
            want = PAGE_ONLY[name] if name in PAGE_ONLY else [
                c.rstrip("\n") for c in code_texts(escape_markdown_html(cases[name])) if c]
            try:
                page.wait_for_function(f"([n, want]) => JSON.stringify(({CODE})(n)) === "
                                       "JSON.stringify(want)", arg=[n, want], timeout=8000)
            except PlaywrightTimeout:
                wrong.append((name, "code", page.evaluate(CODE, n), want))
        page.locator("#chatbot").get_by_text("All done.").wait_for()
        for name, text in zip(cases, page.evaluate(TEXTS)):
            for literal in ("&lt;", "&amp;"):
                if literal in text and literal not in cases[name] and name not in SHOWS_ESCAPES:
                    wrong.append((name, "shows", literal, text))
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("window.__injected") == []
    assert wrong == [], "\n".join(map(repr, wrong))
