"""Pure rendering: library values -> chat messages, progress HTML and plain text.

Nothing here does I/O or imports gradio. Everything that comes from a model or from the
server (names, statuses, answers, error messages) is escaped before it reaches Markdown or
HTML; in model answers, code spans and fenced blocks are left alone because Markdown shows
them literally.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from ..catalog import CatalogEntry
from ..types import ChatDone, ContentDelta, ModelInfo, PullProgress, ServerStatus, ThinkingDelta

STEP_WORDS = {
    "manifest": "Pulling manifest",
    "download": "Downloading",
    "verify": "Verifying sha256 digest",
    "write": "Writing manifest",
    "done": "Ready",
}

# ----------------------------------------------------------------------------- numbers


def human_bytes(n: Optional[float]) -> str:
    """Decimal units, as Ollama shows sizes: ``human_bytes(4_113_301_824) == '4.1 GB'``."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def human_speed(bps: Optional[float]) -> str:
    return "" if bps is None else f"{human_bytes(bps)}/s"


def human_eta(seconds: Optional[float]) -> str:
    """``human_eta(125) == '2m 05s'``; empty when unknown."""
    if seconds is None:
        return ""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def percent(p: PullProgress) -> Optional[int]:
    if p.done:
        return 100
    return None if p.fraction is None else min(100, int(p.fraction * 100))


def short_name(model: str) -> str:
    return model[: -len(":latest")] if model.endswith(":latest") else model


# ----------------------------------------------------------------------------- escaping

# Code, as Markdown (CommonMark) sees it: a fence opens at the start of a line (up to three
# spaces in) and runs to a closing fence of the same kind or to the end (an unclosed fence
# while streaming is code too); an inline span is a run of backticks, not escaped with "\\",
# closed by a run of the same length on the same line. Anything looser would let a model
# smuggle raw HTML past the escaping by calling it code.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*(?:\n.*?(?:\n {0,3}\1[`~]*[ \t]*(?=\n|\Z)|\Z)|\Z)",
                    re.S | re.M)
_INLINE = re.compile(r"(?<![\\`])(`+)(?!`)[^\n]*?(?<!`)\1(?!`)")


def escape(text: str) -> str:
    """HTML-escape plain text (server messages, names) for Markdown or HTML."""
    return html.escape(text, quote=True)


def _map_outside_code(text: str, fn) -> str:
    """Apply ``fn`` to the parts of Markdown ``text`` that are not code."""
    out, pos = [], 0
    for fence in _FENCE.finditer(text):
        out.append(_map_inline(text[pos:fence.start()], fn))
        out.append(fence.group(0))
        pos = fence.end()
    out.append(_map_inline(text[pos:], fn))
    return "".join(out)


def _map_inline(text: str, fn) -> str:
    out, pos = [], 0
    for span in _INLINE.finditer(text):
        out.append(fn(text[pos:span.start()]))
        out.append(span.group(0))
        pos = span.end()
    out.append(fn(text[pos:]))
    return "".join(out)


def escape_markdown_html(text: str) -> str:
    r"""Escape raw HTML in a model's Markdown answer, but not inside code, which Markdown
    already shows literally.

    >>> escape_markdown_html('<b>hi</b> `<i>` and ```<u>``` and \\`<img>\\`')
    '&lt;b&gt;hi&lt;/b&gt; `<i>` and ```<u>``` and \\`&lt;img&gt;\\`'
    >>> escape_markdown_html('x ```\n<div>fake</div>')  # not a fence: not at a line start
    'x ```\n&lt;div&gt;fake&lt;/div&gt;'
    >>> escape_markdown_html("```html\n<p>code</p>\n```\n<p>text</p>")
    '```html\n<p>code</p>\n```\n&lt;p&gt;text&lt;/p&gt;'
    """
    return _map_outside_code(text, lambda part: html.escape(part, quote=False))


def unescape_markdown_html(text: str) -> str:
    """The model's own text back from ``escape_markdown_html`` (for the next turn).

    >>> t = 'a < b & `x & y` and &amp;'
    >>> unescape_markdown_html(escape_markdown_html(t)) == t
    True
    """
    return _map_outside_code(text, html.unescape)


