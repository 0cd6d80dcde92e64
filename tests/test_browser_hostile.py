"""Hostile answers in the real page (chromium, Gradio's Chatbot frontend, the fake Ollama):
at every moment the chat's DOM holds only allowlisted elements, classes and attributes and
no URL but http, https and mailto; no script runs, even after every link and button in the
chat is clicked; nothing loads by itself; code shows its characters literally; and a hostile
answer saved in the browser comes back as inert after a reload.

The corpus is tests/test_markdown.py's (LaTeX delimiters around spans and fences, HTML and
SVG in every Markdown context, javascript:/data:/vbscript: links, entities, CR/LF, unclosed
constructs) and seeded random combinations of its pieces."""

from __future__ import annotations

import re

import pytest

import tests.fake_ollama as fake_module
from contextpilot.ui import chat_handlers
from contextpilot.ui.render_markdown import Live, Memo, render_parts
from contextpilot.ui.safe_chatbot import SafeChatbot
from tests.fake_ollama import FakeModel
from tests.test_browser import browser, open_app, page  # noqa: F401  (fixtures)
from tests.test_markdown import CODE, HOSTILE, Page, fragments
from tests.ui_helpers import launch, running_app

pytestmark = pytest.mark.browser

RANDOM = list(fragments(11, 12, 30))
CORPUS = [*HOSTILE.values(), *RANDOM]

# Watches the chat from now on: every element that ever appears in a message, checked when
# it appears (a MutationObserver sees even what a later update removes), plus a canary that
# any script of the corpus would set, and every alert or popup.
WATCH = r"""() => {
  const TAGS = new Set(['DIV','P','BR','HR','H1','H2','H3','H4','H5','H6','BLOCKQUOTE','UL','OL',
    'LI','PRE','CODE','EM','STRONG','S','A','TABLE','THEAD','TBODY','TR','TH','TD','BUTTON',
    'SPAN']);
  const ATTRS = new Set(['class','href','title','rel','target','start','type','data-source']);
  const CLASSES = new Set(['cp-md','prose','cp-plain','code_wrap','copy_code_button',
    'copy-text','check','cp-left','cp-center','cp-right']);
  window.__bad = []; window.__seen = 0;
  window.alert = window.confirm = window.prompt = (m) => { window.__pwned = 'dialog ' + m; };
  const check = (e) => {
    window.__seen++;
    if (!TAGS.has(e.tagName)) window.__bad.push('element ' + e.outerHTML.slice(0, 120));
    for (const a of e.getAttributeNames()) {
      // Gradio's copy handler shows the check mark of the button clicked: its own style
      const shown = a === 'style' && e.classList.contains('check') &&
        /^opacity: [01];$/.test(e.getAttribute('style'));
      if (!ATTRS.has(a) && !shown) window.__bad.push('attribute ' + a + ' on ' + e.tagName);
    }
    for (const c of e.classList) if (!CLASSES.has(c)) window.__bad.push('class ' + c);
    const href = e.getAttribute('href');
    if (href !== null && !/^(https?:|mailto:)/i.test(href)) window.__bad.push('url ' + href);
  };
  const scan = () => {
    for (const md of document.querySelectorAll(
        '#chatbot [data-testid=bot] .md, #chatbot [data-testid=user] .md'))
      for (const e of md.querySelectorAll('*')) check(e);
  };
  new MutationObserver(scan).observe(document.querySelector('#chatbot'),
    {subtree: true, childList: true, attributes: true, characterData: true});
}"""
ROWS = "#chatbot .message-row.bot-row"  # one per answer (its parts are messages of their own)
CODE_TEXTS = """(n) => {
  const bot = [...document.querySelectorAll('#chatbot .message-row.bot-row')].at(n);
  return bot ? [...bot.querySelectorAll('code')].map(c => c.textContent) : null;
}"""


def guard(page) -> list:  # noqa: F811
    """Requests that leave 127.0.0.1 are aborted and recorded: nothing may load by itself."""
    outside: list = []

    def route(r):
        if r.request.url.startswith("http://127.0.0.1"):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    page.context.route("**/*", route)
    return outside


def assert_inert(page) -> None:  # noqa: F811
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__bad") == []
    assert page.evaluate("window.__seen") > 0


