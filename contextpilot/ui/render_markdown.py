r"""Text in the chat as safe HTML: what is markup is decided here, once, by one parser.

Every text the chat shows (a model's answer and thinking, the visitor's messages, server
statuses and errors) is Markdown source. markdown-it-py (CommonMark with GFM tables and
strikethrough; raw HTML off, so a tag is text) turns it into HTML; links keep only http,
https and mailto, and an image becomes a link (a model's answer never loads anything by
itself). nh3 (ammonia) then keeps only the elements, classes and attributes this renderer
emits. The page shows the result as it is: the Chatbot parses no Markdown and no LaTeX of its
own (``render_markdown=False``, no delimiters), so it has nothing left to read differently.

A message is rendered as *parts*, one per run of top-level blocks of about ``PART_CHARS``
characters (the blocks that may still change as the text grows in a last part of their own),
each ``<div class="cp-md" data-source="...">`` carrying its own source text,
escaped, in an attribute (inert: the page's sanitizer drops it). So the browser can send the
conversation back (it does, with every message) and ``source_of`` recovers exactly what was
written, for Ollama and to render again; the HTML a browser sends back is never trusted.

Parts also make streaming cheap: a block is final once a later block starts on a complete
line (CommonMark reads blocks line by line, and link reference definitions, which could reach
back, are off), so an answer that grows is parsed again only from its first part that is not
final (``Memo``), and the page is sent only the parts that changed.

>>> parts = render_parts("Use `<b>` & **this**: [x](javascript:alert(1))")
>>> print(parts[0].replace('">', '">\n', 1))
<div class="cp-md prose" data-source="Use `&lt;b&gt;` &amp; **this**: [x](javascript:alert(1))">
<p>Use <code>&lt;b&gt;</code> &amp; <strong>this</strong>: [x](javascript:alert(1))</p>
</div>
>>> source_of(parts[0])
'Use `<b>` & **this**: [x](javascript:alert(1))'
"""

from __future__ import annotations

import contextlib
import gc
import html
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

PART_CHARS = 1000
"""A part closes once its blocks hold this many characters of source. Smaller parts mean less
sent again while an answer streams (the last parts are replaced whole), more elements in the
page: ~200 parts for a 200,000-character answer."""
SCHEMES = ("http://", "https://", "mailto:")
"The only links an answer can make; anything else stays text."

COPY = ('<button class="copy_code_button" type="button" title="Copy code">'
        '<span class="copy-text"></span><span class="check"></span></button>')
"Gradio's code copy button: the page's own handler copies the code beside it."

_CLEANER = nh3.Cleaner(
    tags={"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
          "pre", "code", "em", "strong", "s", "a", "table", "thead", "tbody", "tr", "th", "td",
          "div", "button", "span"},
    clean_content_tags=set(),
    attributes={"a": {"href", "title"}, "ol": {"start"}, "button": {"type", "title"}},
    allowed_classes={"div": {"code_wrap"}, "button": {"copy_code_button"},
                     "span": {"copy-text", "check"}, "th": {"cp-left", "cp-center", "cp-right"},
                     "td": {"cp-left", "cp-center", "cp-right"}},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)
_CARRIER = re.compile(r'<div class="cp-md[ a-z-]*" data-source="([^"]*)">')
_BREAKS = re.compile(r"\r\n?|\n")  # the line breaks markdown-it reads (and normalises)


def _safe_link(url: str) -> bool:
    return url.lower().startswith(SCHEMES)


def _code(self, tokens, idx, options, env) -> str:
    return (f'<div class="code_wrap">{COPY}<pre><code>{escapeHtml(tokens[idx].content)}'
            f'</code></pre></div>\n')


def _image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{escapeHtml(alt)}</a>'


def _cell(self, tokens, idx, options, env) -> str:
    token = tokens[idx]  # markdown-it aligns with a style attribute: a class here
    align = str(token.attrGet("style") or "").partition(":")[2]
    return f'<{token.tag} class="cp-{align}">' if align else f"<{token.tag}>"


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True})
    md.enable(["table", "strikethrough"]).disable("reference")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    for rule, fn in (("fence", _code), ("code_block", _code), ("image", _image),
                     ("th_open", _cell), ("td_open", _cell)):
        md.add_render_rule(rule, fn)
    return md


_MD = _parser()


@dataclass
class Memo:
    """What a growing text has rendered for good: its final parts and the source they cover."""

    source: str = ""
    parts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    "How long the last render took (the chat paces its updates by it)."
    # The whole text last rendered and its parts: an update that leaves it as it was (the
    # thinking while the answer streams) is not parsed again.
    text: str = ""
    shown: list[str] = field(default_factory=list)


class Live(str):
    """Text the server made in this turn (an answer as it streams, its thinking, a status):
    rendered whatever its size, from ``memo`` on. Any other text in a chat value came from the
    browser (history, a reopened conversation) and is rendered within a budget (``shown``)."""

    memo: Optional[Memo] = None
    plain = False
    "Server text (a status, an error): shown as it is, not read as Markdown."

    @classmethod
    def of(cls, text: str, memo: Optional[Memo] = None, plain: bool = False) -> "Live":
        live = cls(text)
        live.memo, live.plain = memo, plain
        return live