# ----------------------------------------------------------------------------- progress


def step_words(p: PullProgress) -> str:
    if p.status.startswith("removing"):  # a re-pull replaced blobs (step "write")
        return "Removing unused layers"
    return STEP_WORDS.get(p.step) or p.status.capitalize()


def progress_facts(p: PullProgress) -> list[str]:
    """The facts after the percent: bytes, speed, ETA, resume note (plain text)."""
    facts = []
    if p.total:
        facts.append(f"{human_bytes(p.completed)} / {human_bytes(p.total)}")
    if p.speed and not p.done:
        facts.append(human_speed(p.speed))
    if p.eta is not None and not p.done:
        facts.append(f"ETA {human_eta(p.eta)}")
    if p.resumed_bytes > 0:
        facts.append(f"Resumed from {human_bytes(p.resumed_bytes)}")
    return facts


def progress_text(p: PullProgress) -> str:
    """One line for /pull_model and the chat: ``mistral:latest: Downloading 45% · 1.8 GB / ...``."""
    pct = percent(p)
    head = f"{p.model}: {step_words(p)}" + (f" {pct}%" if pct is not None else "")
    return " · ".join([head, *progress_facts(p)])


def progress_html(p: PullProgress) -> str:
    """The download bar for ``#pull-status``: a real bar with role=progressbar."""
    pct = percent(p) or 0
    width = 100.0 if p.done else (p.fraction or 0.0) * 100
    color = "#16a34a" if p.done else "#2563eb"
    facts = " · ".join(escape(f) for f in progress_facts(p))
    label = f"{'Downloaded' if p.done else 'Downloading'} {escape(p.model)}"
    return (
        f'<div class="cp-pull" data-step="{escape(p.step)}" data-done="{str(p.done).lower()}">'
        f'<div class="cp-pull-head" style="display:flex;justify-content:space-between;gap:1em">'
        f'<strong>{label}</strong><span class="cp-step">{escape(step_words(p))}</span>'
        f'<span class="cp-pct">{pct}%</span></div>'
        f'<div class="cp-bar" role="progressbar" aria-label="{label}" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{pct}" '
        f'style="height:12px;border-radius:6px;background:#e5e7eb;overflow:hidden;margin:4px 0">'
        f'<div class="cp-bar-fill" style="width:{width:.1f}%;height:100%;background:{color}">'
        f'</div></div><div class="cp-facts" style="font-size:0.9em">{facts}</div></div>'
    )


def error_html(message: str) -> str:
    return f'<div class="cp-error" role="alert" style="color:#b91c1c">{escape(message)}</div>'


def pull_result_text(p: Optional[PullProgress], model: str) -> str:
    size = f" ({human_bytes(p.total)})" if p and p.total else ""
    return f"{model} is ready{size}."


# ----------------------------------------------------------------------------- chat