def ask(page, text):  # noqa: F811
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def test_every_prefix_of_hostile_answers_is_inert_in_the_page(page):  # noqa: F811
    """Each answer of the corpus streamed a character at a time, every prefix sent to the
    page, through the app's Chatbot (rendered from its memo, as the chat renders answers)."""
    import gradio as gr

    def stream():
        done: list = []  # each answer stays on the page, complete, while the next streams
        for answer in CORPUS:
            memo = Memo()
            for end in range(len(answer) + 1):
                live = {"role": "assistant", "content": Live.of(answer[:end], memo)}
                yield done[-1:] + [live]
            done.append({"role": "assistant", "content": answer})  # rendered once (cache)
        yield done[-1:] + [{"role": "assistant", "content": "All done."}]

    with gr.Blocks() as demo:
        chat = SafeChatbot(elem_id="chatbot", height=300)
        go = gr.Button("go", elem_id="go")
        go.click(stream, None, chat, show_progress="hidden")
    url = launch(demo)
    try:
        outside = guard(page)
        page.goto(url)
        page.wait_for_function("() => document.querySelector('#chatbot')")
        page.evaluate(WATCH)
        page.locator("#go").click()
        page.locator("#chatbot").get_by_text("All done.").wait_for(timeout=90_000)
        assert_inert(page)
        assert page.evaluate("window.__seen") > sum(map(len, CORPUS))  # it saw them all
        assert outside == []
    finally:
        demo.close()


def test_hostile_answers_in_the_app_are_inert_and_code_is_literal(page, fake_ollama,  # noqa: F811
                                                                  monkeypatch, artifacts):
    """The corpus through the whole app (Ollama -> handler -> Chatbot -> page), streamed in
    small pieces; then every link and button in the chat is clicked; then a reload."""
    batches = [CORPUS[i::4] for i in range(4)]
    code_answer = "\n\n".join(a for a, _ in CODE.values())  # the unclosed fence last
    answers = {f"batch {i}": "\n\n".join(b) for i, b in enumerate(batches)}
    answers["code"] = code_answer
    fake_ollama.add_installed(FakeModel(name="coder:latest",
                                        reply=lambda msgs: answers[msgs[-1]["content"]]))
    monkeypatch.setattr(fake_module, "_tokens", lambda text: re.findall(r"[\s\S]{1,4}", text))
    monkeypatch.setattr(chat_handlers, "TOKEN_INTERVAL", 0.02)
    with running_app(fake_ollama.url, default_model="coder:latest") as url:
        outside = guard(page)
        open_app(page, url)
        page.evaluate(WATCH)
        for n, name in enumerate(answers):
            ask(page, name)
            page.locator(ROWS).nth(n).wait_for()
            page.wait_for_function("([n, want]) => { const b = [...document.querySelectorAll("
                                   "'#chatbot .message-row.bot-row')].at(n); return b && "
                                   "b.innerText.length > want; }",
                                   arg=[n, len(answers[name]) // 4], timeout=30_000)
            page.locator("#chat-input textarea").wait_for(state="visible")
            page.wait_for_function("() => !document.querySelector('#chatbot .pending')",
                                   timeout=30_000)
        page.wait_for_timeout(500)
        want = Page("".join(render_parts(code_answer))).code
        assert page.evaluate(CODE_TEXTS, -1) == want
        for literal in ("<p>hi</p>\n", "a < b && c", "<b>&amp;</b>\n", "$$<b>$$"):
            assert literal in want
        page.screenshot(path=str(artifacts / "hostile-answers.png"), full_page=True)
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page.locator(ROWS).last.locator(".copy_code_button").first.click()
        assert page.evaluate("navigator.clipboard.readText()") == "<p>hi</p>"  # the code, as is
        assert_inert(page)
        assert outside == []  # nothing loaded by itself (no image, no form post)

        clicked = click_everything(page)
        assert clicked > 20
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None
        assert not any(u.lower().startswith(("javascript:", "data:", "vbscript:"))
                       for u in outside)

        page.reload()  # the conversation is kept in the browser: it comes back inert
        open_app(page, url)
        page.evaluate(WATCH)
        page.get_by_text("batch 0").first.click()
        page.locator(ROWS).nth(len(answers) - 1).wait_for()
        page.wait_for_timeout(500)
        assert_inert(page)
        assert page.evaluate(CODE_TEXTS, -1) == want


def click_everything(page) -> int:  # noqa: F811
    """Click every link, button and code element in the messages (links open a new tab,
    whose requests the guard aborts); the number clicked."""
    targets = page.locator("#chatbot [data-testid=bot] .md a, "
                           "#chatbot [data-testid=bot] .md button, "
                           "#chatbot [data-testid=bot] .md code")
    count = targets.count()
    for i in range(count):
        try:
            targets.nth(i).click(timeout=2000, force=True, no_wait_after=True)
        except Exception:  # scrolled away or detached by a re-render: the rest still count
            pass
    for other in page.context.pages[1:]:
        other.close()
    return count
