"""Pure rendering: library values -> chat messages, progress HTML and plain text.

Nothing here does I/O or imports gradio. Everything that comes from a model or from the
server (names, statuses, answers, error messages) is escaped before it reaches Markdown or
HTML; in model answers, code is left alone because Markdown shows it literally (what is
code is decided by a Markdown parser: ``render_markdown``).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from ..fit.catalog import CatalogEntry
from ..names import parse_name
from ..types import ChatDone, ContentDelta, ModelInfo, PullProgress, ServerStatus, ThinkingDelta
from ..units import format_duration, format_size, format_speed
from .render_markdown import escape_markdown_html as escape_markdown_html  # re-exported
from .render_markdown import unescape_markdown_html as unescape_markdown_html

STEP_WORDS = {
    "manifest": "Pulling manifest",
    "download": "Downloading",
    "verify": "Verifying sha256 digest",
    "write": "Writing manifest",
    "done": "Ready",
}

# ----------------------------------------------------------------------------- numbers

# Sizes and durations are written by ``contextpilot.units``, the one formatter.


def percent(p: PullProgress) -> Optional[int]:
    if p.done:
        return 100
    return None if p.fraction is None else min(100, int(p.fraction * 100))


def short_name(model: str) -> str:
    return model[: -len(":latest")] if model.endswith(":latest") else model


# ----------------------------------------------------------------------------- escaping


def escape(text: str) -> str:
    """HTML-escape plain text (server messages, names) for Markdown or HTML."""
    return html.escape(text, quote=True)


# ----------------------------------------------------------------------------- progress


def step_words(p: PullProgress) -> str:
    if p.status.startswith("removing"):  # a re-pull replaced blobs (step "write")
        return "Removing unused layers"
    return STEP_WORDS.get(p.step) or p.status.capitalize()


def progress_facts(p: PullProgress) -> list[str]:
    """The facts after the percent: bytes, speed, time left, resume note (plain text).
    "Resumed" only when the library says bytes of an interrupted download were reused."""
    facts = []
    if p.total:
        facts.append(f"{format_size(p.completed)} / {format_size(p.total)}")
    if p.stalled_for is not None and not p.done:  # the speed decayed, the ETA is unknown
        facts.append(stalled_words(p.stalled_for))
    else:
        if p.speed and not p.done:
            facts.append(format_speed(p.speed))
        if p.eta is not None and not p.done:
            facts.append(f"{format_duration(p.eta)} left")
    if p.resumed_bytes > 0:
        facts.append(f"Resumed from {format_size(p.resumed_bytes)}")
    return facts


def stalled_words(seconds: float) -> str:
    """``'no data for 12 s — Ollama is retrying'``: a download whose bytes stopped (Ollama
    repeats its count while it waits for the registry and retries)."""
    return f"no data for {format_duration(seconds)} — Ollama is retrying"


def progress_text(p: PullProgress) -> str:
    """One line for /pull_model and the chat: ``mistral:latest: Downloading 45% · 1.8 GB / ...``."""
    pct = percent(p)
    head = f"{p.model}: {step_words(p)}" + (f" {pct}%" if pct is not None else "")
    return " · ".join([head, *progress_facts(p)])


def progress_bar(p: PullProgress, label: str) -> str:
    """The whole-model bar (role=progressbar, so a screen reader and the tests read it)."""
    pct = percent(p) or 0
    width = 100.0 if p.done else (p.fraction or 0.0) * 100
    return (f'<div class="cp-bar" role="progressbar" aria-label="{label}" aria-valuemin="0" '
            f'aria-valuemax="100" aria-valuenow="{pct}"><div class="cp-bar-fill" '
            f'style="width:{width:.1f}%"></div></div>')


def progress_html(p: PullProgress) -> str:
    """The download card for ``#pull-status``: name and percent, the bar, the step in words
    with bytes, speed and time left; Ollama's own step (the layer) folded away."""
    pct = percent(p)
    label = f"{'Downloaded' if p.done else 'Downloading'} {escape(short_name(p.model))}"
    facts = " · ".join(escape(f) for f in [step_words(p), *progress_facts(p)])
    layer = escape(p.status) + (f" ({escape(p.digest[:19])}…)" if p.digest else "")
    return (
        f'<div class="cp-card cp-pull" data-step="{escape(p.step)}" '
        f'data-done="{str(p.done).lower()}"><div class="cp-pull-head"><strong>{label}</strong>'
        f'<span class="cp-pct">{"" if pct is None else f"{pct}%"}</span></div>'
        f'{progress_bar(p, label)}<div class="cp-facts">{facts}</div>'
        f'<details class="cp-more"><summary>Details</summary><div>Ollama says: {layer}</div>'
        f'</details></div>'
    )