def part(source: str, body: str, kind: str = "prose") -> str:
    """One part of a message: its HTML (already safe) and, escaped, the source it came from."""
    return f'<div class="cp-md {kind}" data-source="{html.escape(source)}">{body}</div>'


def plain_part(text: str) -> str:
    """``text`` shown as it is, not read as Markdown (what lies beyond the render budget)."""
    return part(text, html.escape(text), "cp-plain")


def source_of(shown: str) -> str:
    """The source text of a part (``part``); any other text is its own source."""
    match = _CARRIER.match(shown)
    return html.unescape(match.group(1)) if match else shown


def render_parts(text: str, memo: Optional[Memo] = None) -> list[str]:
    """``text`` as safe HTML parts. With ``memo`` (kept by the caller between calls), a
    text that grew is parsed again only from its first part that was not final."""
    with _no_gc():
        return _render_parts(text, memo)


@contextlib.contextmanager
def _no_gc():
    """The cyclic garbage collector paused while a text is rendered: markdown-it makes ~1
    token per 2 characters, none in a cycle (reference counting frees them), and each full
    collection walks them all, which made a 200k answer take 1.5-2x as long (superlinear)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _render_parts(text: str, memo: Optional[Memo]) -> list[str]:
    if memo is not None and memo.shown and text == memo.text:
        memo.seconds = 0.0
        return list(memo.shown)
    started = time.perf_counter()
    if memo is None or not text.startswith(memo.source):
        memo = _reset(memo)
    tail = text[len(memo.source):]
    tokens = _MD.parse(tail, {})
    blocks = _blocks(tokens)
    starts = [0] + [m.end() for m in _BREAKS.finditer(tail)]
    final = max((k for k, b in enumerate(blocks) if b[2] < len(starts) - 1), default=0)
    first, done = 0, 0  # the blocks of the part being filled; its source starts at ``done``
    for k in range(final):
        end = starts[blocks[k + 1][2]]
        if end - done >= PART_CHARS:
            source = tail[done:end]
            memo.parts.append(part(source, _html(tokens[blocks[first][0]:blocks[k][1]])))
            memo.source += source
            first, done = k + 1, end
    parts = list(memo.parts)
    if first < final:  # final blocks not yet a part: they change only when a block ends
        end = starts[blocks[final][2]]
        parts.append(part(tail[done:end], _html(tokens[blocks[first][0]:blocks[final][0]])))
        done = end
    rest = tokens[blocks[final][0]:] if final < len(blocks) else []
    parts.append(part(tail[done:], _html(rest)))  # what may still change: its own part
    memo.text, memo.shown = text, list(parts)
    memo.seconds = time.perf_counter() - started
    return parts



def _reset(memo: Optional[Memo]) -> Memo:
    if memo is None:
        return Memo()
    memo.source, memo.parts, memo.text, memo.shown = "", [], "", []
    return memo


def _blocks(tokens) -> list[tuple[int, int, int]]:
    """(first token, end token, first line) of each top-level block."""
    blocks, i = [], 0
    while i < len(tokens):
        j = i + 1
        if tokens[i].nesting == 1:  # to its close, the next token of level 0
            while tokens[j].level != 0:
                j += 1
            j += 1
        blocks.append((i, j, tokens[i].map[0] if tokens[i].map else 0))
        i = j
    return blocks


def _html(tokens) -> str:
    return _CLEANER.clean(_MD.renderer.render(tokens, _MD.options, {})) if tokens else ""


# ----------------------------------------------------------------------------- the chat's texts


ENTRY_CHARS = 256
"""What one cached render costs besides its source, in characters: its key, its parts and the
dict's node take ~400 bytes however short the text (a crafted history of tiny texts)."""


class _Cache:
    """The newest renders of texts from the browser, up to ``limit`` characters of source
    (each entry counted ENTRY_CHARS more): the history comes back with every update of an
    answer, and is parsed once."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[tuple[bool, str], list[str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, text: str, markdown: bool) -> list[str]:
        key = (markdown, text)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        parts = render_parts(text) if markdown else [plain_part(text)]
        with self.lock:
            if key not in self.items and len(text) + ENTRY_CHARS <= self.limit:
                self.items[key] = parts
                self.size += len(text) + ENTRY_CHARS
                while self.size > self.limit:
                    old, _ = self.items.popitem(last=False)
                    self.size -= len(old[1]) + ENTRY_CHARS
        return parts


CACHE = _Cache(8_000_000)


def shown(text: str, markdown: bool = True) -> list[str]:
    """The parts the page shows for one text: a ``Live`` one rendered from its memo; any
    other read as Markdown, or with ``markdown=False`` (beyond the budget) shown as it is."""
    if isinstance(text, Live):
        return [plain_part(text)] if text.plain else render_parts(text, text.memo)
    return CACHE.get(text, markdown)
