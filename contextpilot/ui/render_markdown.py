r"""Model answers made safe for the Chatbot's Markdown: raw HTML shows as text, code as code.

The page renders an answer with its own Markdown parser (Gradio's ``marked``, GFM). Raw HTML
in prose must reach it escaped (``<`` as ``&lt;``, ``&`` as ``&amp;``) so that it shows
literally and runs nothing; code must reach it untouched, since Markdown already shows code
literally and an escape there would show as ``&lt;``. What is code is decided by a real
CommonMark parser (markdown-it-py, with GFM tables), never by patterns: fences in list
items and blockquotes, indented code blocks, longer fences holding shorter ones, inline
spans, and a fence still open while the answer streams (code until it closes).

The parser reads the answer with *every* ``<`` and ``&`` escaped (``_fully_escaped``), which
is how the page will see its prose: a tag can then neither hide code (an HTML block swallows
a fence) nor fake it (backticks inside a tag). The code it finds there is left raw, the
rest escaped. Escaping only prose never moves code, so ``unescape_markdown_html`` finds the
same code in the escaped text and gives back exactly what the model wrote (for the history
sent to Ollama on the next turn). Where a position cannot be mapped with certainty it is
treated as prose: escaped, never left raw.

Two places of the page's renderer insert text as HTML even inside code, so they are always
escaped: ``$$ … $$`` (Gradio cuts LaTeX out of the whole message before Markdown, and puts it
back as HTML) and a ```` ```mermaid ```` block (its text becomes a diagram's HTML).
"""

from __future__ import annotations

import inspect
import re
from typing import Optional

from markdown_it import MarkdownIt

LATEX = re.compile(r"\$\$[\s\S]+?\$\$")
"Gradio's LaTeX cut (the Chatbot's default delimiters, ``$$`` only), found before Markdown."
_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<]*", re.I)
"A GFM autolink as marked finds it (to whitespace or ``<``): it runs over backticks."
_LINES = re.compile(r"\r\n|\r|\n")  # the line breaks markdown-it normalises
_ENTITY = re.compile(r"&(lt|amp);")
_ESCAPES = {"<": "&lt;", "&": "&amp;"}
_UNESCAPES = {"lt": "<", "amp": "&"}


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable("table")  # marked's GFM: tables split code spans
    md.disable("inline")  # inline content is parsed per token below, to know where spans are
    backtick = md.inline.ruler.__rules__[md.inline.ruler.__find__("backticks")].fn

    def spans(state, silent):  # the same rule, recording where each code span lies
        start, count = state.pos, len(state.tokens)
        found = backtick(state, silent)
        if found and not silent and state.src is state.env.get("cp_src") \
                and len(state.tokens) > count and state.tokens[-1].type == "code_inline":
            state.env["cp_spans"].append((start, state.pos))
        return found

    md.inline.ruler.at("backticks", spans)
    return md


_MD = _parser()


def _specials(text: str, pattern: re.Pattern = re.compile(r"(\\*)([<&])")) -> list[int]:
    """Where ``text`` has a ``<`` or ``&`` that no backslash escapes (after an odd run of
    backslashes it is a Markdown escape: ``\\<`` already shows ``<`` and runs nothing, and
    ``\\&lt;`` must stay as the model wrote it)."""
    return [m.start(2) for m in pattern.finditer(text) if len(m.group(1)) % 2 == 0]


def _fully_escaped(text: str, at: list[int]) -> tuple[str, list[int]]:
    """``text`` with the ``<`` and ``&`` at ``at`` escaped, and where each of them is in it."""
    out, moved, pos, grown = [], [], 0, 0
    for i in at:
        piece = _ESCAPES[text[i]]
        out += [text[pos:i], piece]
        moved.append(i + grown)
        grown += len(piece) - 1
        pos = i + 1
    out.append(text[pos:])
    return "".join(out), moved