def error_html(message: str) -> str:
    return (f'<div class="cp-card cp-error" role="alert"><span class="cp-icon" '
            f'aria-hidden="true">⚠</span> {escape(message)}</div>')


def pull_result_text(p: Optional[PullProgress], model: str) -> str:
    size = f" ({format_size(p.total)})" if p and p.total else ""
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
    waiting: Optional[int] = None
    "Waiting for a free answer slot, with this many messages ahead (0: next)."
    parse_seconds: float = 0.0
    "How long the answer's last Markdown parse took (the chat paces its updates by it)."
    _shown: tuple[str, str] = field(default=("", ""), repr=False)

    def _answer_shown(self) -> str:
        # Parsed again only when the answer grew: most updates are thinking, a silent
        # Ollama or the last tick, and a long code-heavy answer costs ~10 ms to parse.
        text = "".join(self.answer)
        if self._shown[0] != text:
            started = time.perf_counter()
            self._shown = (text, escape_markdown_html(text))
            self.parse_seconds = time.perf_counter() - started
        return self._shown[1]

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
            out.append({"role": "assistant", "content": self._answer_shown()})
        if self.error:
            out.append({"role": "assistant", "content": f"⚠️ {escape(self.error)}"})
        if not out and self.waiting is not None:
            ahead = "next in line" if self.waiting == 0 else f"{self.waiting} ahead"
            out.append({"role": "assistant", "content": "Every answer slot is taken: your "
                        "message will be answered as soon as one is free.",
                        "metadata": {"title": f"Waiting for a free slot — {ahead}…",
                                     "status": "pending"}})
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
        elif self.error:
            title = f"Could not download {name}"
        elif pct is None:
            title = f"Downloading {name} — {escape(step_words(p).lower())}"
        else:
            title = f"Downloading {name} — {pct}%"
        ok = p.done or bool(self.error) or bool(self.answer) or bool(self.thinking)
        return {"role": "assistant", "content": escape(progress_text(p)),
                "metadata": {"title": title, "status": "done" if ok else "pending"}}


def thought_title(seconds: float) -> str:
    """The Thinking message's title once the answer begins: ``thought_title(4.2) ==
    'Thought for 4 s'``."""
    return "Thought for less than a second" if seconds < 0.5 else \
        f"Thought for {format_duration(seconds)}"


# ----------------------------------------------------------------------------- models and status

INSTALL_URL = "https://ollama.com/download"
CAPABILITIES = ("vision", "tools", "thinking", "embedding")
ICONS = {"ok": "✓", "fits": "✓", "info": "ℹ", "warn": "⚠", "stop": "⛔", "busy": "↻",
         "cloud": "☁"}


def is_cloud(name: str) -> bool:
    """A model that runs on ollama.com (``ModelName.is_cloud``); False for a bad name."""
    try:
        return parse_name(name).is_cloud
    except Exception:
        return False


def capability_words(capabilities: Optional[Iterable[str]]) -> list[str]:
    return [c for c in CAPABILITIES if c in set(capabilities or ())]


def chips_html(capabilities: Optional[Iterable[str]]) -> str:
    words = capability_words(capabilities)
    return "".join(f'<span class="cp-chip" data-cap="{c}">{c}</span>' for c in words)


def purpose(capabilities: Optional[Iterable[str]]) -> str:
    """What a model that cannot chat is for (Ollama lists no "completion"): "embedding
    only", "image generation", "not for chat"; '' for a chat model or when not known."""
    caps = set(capabilities or ())
    if not caps or "completion" in caps:
        return ""
    if "embedding" in caps:
        return "embedding only"
    return "image generation" if "image" in caps else "not for chat"


def note_html(kind: str, text: str, extra: str = "", role: str = "status") -> str:
    """One line with an icon (``text`` and ``extra`` are HTML, already escaped)."""
    return (f'<div class="cp-note" data-kind="{kind}" role="{role}"><span class="cp-icon" '
            f'aria-hidden="true">{ICONS[kind]}</span><span class="cp-note-text">{text}</span>'
            f'{extra}</div>')


CLOUD_OFF = "cloud is switched off on this Ollama"


def cloud_note(model: str, capabilities: Optional[Iterable[str]] = None,
               cloud: Optional[bool] = None) -> str:
    """The note for a cloud model; ``cloud`` False: this Ollama has them switched off."""
    if cloud is False:
        return note_html("stop", f"{escape(model)} is a cloud model, but {CLOUD_OFF} "
                                 f"(OLLAMA_NO_CLOUD): choose a local model, or turn cloud "
                                 f"models back on (unset OLLAMA_NO_CLOUD and restart Ollama).")
    chips = chips_html(capabilities)
    return note_html("cloud", f"{escape(model)} is a cloud model: it runs on ollama.com "
                              f"through your Ollama, so nothing is downloaded (sign in first: "
                              f"<code>ollama signin</code>).",
                     f'<span class="cp-chips">{chips}</span>' if chips else "")


