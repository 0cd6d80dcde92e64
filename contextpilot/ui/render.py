"""Pure rendering: library values -> chat messages, progress HTML and plain text.

Nothing here does I/O or imports gradio. Everything that comes from a model or from the
server (names, statuses, error messages) is escaped before it reaches HTML. Chat messages
hold source text (Markdown; server text marked plain, titles plain text):
the Chatbot renders them (``render_markdown``, through ``chatbot.SafeChatbot``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Optional

from ..fit.catalog import CatalogEntry
from ..names import parse_name
from ..types import (ChatDone, ContentDelta, ModelInfo, PullProgress, Routed, ThinkingDelta,
                     non_chat_kind)
from ..units import format_duration, format_size, format_speed
from .render_fleet import answer_footer
from .render_markdown import Live, Memo

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
    """One line for /pull_model and the chat:
    ``mistral:latest: Downloading 45% · 1.8 GB / ...`` (``... on gpu1: ...`` on several hosts)."""
    pct = percent(p)
    where = f" on {p.host}" if p.host else ""
    head = f"{p.model}{where}: {step_words(p)}" + (f" {pct}%" if pct is not None else "")
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
    label = f"{'Downloaded' if p.done else 'Downloading'} {escape(short_name(p.model))}" + (
        f" on {escape(p.host)}" if p.host else "")
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


def on_host(p: PullProgress, label: Optional[Callable[[str], str]]) -> PullProgress:
    """``p`` with its host as ``label`` shows it (as it is when it has no host or no label)."""
    return replace(p, host=label(p.host)) if label and p.host else p


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
    route: Optional[Routed] = None
    "Several hosts: which answers, and which were skipped before it."
    host_label: Optional[Callable[[str], str]] = None
    "Several hosts: a host's name as the page may show it; None: one host, none shown."
    _memos: tuple[Memo, Memo] = field(default_factory=lambda: (Memo(), Memo()), repr=False)

    @property
    def parse_seconds(self) -> float:
        """How long the last renders of the answer and thinking took (the chat paces its
        updates by it); the Chatbot renders them, from where they last stopped being final."""
        return sum(m.seconds for m in self._memos)

    def feed(self, events: Iterable[Any]) -> None:
        pull = None
        for event in events:
            if isinstance(event, ContentDelta):
                self.answer.append(event.text)
            elif isinstance(event, ThinkingDelta):
                self.thinking.append(event.text)
                self.thought = event.elapsed
            elif isinstance(event, PullProgress):  # the newest counts
                pull = event
            elif isinstance(event, ChatDone):
                self.stats = event
            elif isinstance(event, Routed):
                self.route = event
        if pull is not None:  # its host as the page may show it
            self.pull = on_host(pull, self.host_label)

    def _routed(self) -> Optional[Routed]:
        """The route with its hosts as the page may show them (None: nothing to say)."""
        r, label = self.route, self.host_label
        if r is None or label is None:
            return None
        return Routed(label(r.host), tuple((label(n), why) for n, why in r.skipped), r.pull)

    def messages(self) -> list[dict]:
        out = []
        routed = self._routed()
        if routed is not None and routed.skipped:  # "gpu1 did not answer; answered by gpu2"
            out.append({"role": "assistant", "content": "",
                        "metadata": {"title": routed.message, "status": "done"}})
        if self.pull is not None:
            out.append(self._pull_message())
        if self.thinking:
            done = bool(self.answer) or self.stats is not None or bool(self.error)
            seconds = self.stats.thinking_seconds if self.stats else None
            title = thought_title(self.thought if seconds is None else seconds) if done \
                else "Thinking…"
            out.append({"role": "assistant",
                        "content": Live.of("".join(self.thinking), self._memos[1]),
                        "metadata": {"title": title, "status": "done" if done else "pending"}})
        if self.answer:
            out.append({"role": "assistant",
                        "content": Live.of("".join(self.answer), self._memos[0])})
        if routed is not None and self.stats is not None:  # "gpu2 · 41 tok/s"
            out.append({"role": "assistant", "content": "", "metadata": {
                "title": answer_footer(self.stats, routed.host), "status": "done"}})
        if self.error:
            out.append({"role": "assistant",
                        "content": Live.of(f"⚠️ {self.error}", plain=True)})
        if not out and self.waiting is not None:
            ahead = "next in line" if self.waiting == 0 else f"{self.waiting} ahead"
            out.append({"role": "assistant", "content": Live.of(
                        "Every answer slot is taken: your message will be answered as soon "
                        "as one is free."),
                        "metadata": {"title": f"Waiting for a free slot — {ahead}…",
                                     "status": "pending"}})
        if not out:  # something to show at once while the model loads
            out.append({"role": "assistant", "content": Live.of(""),
                        "metadata": {"title": f"Asking {short_name(self.model)}…",
                                     "status": "pending"}})
        return out

    def _pull_message(self) -> dict:
        p = self.pull
        assert p is not None
        name = short_name(p.model)  # titles are plain text (the Chatbot escapes them)
        pct = percent(p)
        if p.done:
            title = f"Downloaded {name} — 100%"
        elif self.error:
            title = f"Could not download {name}"
        elif pct is None:
            title = f"Downloading {name} — {step_words(p).lower()}"
        else:
            title = f"Downloading {name} — {pct}%"
        ok = p.done or bool(self.error) or bool(self.answer) or bool(self.thinking)
        return {"role": "assistant", "content": Live.of(progress_text(p), plain=True),
                "metadata": {"title": title, "status": "done" if ok else "pending"}}


def thought_title(seconds: float) -> str:
    """The Thinking message's title once the answer begins: ``thought_title(4.2) ==
    'Thought for 4 s'``."""
    return "Thought for less than a second" if seconds < 0.5 else \
        f"Thought for {format_duration(seconds)}"


# ----------------------------------------------------------------------------- models and status

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
    return {"embedding": "embedding only", "image": "image generation",
            "other": "not for chat"}.get(non_chat_kind(capabilities), "")


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
        where = f" on {escape(', '.join(installed.hosts))}" if installed.hosts else ""
        return note_html("ok", f"{name} is installed ({format_size(installed.size)}){where}.",
                         f'<span class="cp-chips">{chips}</span>' if chips else "")
    chips = chips_html(entry.capabilities if entry else capabilities)
    return (f'<div class="cp-note-sub">{name} is not installed yet: it downloads when you '
            f'send a message, or press Download now.'
            f'{f" <span class=cp-chips>{chips}</span>" if chips else ""}</div>')
