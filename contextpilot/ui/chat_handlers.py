"""The chat's handlers: /chat, the Download button and /pull_model.

Thin: they validate and apply the rules through ``Service`` (names, the shared-app policy,
message size, the fit check), go through the async bridge (so Stop and a closed tab close
the stream to Ollama) and render with ``render``. Every error becomes a message where the
user is looking; nothing raw reaches Gradio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional, Union

import gradio as gr

import contextpilot as cp
from contextpilot.policy import MAX_MESSAGE_CHARS
from contextpilot.ui import render
from contextpilot.ui.bridge import batches, keep_pull_updates
from contextpilot.ui.line import AnswerLine, LineFull
from contextpilot.ui.service import Service
from contextpilot.ui.serving import genuine_uploads

log = logging.getLogger("contextpilot")

PULL_INTERVAL = 0.11  # < 10 updates/s while bytes flow (margin for jitter): each costs ~1 ms of CPU
TOKEN_INTERVAL = 0.05  # coalesce tokens to ~20 updates/s
BUSY_TOKEN_INTERVAL = 0.1  # ~10 updates/s per answer while many answers stream at once
BUSY_STREAMS = 4  # more answers streaming than this: the busy interval

_streaming = 0  # answers streaming in this process (the event loop's thread only)

def busy_message(full: "LineFull") -> str:
    """What a chat that waited too long for a free answer slot says."""
    answers = "1 answer is" if full.running == 1 else f"{full.running} answers are"
    others = {0: "", 1: " and 1 more message waits"}.get(
        full.waiting, f" and {full.waiting} more messages wait")
    return (f"ContextPilot is busy: {answers} being written{others}. Your message is kept: "
            f"send it again (or press Retry) in a moment.")


SOMETHING_WRONG = ("Something went wrong on the server (the details are in its log). "
                   "Try again; if it keeps failing, tell the operator.")
"What a visitor sees for an unexpected error: exception texts can hold paths and settings."


def split_message(message: Any) -> tuple[str, list[str]]:
    """ChatInterface(multimodal=True) sends {"text": ..., "files": [...]}; accept a str too."""
    if isinstance(message, dict):
        files = [f.get("path", "") if isinstance(f, dict) else str(f)
                 for f in message.get("files") or []]
        return message.get("text") or "", [f for f in files if f]
    return message or "", []


def _history_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(_history_text(c) for c in content)
    if isinstance(content, dict) and content.get("type") == "text":
        return str(content.get("text", ""))
    return ""  # files and components of earlier turns are not sent again


HISTORY_BUDGET = 2 * MAX_MESSAGE_CHARS
"Characters of earlier turns sent with a message; the oldest turns beyond it are left out."


def ollama_history(history: list, budget: int = HISTORY_BUDGET) -> list[dict]:
    """Chat history -> Ollama messages: user turns as typed, answers as the model wrote them
    (the Chatbot hands the handler source text: ``chatbot.SafeChatbot.preprocess``); status,
    thinking and error messages (metadata, or the warning sign) are display only. The newest
    turns that fit in ``budget`` characters.

    The history is the visitor's to send: it is read newest first and only until the budget
    is spent, and nothing in it is parsed."""
    kept: list[dict] = []
    size = 0
    for m in reversed(history if isinstance(history, list) else []):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or (m.get("metadata") or {}).get("title"):
            continue
        text = _history_text(m.get("content"))
        if not text or (role == "assistant" and text.startswith("⚠️")):
            continue
        size += len(text)
        if size > budget:
            break
        kept.append({"role": role, "content": text})
    return kept[::-1]


def vision_refusal(name: str) -> str:
    return (f"{name} cannot read images (it has no vision capability), so your message was "
            f"not sent. Remove the image, or choose a vision model such as gemma3 or llava.")


def think_value(think: bool, caps: Optional[tuple], level: str = "",
                levels: tuple = ()) -> Optional[Union[bool, str]]:
    """A model that takes levels (gpt-oss) gets the chosen level; otherwise off sends
    think=false, and on asks a thinking model to think and leaves others alone."""
    if levels:  # chat_stream validates it: a crafted value is refused, not ignored
        return level or None
    if not think:
        return False
    return True if caps is not None and "thinking" in caps else None


def _images(files: list[str]) -> list[bytes]:
    return [Path(f).read_bytes() for f in files]


PARSE_SHARE = 10
"""An answer is shown again at most every PARSE_SHARE times its last render took, so the
render (in Gradio's worker thread, but it holds the GIL) stays under a tenth of a core per
stream however long the answer grows. A growing answer is parsed again only from its first
part that is not final (``render_markdown``): usually ~1 ms, and 20 updates/s."""


def paced(view: render.ChatView) -> Callable[[object], float]:
    """The update interval for one turn: ``_interval``, or longer while rendering the
    answer for display is slow."""
    return lambda event: max(_interval(event), view.parse_seconds * PARSE_SHARE)


def _interval(event: object) -> float:
    """Each update costs Gradio the same CPU whatever it carries, so under load the answers
    are coalesced more: the page stays smooth and the streams share the CPU fairly."""
    if isinstance(event, cp.PullProgress):
        return PULL_INTERVAL
    return BUSY_TOKEN_INTERVAL if _streaming > BUSY_STREAMS else TOKEN_INTERVAL


class ChatHandlers:
    """The handlers, bound to one ``Service`` and the configured default model."""

    def __init__(self, service: Service, configured: str, line: AnswerLine) -> None:
        self.service = service
        self.configured = configured
        self.line = line  # answers at once; the rest wait in it

    # -- page state ---------------------------------------------------------------------

    def refresh_models(self, current: Optional[str]):
        """Page load and ↻: the dropdown, status line, note and Think control."""
        data = self.service.models()
        value = current or data.default(self.configured)
        status = self.service.status_html()
        return (gr.Dropdown(choices=data.choices(), value=value), status,
                self.service.note(value, data), *self.think_control(value))

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
        return override, gr.Button(visible=not state.installed)

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

    # -- /chat --------------------------------------------------------------------------

    async def chat(self, message: Any, history: list, model: str = "", system: str = "",
                   temperature: float = 0.7, num_ctx: float = 4096, think: bool = True,
                   download_anyway: bool = False, think_level: str = "medium"):
        """Answer ``message`` with ``model``, downloading the model first if needed.

        Yields the assistant's messages (download status, thinking, answer) and, for the page,
        the progress bar, the dropdown, the model note and the status line."""
        skip = gr.skip()
        text, files = split_message(message)
        view = render.ChatView(str(model or ""))
        answering = False
        try:
            self.service.policy.check_message(text, files=len(files))
            self.service.policy.check_message(system or "")
            async with contextlib.aclosing(self.line.wait()) as line:  # a closed tab leaves
                async for ahead in line:  # all answer slots taken: wait, told why
                    view.waiting = ahead
                    yield view.messages(), skip, skip, skip, skip
            answering, view.waiting = True, None
            files = await asyncio.to_thread(genuine_uploads, files)
            host = self.service.host  # in the request's context: the bridge threads have none
            name = await self._resolve_model(model)
            view.model = name
            self.service.policy.check_chat(name)
            caps = await self._prepare(name, download_anyway is True)
            auto_pull = await asyncio.to_thread(self.service.may_pull, name)
            cloud = cp.parse_name(name).is_cloud  # never downloaded, not even to look
            if files and caps is None and not cloud:  # unknown until it is here: download
                async for batch in batches(lambda t: cp.pull_model(
                        name, host, cancel=t), PULL_INTERVAL):
                    if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                        yield view.messages(), skip, skip, skip, skip
                        continue
                    view.feed(batch)
                    yield view.messages(), render.progress_html(view.pull), skip, skip, skip
                caps = await asyncio.to_thread(self.service.capabilities, name)
            # a cloud model ollama.com would not describe (signed out): let the chat say why
            unknown_cloud = cloud and caps is None
            if files and not unknown_cloud and "vision" not in (caps or ()):
                view.error = vision_refusal(name)
                yield (view.messages(), *(await asyncio.to_thread(self._after_turn, view)))
                return
            user: dict = {"role": "user", "content": text}
            if files:
                user["images"] = await asyncio.to_thread(_images, files)
            messages = await asyncio.to_thread(ollama_history, history) + [user]
            options = {"temperature": float(temperature), "num_ctx": int(num_ctx)}
            yield view.messages(), skip, skip, skip, skip  # at once: the turn has started

            def make(token):
                # A model removed meanwhile is pulled again only where a pull is allowed.
                return cp.chat_stream(name, messages, system=system or None, options=options,
                                      auto_pull=auto_pull,
                                      think=think_value(bool(think), caps, str(think_level),
                                                        cp.think_levels(name)),
                                      host=host, cancel=token)

            global _streaming
            _streaming += 1
            try:
                async for batch in batches(make, paced(view)):
                    if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                        yield view.messages(), skip, skip, skip, skip
                        continue
                    pulled_now = any(isinstance(e, cp.PullProgress) for e in batch)
                    view.feed(batch)
                    bar = render.progress_html(view.pull) if pulled_now else skip
                    yield view.messages(), bar, skip, skip, skip
            finally:
                _streaming -= 1
            await asyncio.to_thread(self.service.record_use, name)  # for make-room advice
        except cp.ContextPilotError as exc:
            view.error = self.service.public(str(exc))
        except LineFull as full:
            view.waiting, view.error = None, busy_message(full)
        except Exception:  # never a raw traceback, path or setting in the page: the log has it
            log.exception("chat failed")
            view.error = SOMETHING_WRONG
        finally:
            if answering:
                await self.line.release()
        yield (view.messages(), *(await asyncio.to_thread(self._after_turn, view)))

    async def _resolve_model(self, model: Optional[str]) -> str:
        model = str(model or "").strip()
        if not model:
            data = await asyncio.to_thread(self.service.models, False)
            model = data.default(self.configured)
        return cp.parse_name(model).display  # InvalidModelName: shown as the answer

    async def _prepare(self, name: str, override: bool) -> Optional[tuple]:
        """Before a turn: a missing model must be allowed and fit (else NotAllowed); then
        its capabilities (None when unknown). A cloud model is never downloaded nor
        fit-checked (it runs on ollama.com); a shared app's allowlist still applies."""
        if cp.parse_name(name).is_cloud:
            await asyncio.to_thread(self.service.policy.check_pull, name)
        elif not await asyncio.to_thread(self.service.installed, name):
            refusal = await asyncio.to_thread(self.service.before_pull, name, override)
            if refusal:
                raise cp.NotAllowed("download", name, refusal)
        return await asyncio.to_thread(self.service.capabilities, name)

    def _after_turn(self, view: render.ChatView):
        """After each message: the bar's last state, the dropdown and note (a pull installs
        a model), and the status line (Ollama may have gone or come back)."""
        status = self.service.status_html()
        if view.pull is None:
            return gr.skip(), gr.skip(), gr.skip(), status
        # A failed download is said in the chat, where the user is looking: not twice.
        bar = render.progress_html(view.pull) if view.pull.done or not view.error else ""
        data = self.service.models()
        return bar, gr.Dropdown(choices=data.choices()), self.service.note(view.model, data), \
            status

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
                last = batch[-1]
                yield render.progress_html(last), skip, skip, skip
            if last is not None and last.done:
                self.service.start_preload(name)
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