def model_note(model: str, installed: Optional[ModelInfo], entry: Optional[CatalogEntry],
               capabilities: Optional[Iterable[str]] = None) -> str:
    """The line under the picker: installed (size, capability chips), or what happens when
    a message is sent; the fit verdict follows it for a missing model (``fit_line``)."""
    name = escape(model)
    if installed is not None and purpose(capabilities):
        return note_html("info", f"{name} is installed ({format_size(installed.size)}): "
                                 f"{escape(purpose(capabilities))}, it cannot chat. Choose "
                                 f"a chat model to talk to.")
    if installed is not None:
        chips = chips_html(capabilities)
        return note_html("ok", f"{name} is installed ({format_size(installed.size)}).",
                         f'<span class="cp-chips">{chips}</span>' if chips else "")
    chips = chips_html(entry.capabilities if entry else capabilities)
    return (f'<div class="cp-note-sub">{name} is not installed yet: it downloads when you '
            f'send a message, or press Download now.'
            f'{f" <span class=cp-chips>{chips}</span>" if chips else ""}</div>')


MODE_NAMES_SHOWN = 3
"How many allowed models the shared chip names before '+N more' (all are in its title)."


def mode_html(shared: bool, allowed: Optional[Sequence[str]] = None,
              locked: Sequence[str] = ()) -> str:
    """The chip that says which mode the app is in. ``allowed``: the models visitors may
    download (names; None: not known yet); ``locked``: the operator's actions ("delete",
    "unload", "cancel").

    >>> mode_html(True, ["llama3.2", "qwen3:0.6b"], ["delete"])  # doctest: +ELLIPSIS
    '<span ... data-mode="shared" title="...">Shared: downloads limited to llama3.2, qwen3:0.6b</span>'
    """
    if not shared:
        return ('<span class="cp-chip" data-mode="private" title="Only this machine reaches '
                'this app: downloads, delete, unload and cancel are all allowed.">'
                'Private</span>')
    names = [short_name(n) for n in allowed or ()]
    if allowed is None:  # not known yet (the installed models, and Ollama is not there)
        text, title = "Shared", "Visitors may download only the allowed models."
    elif names:
        shown = ", ".join(names[:MODE_NAMES_SHOWN]) + (
            f" +{len(names) - MODE_NAMES_SHOWN} more" if len(names) > MODE_NAMES_SHOWN else "")
        text = f"Shared: downloads limited to {shown}"
        title = f"Visitors may download only: {', '.join(names)}."
    else:
        text, title = "Shared: no downloads", "Visitors may not download models."
    if locked:
        title += f" {_and(locked).capitalize()} are the operator's."
    return (f'<span class="cp-chip" data-mode="shared" title="{escape(title)}">'
            f'{escape(text)}</span>')


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def status_html(s: ServerStatus, note: str = "", hint: str = "", mode: str = "") -> str:
    """The status chip: Ollama's version and host, cloud, the app's ``mode`` (``mode_html``);
    when Ollama is not there, what is wrong, the fix (``hint``) and where to get Ollama."""
    if s.reachable:
        host = s.host.split("://", 1)[-1]
        version = f" {escape(s.version)}" if s.version else ""
        cloud_chip = {
            True: '<span class="cp-chip" data-cloud="yes" title="cloud models available">'
                  '☁ cloud</span>',
            False: '<span class="cp-chip" data-cloud="no" title="cloud models switched off">'
                   'cloud off</span>', None: ""}[s.cloud]
        extra = f'<span class="cp-status-note">{escape(note)}</span>' if note else ""
        return (f'<div class="cp-status" data-state="ok"><span class="cp-dot" '
                f'aria-hidden="true"></span><span class="cp-status-text">Ollama{version} · '
                f'{escape(host)}</span>{cloud_chip}{mode}{extra}</div>')
    # With a hint (what autostart found and what to do), the error's first sentence says
    # what is wrong and the hint the fix; the error's generic advice would repeat it.
    headline = (s.error.split(". ", 1)[0].rstrip(".") + ".") if hint else s.error
    fix = f'<div class="cp-status-fix">{escape(hint)}</div>' if hint else ""
    return (f'<div class="cp-status" data-state="down" role="alert"><div class="cp-status-line">'
            f'<span class="cp-dot" aria-hidden="true"></span><span class="cp-status-text">'
            f'{escape(headline)}</span></div>{fix}<div class="cp-status-actions">'
            f'<a class="cp-status-link" href="{INSTALL_URL}" target="_blank" '
            f'rel="noopener noreferrer">How to install Ollama</a>{mode}</div></div>')