def _line_starts(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, without its break, as markdown-it numbers them."""
    spans, pos = [], 0
    for brk in _LINES.finditer(text):
        spans.append((pos, brk.start()))
        pos = brk.end()
    spans.append((pos, len(text)))
    return spans


def _align(content: str, line: str, offset: int, in_cell: bool) -> Optional[list[int]]:
    """Where each character of one line of an inline token's ``content`` is in ``line``
    (its source line, which may also hold container marks, indentation, heading marks or
    other table cells); -1 where it is not (leading whitespace, a tab's padding). A line of
    a paragraph ends its source line (but trailing whitespace), a heading's text follows its
    marks, a table's cells come left to right (``offset``) with ``\\|`` read as ``|``."""
    body = content.lstrip()
    lead = len(content) - len(body)
    if not body:
        return [-1] * len(content)
    pattern = "".join(r"\\?\|" if ch == "|" else re.escape(ch) for ch in body)
    match = None if in_cell else re.compile(pattern + r"\s*\Z").search(line, offset)
    match = match or re.compile(pattern).search(line, offset)
    if match is None:
        return None
    where, j = [-1] * lead, match.start()
    for ch in body:
        if ch == "|" and line[j] == "\\":
            j += 1
        where.append(j)
        j += 1
    return where


def _inline_code(md_src: str, lines: list[tuple[int, int]], token, env: dict,
                 cursors: dict, code: list[bool]) -> None:
    """Mark the code spans of one inline token in ``code`` (indexed like ``md_src``); a
    token whose text cannot be located in its source lines marks nothing (escaped)."""
    if "`" not in token.content or not token.map:
        return  # no code span (the common case: spares the inline parse)
    env["cp_src"], env["cp_spans"] = token.content, []
    _MD.inline.parse(token.content, _MD, env, [])
    if not env["cp_spans"]:
        return
    where: list[int] = []
    heads: set[int] = set()
    in_cell = env.get("cp_table", False)
    for k, part in enumerate(token.content.split("\n")):
        row = token.map[0] + k
        if row >= len(lines):
            return
        start, end = lines[row]
        line = md_src[start:end]
        at = _align(part, line, cursors.get(row, 0) if in_cell else 0, in_cell)
        if at is None:
            return
        if in_cell:
            cursors[row] = max([a for a in at if a >= 0], default=-1) + 1
        # A span's line starts are left out: blocks are found before spans, so a raw "<"
        # there would start an HTML block and break the span (its escape shows, harmless).
        heads.add(len(where) + len(part) - len(part.lstrip()))
        where.extend(start + a if a >= 0 else -1 for a in at)
        where.append(-1)  # the line break
    urls = [m.span() for m in _URL.finditer(token.content)]
    for a, b in env["cp_spans"]:
        if any(u < a < v for u, v in urls):
            continue  # the page's GFM takes this "span" into a link: its text is no code
        for i in range(a, min(b, len(where))):
            if where[i] >= 0 and i not in heads:
                code[where[i]] = True


def _as_gradio_shows(text: str) -> tuple[str, list[int]]:
    """``inspect.cleandoc(text)``, which Gradio's Chatbot applies to every str message before
    the page renders it (tabs expanded, the first line's and the common indentation removed,
    outer blank lines dropped), and where each of its characters comes from in ``text``."""
    rows = []
    for start, raw in zip(_starts(text), text.split("\n")):
        chars, src, col = [], [], 0
        for k, ch in enumerate(raw):
            width = 8 - col % 8 if ch == "\t" else 1
            chars.append(" " * width if ch == "\t" else ch)
            src += [start + k] * width
            col = 0 if ch == "\r" else col + width  # str.expandtabs restarts at \r too
        rows.append(("".join(chars), src))
    indents = [len(r) - len(r.lstrip()) for r, _ in rows[1:] if r.lstrip()]
    margin = min(indents, default=0)
    cuts = [len(rows[0][0]) - len(rows[0][0].lstrip())] + [margin] * (len(rows) - 1)
    rows = [(r[cut:], src[cut:]) for (r, src), cut in zip(rows, cuts)]
    ends = [i for i, (r, _) in enumerate(rows) if r]
    rows = rows[ends[0]:ends[-1] + 1] if ends else []
    shown, where = [], []
    for r, src in rows:
        shown.append(r)
        where += src + [src[-1] + 1 if src else -1]  # the line break (placeholder if empty)
    return "\n".join(shown), where[:-1] if where else []


def _starts(text: str) -> list[int]:
    starts, pos = [0], text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _code_at(text: str, at: list[int]) -> set[int]:
    """Which of the positions ``at`` (of ``_specials``) are code the page shows literally,
    judged on the text as Gradio hands it to the page."""
    if inspect.cleandoc(text) == text:
        return _code_in(text, at)
    shown, where = _as_gradio_shows(text)  # whitespace only: each < and & is still there
    return {where[j] for j in _code_in(shown, _specials(shown))} & set(at)


def _code_in(text: str, at: list[int]) -> set[int]:
    """Which of the positions ``at`` of ``text`` (as the page gets it) are code."""
    md_src, moved = _fully_escaped(text, at)
    code = [False] * len(md_src)
    lines = _line_starts(md_src)
    env: dict = {}
    cursors: dict = {}
    for token in _MD.parse(md_src, env):
        if token.type in ("table_open", "table_close"):
            env["cp_table"] = token.type == "table_open"
        elif token.type in ("fence", "code_block") and token.map and not _mermaid(token):
            for row in range(token.map[0], min(token.map[1], len(lines))):
                start, end = lines[row]
                code[start:end] = [True] * (end - start)  # its lines' marks have no < or &
        elif token.type == "inline":
            _inline_code(md_src, lines, token, env, cursors, code)
    cuts = [m.span() for m in LATEX.finditer(text)]  # put back as HTML by the page: escaped
    return {i for i, j in zip(at, moved) if code[j] and not any(a <= i < b for a, b in cuts)}


def _mermaid(token) -> bool:
    """A block the page's renderer turns into a diagram from its text as HTML (Gradio's
    mermaid tokenizer: exactly three backticks, then ``mermaid``)."""
    return token.type == "fence" and token.markup == "```" and token.info.strip() == "mermaid"


def escape_markdown_html(text: str) -> str:
    r"""Escape raw HTML in a model's Markdown answer, but not its code, which Markdown
    already shows literally.

    >>> escape_markdown_html('<b>hi</b> `<i>` and ```<u>``` and \\`<img>\\`')
    '&lt;b>hi&lt;/b> `<i>` and ```<u>``` and \\`&lt;img>\\`'
    >>> escape_markdown_html('x ```\n<div>fake</div>')  # not a fence: not at a line start
    'x ```\n&lt;div>fake&lt;/div>'
    >>> escape_markdown_html("```html\n<p>code</p>\n```\n<p>text</p>")
    '```html\n<p>code</p>\n```\n&lt;p>text&lt;/p>'
    >>> escape_markdown_html("- step:\n\n      ```\n      <p>a && b</p>\n      ```")
    '- step:\n\n      ```\n      <p>a && b</p>\n      ```'
    """
    at = _specials(text)
    if not at:
        return text
    code = _code_at(text, at)
    out, pos = [], 0
    for i in at:
        out += [text[pos:i], text[i] if i in code else _ESCAPES[text[i]]]
        pos = i + 1
    return "".join(out + [text[pos:]])


def unescape_markdown_html(text: str) -> str:
    """The model's own text back from ``escape_markdown_html`` (for the next turn).

    >>> t = 'a < b & `x & y` and &amp;'
    >>> unescape_markdown_html(escape_markdown_html(t)) == t
    True
    """
    at = _specials(text)
    if "&" not in text or not at:
        return text
    code, free = _code_at(text, at), set(at)
    return _ENTITY.sub(lambda m: m.group(0) if m.start() in code or m.start() not in free
                       else _UNESCAPES[m.group(1)], text)