@dataclass
class ChatView:
    """The assistant's turn as it streams: download status, thinking, answer, error."""

    model: str
    pull: Optional[PullProgress] = None
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    error: str = ""
    stats: Optional[ChatDone] = None
    thought: float = 0.0
    "Seconds the model had been thinking at its latest thought."

    def feed(self, events: Iterable[Any]) -> None:
        for event in events:
            if isinstance(event, ContentDelta):
                self.answer.append(event.text)
            elif isinstance(event, ThinkingDelta):
                self.thinking.append(event.text)
                self.thought = event.elapsed
            elif isinstance(event, PullProgress):
                self.pull = event
            elif isinstance(event, ChatDone):
                self.stats = event

    def messages(self) -> list[dict]:
        out = []
        if self.pull is not None:
            out.append(self._pull_message())
        if self.thinking:
            done = bool(self.answer) or self.stats is not None or bool(self.error)
            seconds = self.stats.thinking_seconds if self.stats else None
            title = thought_title(self.thought if seconds is None else seconds) if done \
                else "Thinking…"
            out.append({"role": "assistant", "content": escape("".join(self.thinking)),
                        "metadata": {"title": title, "status": "done" if done else "pending"}})
        if self.answer:
            out.append({"role": "assistant",
                        "content": escape_markdown_html("".join(self.answer))})
        if self.error:
            out.append({"role": "assistant", "content": f"⚠️ {escape(self.error)}"})
        if not out:  # something to show at once while the model loads
            out.append({"role": "assistant", "content": "",
                        "metadata": {"title": f"Asking {escape(short_name(self.model))}…",
                                     "status": "pending"}})
        return out

    def _pull_message(self) -> dict:
        p = self.pull
        assert p is not None
        name = escape(short_name(p.model))
        pct = percent(p)
        if p.done:
            title = f"Downloaded {name} — 100%"
        elif pct is None:
            title = f"Downloading {name} — {escape(step_words(p).lower())}"
        else:
            title = f"Downloading {name} — {pct}%"
        ok = p.done or (self.error == "" and (bool(self.answer) or bool(self.thinking)))
        return {"role": "assistant", "content": escape(progress_text(p)),
                "metadata": {"title": title, "status": "done" if ok else "pending"}}


def thought_title(seconds: float) -> str:
    """The Thinking message's title once the answer begins: ``thought_title(4.2) ==
    'Thought for 4 s'``."""
    return "Thought for less than a second" if seconds < 0.5 else \
        f"Thought for {round(seconds)} s"


# ----------------------------------------------------------------------------- models and status


def status_html(s: ServerStatus, note: str = "", hint: str = "") -> str:
    """The status line; ``note`` follows a healthy status (e.g. "Started Ollama"), ``hint``
    an unreachable one (e.g. how to install Ollama)."""
    if s.reachable:
        version = f" {escape(s.version)}" if s.version else ""
        extra = f" — {escape(note)}" if note else ""
        cloud = {True: " · cloud models available", False: " · cloud models switched off",
                 None: ""}[s.cloud]
        return (f'<span class="cp-ok"><span style="color:#16a34a">●</span> '
                f'Ollama{version} at {escape(s.host)}'
                f'<span class="cp-cloud">{cloud}</span>{extra}</span>')
    extra = f"<br><small>{escape(hint)}</small>" if hint else ""
    return (f'<span class="cp-down" role="alert"><span style="color:#dc2626">●</span> '
            f'{escape(s.error)}{extra}</span>')


def model_choices(installed: Sequence[ModelInfo], catalog: Sequence[CatalogEntry],
                  installed_keys: set[str], catalog_key) -> list[tuple[str, str]]:
    """Dropdown ``(label, value)``: installed first with size (a cloud model with its
    badge instead: it runs on ollama.com), then catalog downloads."""
    choices = [(installed_label(m), m.name) for m in installed]
    for e in catalog:
        if catalog_key(e.name) not in installed_keys:
            choices.append((f"{e.short_name} — download {human_bytes(e.size)}", e.name))
    return choices


CLOUD_BADGE = "☁ cloud"


def installed_label(m: ModelInfo) -> str:
    """``llama3.2:latest (2.0 GB)``; ``gpt-oss:20b-cloud (☁ cloud)`` for a cloud model."""
    return f"{m.name} ({CLOUD_BADGE if m.is_cloud else human_bytes(m.size)})"


def cloud_note(model: str) -> str:
    return (f"{escape(model)} is a cloud model: it runs on ollama.com through your Ollama, "
            f"so nothing is downloaded (sign in first: `ollama signin`).")


def model_note(model: str, installed: Optional[ModelInfo], entry: Optional[CatalogEntry]) -> str:
    """The line under the dropdown: installed, or what a download will cost."""
    name = escape(model)
    if installed is not None:
        return f"{name} is installed ({human_bytes(installed.size)})."
    size = f" (about {human_bytes(entry.size)})" if entry else ""
    return (f"{name} is not installed yet: it will be downloaded{size} when you send a "
            f"message, or press Download to get it now.")
