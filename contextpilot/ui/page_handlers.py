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

    def refresh_models(self, current: Optional[str]):
        """Page load and ↻: the dropdown, status line, note and Think control."""
        data = self.service.models()
        value = current or data.default(self.configured)
        status = self.service.status_html()
        return (gr.Dropdown(choices=data.choices(), value=value), status,
                self.service.note(value, data), *self.think_control(value))

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

    def model_changed(self, model: str):
        """A new pick: its note and Think controls; "Download anyway" starts unticked."""
        return self.service.note(model), *self.think_control(model), gr.Checkbox(value=False)

    def controls(self, model: Optional[str]):
        """Show a control only where it applies (after each note change): "Download
        anyway" beside a verdict that needs it, Download for a model not installed."""
        # On page load this can run with the dropdown's value from before the load's
        # update (empty): it is the default the load picked.
        state = self.service.note_state(
            model or self.service.models(False).default(self.configured))
        override = (gr.Checkbox(visible=True) if state.needs_override
                    else gr.Checkbox(visible=False, value=False))
        return override, gr.Button(visible=not (state.installed or state.downloading))

    def think_control(self, model: Optional[str]):
        """On/off (#think-toggle) for a thinking model; a level (#think-level) for a model
        that takes levels (gpt-oss); neither for the others."""
        try:
            caps = self.service.capabilities(model) if model else None
            levels = cp.think_levels(model, self.service.family(model)) if model else ()
        except cp.ContextPilotError:
            caps, levels = None, ()
        return (gr.Checkbox(visible=bool(caps and "thinking" in caps) and not levels),
                gr.Dropdown(visible=bool(levels)))

    # -- downloads ----------------------------------------------------------------------

    async def download(self, model: str, download_anyway: bool = False):
        """The Download button: the bar, then the dropdown, note and status. The pull is
        detached: closing or reloading the page leaves it running (see Downloads)."""
        skip = gr.skip()
        try:
            name = cp.parse_name(str(model or "").strip()).display
            refusal = await asyncio.to_thread(self.service.before_pull, name,
                                              download_anyway is True)
            if refusal:  # the verdict is on the page already: say it there, once
                note = await asyncio.to_thread(self.service.note_state, name, None, True)
                yield "", skip, note.html, skip
                return
            yield render.progress_html(cp.PullProgress(model=name, status="pulling manifest")), \
                skip, skip, skip
            last = None
            host = self.service.host
            async for batch in batches(lambda t: cp.pull_model(
                    name, host, cancel=t, detach=True), PULL_INTERVAL):
                if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                    yield skip, skip, skip, skip
                    continue
                # the note under the picker: "downloading now", not "press Download", once
                note = skip if last else await asyncio.to_thread(self.service.note, name)
                last = batch[-1]
                yield render.progress_html(last), skip, note, skip
            if last is not None and last.done:
                self.service.start_preload(name)
        except cp.PullCancelled as exc:  # someone pressed Cancel: not a failure
            yield render.note_html("info", render.escape(self.service.public(str(exc)))), \
                skip, skip, skip
        except cp.ContextPilotError as exc:
            yield render.error_html(self.service.public(str(exc))), skip, skip, skip
        except Exception:
            log.exception("download failed")
            yield render.error_html(SOMETHING_WRONG), skip, skip, skip
        dropdown, status, note, *_think = await asyncio.to_thread(self.refresh_models, model)
        yield skip, dropdown, note, status

    async def pull_model_api(self, name: str, download_anyway: bool = False
                             ) -> AsyncIterator[str]:
        """Download a model; streams one progress line at a time and ends with the result."""
        last: Optional[cp.PullProgress] = None
        try:
            display = cp.parse_name(str(name or "").strip()).display
            refusal = await asyncio.to_thread(self.service.before_pull, display,
                                              download_anyway is True)
            if refusal:
                yield refusal
                return
            host = self.service.host
            async for batch in batches(lambda t: cp.pull_model(
                    display, host, cancel=t), PULL_INTERVAL):
                if not batch:  # Ollama is silent: repeating the last line lets Gradio see
                    # a closed connection (an API endpoint cannot yield gr.skip())
                    yield render.progress_text(last or cp.PullProgress(
                        model=display, status="pulling manifest"))
                    continue
                for value in keep_pull_updates(batch):
                    last = value
                    yield render.progress_text(value)
            self.service.start_preload(display)
            yield render.pull_result_text(last, display)
        except cp.ContextPilotError as exc:
            yield self.service.public(str(exc))
        except Exception:
            log.exception("pull failed")
            yield SOMETHING_WRONG

    def list_models_api(self) -> dict:
        """Installed models and the catalog of popular models (with download sizes)."""
        status = self.service.server_status()
        return self.service.models(with_capabilities=False).as_json(status)
