"""The chat's handler: /chat (the page's other handlers are ``page_handlers``).

Thin: they validate and apply the rules through ``Service`` (names, the shared-app policy,
message size, the fit check), go through the async bridge (so Stop and a closed tab close
the stream to Ollama) and render with ``render``. Every error becomes a message where the
user is looking; nothing raw reaches Gradio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import gradio as gr

import contextpilot as cp
from contextpilot.cancel import CancelToken
from contextpilot.policy import MAX_MESSAGE_CHARS
from contextpilot.ui import render
from contextpilot.ui.bridge import batches
from contextpilot.ui.page_handlers import PULL_INTERVAL, SOMETHING_WRONG, PageHandlers
from contextpilot.ui.line import AnswerLine, LineFull
from contextpilot.ui.service import Service
from contextpilot.ui.serving import current_session, genuine_uploads, page_session
from contextpilot.ui.visitors import Quota, TooManyAnswers, too_many_message

log = logging.getLogger("contextpilot")

TOKEN_INTERVAL = 0.05  # coalesce tokens to ~20 updates/s
BUSY_TOKEN_INTERVAL = 0.1  # ~10 updates/s per answer while many answers stream at once
BUSY_STREAMS = 4  # more answers streaming than this: the busy interval

_streaming = 0  # answers streaming in this process (the event loop's thread only)
MAX_TRACKED = 1000
"Pages whose turn Stop can still reach after it ended as a close (see ChatHandlers.stop)."

def busy_message(full: "LineFull") -> str:
    """What a chat that waited too long for a free answer slot says."""
    answers = "1 answer is" if full.running == 1 else f"{full.running} answers are"
    others = {0: "", 1: " and 1 more message waits"}.get(
        full.waiting, f" and {full.waiting} more messages wait")
    return (f"ContextPilot is busy: {answers} being written{others}. Your message is kept: "
            f"send it again (or press Retry) in a moment.")


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


@dataclass(frozen=True)
class Turn:
    """What one /chat call asks, besides the model: the message and the settings."""

    text: str
    files: list
    history: list
    system: str
    temperature: float
    num_ctx: float
    think: bool
    download_anyway: bool
    think_level: str
    host: Optional[str]
    "The host chosen (its name), or None for the router."


class ChatHandlers(PageHandlers):
    """The page's handlers (``PageHandlers``) and /chat, bound to one ``Service``, the
    configured default model and the line of answers."""

    def __init__(self, service: Service, configured: str, line: AnswerLine,
                 quota: Optional[Quota] = None) -> None:
        super().__init__(service, configured)
        self.line = line  # answers at once; the rest wait in it
        self.quota = quota  # each visitor's share of them, on a shared app
        self._running: dict[str, CancelToken] = {}  # a page's (session's) turn, for Stop

    def stop(self, request: gr.Request) -> None:
        """Stop, pressed (beside ChatInterface's cancel of the handler): stop this page's
        turn for good. Gradio ends the handler where it happens to be, so the bridge may
        have seen a closed page and left its download running; this withdraws it (unless
        someone else keeps it) and ends the answer's stream, whichever it saw."""
        token = self._running.pop(page_session(request), None)
        if token is not None:
            token.cancel()

    # -- /chat --------------------------------------------------------------------------

    async def chat(self, message: Any, history: list, model: str = "", system: str = "",
                   temperature: float = 0.7, num_ctx: float = 4096, think: bool = True,
                   download_anyway: bool = False, think_level: str = "medium",
                   host: str = "auto"):
        """Answer ``message`` with ``model``, downloading the model first if needed.
        ``host``: "auto" (the router chooses, on several hosts) or a host's name.

        Yields the assistant's messages (download status, thinking, answer) and, for the page,
        the progress bar, the dropdown, the model note and the status line."""
        skip = gr.skip()
        text, files = split_message(message)
        view = render.ChatView(str(model or ""))
        answering, share = False, None
        try:
            self.service.policy.check_message(text, files=len(files))
            self.service.policy.check_message(system or "")
            choice = self.service.host_choice(host)  # a bad host: refused before anything
            share = await self._take_share()
            async with contextlib.aclosing(self.line.wait()) as line:  # a closed tab leaves
                async for ahead in line:  # all answer slots taken: wait, told why
                    view.waiting = ahead
                    yield view.messages(), skip, skip, skip, skip
            answering, view.waiting = True, None
            turn = Turn(text, files, history, str(system or ""), temperature, num_ctx,
                        bool(think), download_anyway is True, str(think_level), choice)
            async for update in self._answer(view, model, turn):
                yield update
        except cp.ContextPilotError as exc:
            view.error = self.service.public(str(exc))
        except LineFull as full:
            view.waiting, view.error = None, busy_message(full)
        except TooManyAnswers as many:
            view.error = too_many_message(many)
        except Exception:  # never a raw traceback, path or setting in the page: the log has it
            log.exception("chat failed")
            view.error = SOMETHING_WRONG
        finally:
            if answering:
                await self.line.release()
            if share is not None and self.quota is not None:
                self.quota.give_back(share)
        yield (view.messages(), *(await asyncio.to_thread(self._after_turn, view)))

    async def _take_share(self) -> Optional[tuple[str, str]]:
        """On a shared app, one more chat of this visitor's (their session and address):
        raises TooManyAnswers when they already have their share waiting or streaming."""
        if self.quota is None or not await asyncio.to_thread(
                lambda: self.service.policy.shared):
            return None
        return self.quota.take(*current_session())

    async def _answer(self, view: render.ChatView, model: Any, turn: "Turn"):
        """One answer, once it has a slot: the model resolved and allowed, downloaded when
        an image needs its capabilities known, then the answer streamed (auto-pulling a
        missing model). Yields the chat's updates; raises the library's errors."""
        skip = gr.skip()
        files = await asyncio.to_thread(genuine_uploads, turn.files)
        hosts = self.service.hosts  # in the request's context: the bridge threads have none
        session = current_session()[0]  # its next turns prefer the host that answered
        name = await self._resolve_model(model)
        view.model = name
        view.host_label = self.service.label if self.service.multi else None
        self.service.policy.check_chat(name)
        caps = await self._prepare(name, turn.download_anyway, turn.host)
        auto_pull = await asyncio.to_thread(self.service.may_pull, name)
        cloud = cp.parse_name(name).is_cloud  # never downloaded, not even to look
        if files and caps is None and not cloud:  # unknown until it is here: download
            def pull(token):
                self._track(session, token)  # for Stop; it goes on if the page closes
                return hosts.pull(name, turn.host, cancel=token, detach=True)

            async for update in self._pull_first(view, pull):
                yield update
            caps = await asyncio.to_thread(self.service.capabilities, name)
        # a cloud model ollama.com would not describe (signed out): let the chat say why
        unknown_cloud = cloud and caps is None
        if files and not unknown_cloud and "vision" not in (caps or ()):
            view.error = vision_refusal(name)
            return
        user: dict = {"role": "user", "content": turn.text}
        if files:
            user["images"] = await asyncio.to_thread(_images, files)
        messages = await asyncio.to_thread(ollama_history, turn.history) + [user]
        options = {"temperature": float(turn.temperature), "num_ctx": int(turn.num_ctx)}
        yield view.messages(), skip, skip, skip, skip  # at once: the turn has started

        def make(token):
            self._track(session, token)
            # A model removed meanwhile is pulled again only where a pull is allowed.
            # A download it starts goes on if the page closes (Stop ends it, unless someone
            # else keeps it): the message waits in the saved conversation, to send again.
            return hosts.chat_stream(name, messages, choice=turn.host, session=session,
                                     system=turn.system or None, options=options,
                                     auto_pull=auto_pull, detach_pull=True,
                                     think=think_value(turn.think, caps, turn.think_level,
                                                       cp.think_levels(name)),
                                     cancel=token)

        try:
            async for update in self._stream(view, make):
                yield update
        except GeneratorExit:  # closed where it was (a page gone, or Stop): see stop
            raise
        except BaseException:
            self._running.pop(session, None)
            raise
        self._running.pop(session, None)
        await asyncio.to_thread(self.service.record_use, name)  # for make-room advice

    async def _pull_first(self, view: render.ChatView, make):
        """Download the model before the turn (its capabilities decide whether it may see
        the attached images), showing the progress in the chat and the bar."""
        skip = gr.skip()
        async for batch in batches(make, PULL_INTERVAL):
            if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                yield view.messages(), skip, skip, skip, skip
                continue
            note = await self._download_note(view)
            view.feed(batch)
            yield view.messages(), render.progress_html(view.pull), skip, note, skip

    async def _stream(self, view: render.ChatView, make):
        """The answer as it streams (a download first, if the model went missing)."""
        global _streaming
        skip = gr.skip()
        _streaming += 1
        try:
            async for batch in batches(make, paced(view)):
                if not batch:  # Ollama is silent: a no-op lets Gradio see a closed tab
                    yield view.messages(), skip, skip, skip, skip
                    continue
                pulled_now = any(isinstance(e, cp.PullProgress) for e in batch)
                note = await self._download_note(view) if pulled_now else skip
                view.feed(batch)
                bar = render.progress_html(view.pull) if pulled_now else skip
                yield view.messages(), bar, skip, note, skip
        finally:
            _streaming -= 1

    def _track(self, session: str, token: CancelToken) -> None:
        """Remember this page's turn for Stop, until it ends; one closed where it was (its
        page gone, or Stop arriving as a close: Gradio closes a handler wherever it happens
        to be) is kept, so a Stop after it still stops its download. The oldest of too many
        pages is forgotten."""
        self._running[session] = token
        while len(self._running) > MAX_TRACKED:
            self._running.pop(next(iter(self._running)))

    async def _download_note(self, view: render.ChatView):
        """The note under the picker as a download begins ("downloading now", not "press
        Download"); nothing after that (the turn's end says "installed")."""
        if view.pull is not None:
            return gr.skip()
        return await asyncio.to_thread(self.service.note, view.model)

    async def _resolve_model(self, model: Optional[str]) -> str:
        model = str(model or "").strip()
        if not model:
            data = await asyncio.to_thread(self.service.models, False)
            model = data.default(self.configured)
        return cp.parse_name(model).display  # InvalidModelName: shown as the answer

    async def _prepare(self, name: str, override: bool, host: Optional[str] = None
                       ) -> Optional[tuple]:
        """Before a turn: a missing model must be allowed and fit (else NotAllowed); then
        its capabilities (None when unknown). A cloud model is never downloaded nor
        fit-checked (it runs on ollama.com); a shared app's allowlist still applies.
        ``host``: the host chosen (None: the router's pick, on several hosts)."""
        if cp.parse_name(name).is_cloud:
            await asyncio.to_thread(self.service.policy.check_pull, name)
        elif not await asyncio.to_thread(self.service.installed, name, host):
            refusal = await asyncio.to_thread(self.service.before_pull, name, override, host)
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
