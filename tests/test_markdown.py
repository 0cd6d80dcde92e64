"""Model answers through ``escape_markdown_html``: raw HTML in prose shows as text and runs
nothing, code shows its characters literally, and ``unescape_markdown_html`` gives back
exactly what the model wrote.

What the page would render is judged here by markdown-it with raw HTML switched *on* (a
CommonMark renderer as permissive as the page's ``marked``), on the text as Gradio hands it to
the page (``inspect.cleandoc``: tabs expanded, common indentation removed): any HTML token with
a tag in it is HTML that would reach the page. tests/test_browser_markdown.py checks the real
page."""

from __future__ import annotations

import inspect
import random

import pytest
from markdown_it import MarkdownIt

from contextpilot.ui.chat_handlers import ollama_history
from contextpilot.ui.render import escape_markdown_html, unescape_markdown_html

PAGE = MarkdownIt("commonmark", {"html": True}).enable("table")
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>window.__pwned=1</script>"


def tokens(text: str):
    """The page's tokens for a message ``text`` (Gradio's Chatbot cleandocs a str first)."""
    for token in PAGE.parse(inspect.cleandoc(text)):
        yield token
        yield from token.children or ()


def code_texts(text: str) -> list[str]:
    """What the page shows inside code elements (markdown-it keeps code content raw)."""
    return [t.content for t in tokens(text) if t.type in ("fence", "code_block", "code_inline")]


def raw_html(text: str) -> list[str]:
    return [t.content for t in tokens(text)
            if t.type in ("html_block", "html_inline") and "<" in t.content]


def shown_text(text: str) -> str:
    """The prose as the reader sees it (entities decoded)."""
    return " ".join(t.content for t in tokens(text) if t.type == "text")


# (what the model wrote, what the code elements must show, literally)
CODE_CASES = {
    "fence in a list item, 4 spaces in": (
        "1. Make a page:\n\n    ```html\n    <p>hi</p>\n    ```\n2. Done.",
        ["<p>hi</p>\n"]),
    "fence 4 spaces past a list item's text: indented code": (
        "- step:\n\n      ```\n      <p>a && b</p>\n      ```\nDone.",
        ["```\n<p>a && b</p>\n```\n"]),
    "indented code block": ("Run:\n\n    if a < b && c:\n        print('<p>')\n\nDone.",
                            ["if a < b && c:\n    print('<p>')\n"]),
    # Gradio removes the indentation common to the lines after the first (inspect.cleandoc):
    "indented code dedented by Gradio: a fence": (
        "- step:\n\n      ```\n      <p>a && b</p>\n      ```", ["<p>a && b</p>\n"]),
    "indented code dedented by Gradio: prose": ("Run:\n\n    <p>a && b</p>", []),
    "nested fences": ("````md\n```html\n<p>x</p>\n```\n````", ["```html\n<p>x</p>\n```\n"]),
    "tilde fence": ("~~~\n<b>&amp;</b>\n~~~", ["<b>&amp;</b>\n"]),
    "inline code": ("Use `a < b && c` here", ["a < b && c"]),
    "inline code with an entity": ("Write `&amp;` for &", ["&amp;"]),
    "double-backtick span": ("`` a ` <b> ``", ["a ` <b>"]),
    "blockquote fence": ("> ```\n> <p>quoted</p>\n> ```", ["<p>quoted</p>\n"]),
    "blockquote inline, lazy line": ("> see `<i>`\nand `&&`", ["<i>", "&&"]),
    "unclosed fence while streaming": ("Here:\n```html\n<div class='a'>\n  <p>", [
        "<div class='a'>\n  <p>"]),
    "unclosed fence in a list item": ("- a\n  ```\n  <p>", ["<p>"]),
    "tabs, as Gradio expands them (8 columns)": ("-\t```\n\t<p>x</p>\n\t```", ["  ```\n", ""]),
    "tabs in a fence": ("- a\n\n  ```\n  \t<p>&&</p>\n  ```\nb", ["      <p>&&</p>\n"]),
    "CRLF": ("a\r\n```\r\n<p>&&</p>\r\n```\r\n", ["<p>&&</p>\n"]),
    "lone CR": ("a\r```\r<p>\r```", ["<p>\n"]),
    "table cell": ("| a | b |\n|---|---|\n| `<i>` | `x \\| <y>` |", ["<i>", "x | <y>"]),
    "heading": ("## The `<head>` tag ##", ["<head>"]),
    "link text": ("[the `<a>` tag](https://example.com)", ["<a>"]),
    "escaped backtick before a span": ("\\``<b>`", ["<b>"]),  # \` is a literal backtick
}


@pytest.mark.parametrize("answer, code", CODE_CASES.values(), ids=list(CODE_CASES))
def test_code_shows_its_characters_literally(answer, code):
    shown = escape_markdown_html(answer)
    assert code_texts(shown) == code
    assert "&lt;" not in "".join(code_texts(shown)) or "&lt;" in answer
    assert unescape_markdown_html(shown) == answer
    assert raw_html(shown) == []


