"""The page's handlers besides /chat: the model picker and its note (page load, ↻, a new
pick), the Download button, and the API's /pull_model and /list_models.

Thin, like the chat's: they validate and apply the rules through ``Service``, go through the
async bridge (so a closed tab closes the stream to Ollama, unless the pull is detached) and
render with ``render``. Every error becomes a message where the user is looking.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Optional

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render
from contextpilot.ui.bridge import batches, keep_pull_updates
from contextpilot.ui.chat_history import asked_model
from contextpilot.ui.service import Service

log = logging.getLogger("contextpilot")

PULL_INTERVAL = 0.11  # < 10 updates/s while bytes flow (margin for jitter): each costs ~1 ms of CPU

SOMETHING_WRONG = ("Something went wrong on the server (the details are in its log). "
                   "Try again; if it keeps failing, tell the operator.")
"What a visitor sees for an unexpected error: exception texts can hold paths and settings."


class PageHandlers:
    """The picker, Download and API handlers, bound to one ``Service`` and the configured
    default model."""

    def __init__(self, service: Service, configured: str) -> None:
        self.service = service
        self.configured = configured

    # -- page state ---------------------------------------------------------------------

    def refresh_models(self, current: Optional[str], host: str = "auto"):
        """Page load and ↻: the dropdown, status line, note, Think control and, on several
        hosts, the host chooser (Auto, then each host as this page may see it)."""
        status = self.service.status_html()  # first: it asks /api/status, which the list's
        data = self.service.models()         # "cloud switched off?" then reads
        value = current or data.default(self.configured)
        chooser = (self._host_chooser(),) if self.service.multi else ()
        return (gr.Dropdown(choices=data.choices(), value=value), status,
                self.service.note(value, data, host), *self.think_control(value), *chooser)

    def _host_chooser(self):
        shown = [self.service.label(n) for n in self.service.hosts.names]
        return gr.Dropdown(choices=[("Auto", "auto")] + [(n, n) for n in shown])

    def reopened(self, index: Any, saved: Any):
        """A saved conversation opened again: one that was not answered (its page closed
        mid-turn) picks the model it asked, so Retry sends it there; else nothing changes."""
        conversation = saved[index] if isinstance(saved, list) and isinstance(
            index, int) and 0 <= index < len(saved) else None
        model = asked_model(conversation)
        try:
            cp.parse_name(model or "")
        except cp.InvalidModelName:  # the browser's data: nothing we did not write
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return gr.Dropdown(value=model), self.service.note(model), *self.think_control(model)

    def model_changed(self, model: str, host: str = "auto"):
        """A new pick (or host): its note and Think controls; "Download anyway" starts
        unticked."""
        return (self.service.note(model, None, host), *self.think_control(model),
                gr.Checkbox(value=False))

    def controls(self, model: Optional[str], host: str = "auto"):
        """Show a control only where it applies (after each note change): "Download
        anyway" beside a verdict that needs it, Download for a model not installed."""
        # On page load this can run with the dropdown's value from before the load's
        # update (empty): it is the default the load picked.
        state = self.service.note_state(
            model or self.service.models(False).default(self.configured), host=host)
        override = (gr.Checkbox(visible=True) if state.needs_override
                    else gr.Checkbox(visible=False, value=False))
        download = gr.Button(visible=not (state.installed or state.downloading))
        if self.service.multi:  # "on every host" goes with Download
            return override, download, gr.Checkbox(visible=not state.installed)
        return override, download

    def think_control(self, model: Optional[str]):
        """On/off (#think-toggle) for a thinking model; a level (#think-level) for a model
        that takes levels (gpt-oss); neither for the others."""
        try:
            caps, family = self.service.think_facts(model) if model else (None, "")
            levels = cp.think_levels(model, family) if model else ()
        except cp.ContextPilotError:
            caps, levels = None, ()
        return (gr.Checkbox(visible=bool(caps and "thinking" in caps) and not levels),
                gr.Dropdown(visible=bool(levels)))

    # -- downloads ----------------------------------------------------------------------

    async def download(self, model: str, download_anyway: bool = False, host: str = "auto",
                       every_host: bool = False):
        """The Download button: the bar (one per host), then the dropdown, note and status.
        The pull is detached: closing or reloading the page leaves it running (see
        Downloads). ``host``: where to (auto: where a chat would go); ``every_host``: all."""
        skip = gr.skip()
        try:
            name = cp.parse_name(str(model or "").strip()).display
            choice = self.service.host_choice(host)
            every = every_host is True and self.service.multi
            refusal = await asyncio.to_thread(self.service.before_pull, name,
                                              download_anyway is True, choice, every)
            if refusal and every:  # which hosts it may not fit: the note speaks of one
                yield render.error_html(refusal), skip, skip, skip
                return
            if refusal:  # the verdict is on the page already: say it there, once
                note = await asyncio.to_thread(self.service.note_state, name, None, True)
                yield "", skip, note.html, skip
                return
            yield render.progress_html(cp.PullProgress(model=name, status="pulling manifest")), \
                skip, skip, skip
            latest: dict[str, cp.PullProgress] = {}
            hosts = self.service.hosts
            async for batch in batches(lambda t: hosts.pull(
                    name, choice, every=every, cancel=t, detach=True), PULL_INTERVAL):
                if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                    yield skip, skip, skip, skip
                    continue
                # the note under the picker: "downloading now", not "press Download", once
                note = skip if latest else await asyncio.to_thread(
                    self.service.note, name, None, host)
                latest.update((v.host, v) for v in batch)
                yield self._cards(latest), skip, note, skip
            done = tuple(h for h, v in latest.items() if v.done and h)
            if any(v.done for v in latest.values()):
                self.service.start_preload(name, done)
        except cp.PullCancelled as exc:  # someone pressed Cancel: not a failure
            yield render.note_html("info", render.escape(self.service.public(str(exc)))), \
                skip, skip, skip
        except cp.ContextPilotError as exc:
            yield render.error_html(self.service.public(str(exc))), skip, skip, skip
        except Exception:
            log.exception("download failed")
            yield render.error_html(SOMETHING_WRONG), skip, skip, skip
        dropdown, status, note, *_rest = await asyncio.to_thread(self.refresh_models, model, host)
        yield skip, dropdown, note, status

    def _cards(self, latest: dict[str, cp.PullProgress]) -> str:
        """One download card per host (hosts by the names this page may see)."""
        return "".join(render.progress_html(render.on_host(v, self.service.label))
                       for v in latest.values())

    async def pull_model_api(self, name: str, download_anyway: bool = False,
                             host: str = "auto") -> AsyncIterator[str]:
        """Download a model; streams one progress line at a time and ends with the result.
        ``host``: a host's name, "all", or "auto" (where a chat would go)."""
        last: Optional[cp.PullProgress] = None
        try:
            display = cp.parse_name(str(name or "").strip()).display
            every = isinstance(host, str) and host.strip().lower() == "all"
            choice = None if every else self.service.host_choice(host)
            refusal = await asyncio.to_thread(self.service.before_pull, display,
                                              download_anyway is True, choice, every)
            if refusal:
                yield refusal
                return
            hosts = self.service.hosts
            async for batch in batches(lambda t: hosts.pull(
                    display, choice, every=every, cancel=t), PULL_INTERVAL):
                if not batch:  # Ollama is silent: repeating the last line lets Gradio see
                    # a closed connection (an API endpoint cannot yield gr.skip())
                    yield render.progress_text(last or cp.PullProgress(
                        model=display, status="pulling manifest"))
                    continue
                for value in keep_pull_updates(batch):
                    last = value
                    yield render.progress_text(render.on_host(value, self.service.label))
            self.service.start_preload(display)
            yield render.pull_result_text(last, display)
        except cp.ContextPilotError as exc:
            yield self.service.public(str(exc))
        except Exception:
            log.exception("pull failed")
            yield SOMETHING_WRONG

    def list_models_api(self) -> dict:
        """Installed models and the catalog of popular models (with download sizes), and
        the hosts: each one's name, state, version, models installed and loaded."""
        status = self.service.server_status()
        data = self.service.models(with_capabilities=False).as_json(status)
        data["hosts"] = [_host_json(s) for s in self.service.host_statuses()]
        return data


def _host_json(s: cp.HostStatus) -> dict:
    """One host for /list_models: its name and state (the address only on a private app)."""
    out = {"name": s.name, "reachable": s.reachable, "version": s.version, "error": s.error,
           "installed": list(s.installed), "loaded": list(s.loaded), "in_flight": s.in_flight}
    if s.url:
        out["url"] = s.url
    return out