# Hostile prose in each container: shown as text, never HTML
HOSTILE = {
    "prose": f"Look: {IMG} and {SCRIPT}",
    "html block": f"{IMG}\n\n{SCRIPT}",
    "list item": f"- {IMG}\n- {SCRIPT}",
    "list item, continued": f"1. first\n\n   {IMG}\n   {SCRIPT}",
    "blockquote": f"> {IMG}\n> {SCRIPT}",
    "blockquote, lazy": f"> quote\n{IMG}",
    "table": f"| a | b |\n|---|---|\n| {IMG} | {SCRIPT} |",
    "heading with tags": f"# {IMG}",
    "html block hiding a fence": f"<div>\n```\n{IMG}\n```\n</div>",
    "tag hiding backticks": f'<a title="`x`">{IMG}<a title="`">',
    "comment": f"<!-- `x` -->{IMG}",
    "fence not at a line start": f"x ```\n{IMG}",
    "escaped backticks": f"see \\`{IMG}\\`",
    "span broken by an html line": f"a `x\n{IMG}` b",
    "span broken in a blockquote": f"> a `x\n> {IMG}` b",
    "autolink": "<https://example.com/`x`> <javascript:alert(1)>",
    "span inside a bare URL": f"see https://example.com/`{IMG}` and www.example.com`{IMG}`",
    "latex cut of the page": f"$$x{IMG}$$ and `$$<b>$$`",
    "mermaid block of the page": f"```mermaid\ngraph TD; A-->B{IMG}\n```",
    "entity": "&lt;script&gt; &#60;b&#62; &amp;",
    "null and nbsp": f"\x00{IMG}\u00a0{SCRIPT}",
}


@pytest.mark.parametrize("answer", HOSTILE.values(), ids=list(HOSTILE))
def test_raw_html_in_prose_is_shown_as_text(answer):
    shown = escape_markdown_html(answer)
    assert raw_html(shown) == []
    assert unescape_markdown_html(shown) == answer


def test_prose_shows_what_the_model_wrote():
    shown = escape_markdown_html(f"a < b && c {IMG} &amp; &copy; \\<i>")
    assert shown_text(shown) == f"a < b && c {IMG} &amp; &copy; <i>"


def test_latex_and_mermaid_are_escaped_even_as_code():
    """Gradio inserts ``$$…$$`` and mermaid blocks as HTML, so they are escaped everywhere
    (its own escape of LaTeX leaves ``&lt;`` as it is: the reader sees ``<``)."""
    assert escape_markdown_html("`$$<b>$$`") == "`$$&lt;b>$$`"
    assert escape_markdown_html("```mermaid\nA-->B<br>\n```") == "```mermaid\nA-->B&lt;br>\n```"
    assert escape_markdown_html("````mermaid\n<br>\n````") == "````mermaid\n<br>\n````"


def test_blockquotes_stay_blockquotes():
    shown = escape_markdown_html("> quoted <b>")
    assert [t.type for t in tokens(shown)][0] == "blockquote_open"


ROUND_TRIPS = [
    "", "plain", "a < b & c > d", "&amp; &lt; &gt; &#60; &copy", "\\&amp; \\\\&amp; \\<b>",
    "`&amp;` &amp;", "```\n&amp;\n```\n&amp;", "&lt;p&gt; `&lt;p&gt;`", "$$a & b$$ `&&`",
    "<div>\n```\n&amp;\n```\n</div>", "- `a\n  &amp;` b", "| `\\|&amp;` | &amp; |\n|-|-|",
    "\r\n&amp;\r", "\t&amp;\n\t<p>", "<" * 50 + "&" * 50, "`" * 7 + "<&" + "`" * 7,
]
PIECES = [
    "- ", "1. ", "> ", "    ", "\t", "```", "````", "~~~", "`", "``", "<p>", IMG, "&&", "&amp;",
    "&lt;", "\\", "\\<", "$$", "|", "---", "\n", "\n", "\n", "\r\n", "\r", " ", "a", "b c",
    "<!--", "-->", "<div>", "</div>", "```mermaid\n", "[x](y)", "![`a`](b)", "*", "#",
    "\x00", "\u00a0", SCRIPT, "|---|",
]


def fragments(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40)))


@pytest.mark.parametrize("answer", ROUND_TRIPS)
def test_unescape_gives_back_the_model_text(answer):
    assert unescape_markdown_html(escape_markdown_html(answer)) == answer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_markdown_round_trips_and_renders_no_html(seed):
    for answer in fragments(seed, 1500):
        shown = escape_markdown_html(answer)
        assert unescape_markdown_html(shown) == answer, answer
        assert raw_html(shown) == [], answer


def test_every_prefix_of_a_streamed_answer_is_safe():
    answer = (f"Intro {IMG}\n\n1. Page:\n\n    ```html\n    <p>hi</p>\n    ```\n\n"
              f"> `a < b && c` {SCRIPT}\n\n    <b>indented</b>\n")
    for end in range(len(answer) + 1):
        shown = escape_markdown_html(answer[:end])
        assert raw_html(shown) == [], answer[:end]
        assert unescape_markdown_html(shown) == answer[:end]


def test_history_sent_to_ollama_is_the_model_text():
    answer = CODE_CASES["fence in a list item, 4 spaces in"][0] + f"\n\n{IMG} &amp; `&&`"
    history = [{"role": "user", "content": "make a page"},
               {"role": "assistant", "content": escape_markdown_html(answer)}]
    assert ollama_history(history)[-1] == {"role": "assistant", "content": answer}
