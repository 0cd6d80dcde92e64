"""chat_stream(): auto-pull a missing model (yielding PullProgress), then stream the answer
as typed deltas, then the stats. Ollama answering 404 to the chat itself is looked at again:
a model still installed (servers before 0.34.4 answered a spurious 404 on large libraries)
is asked again, never downloaded; one removed between the check and the call is pulled,
then asked once more. A cloud model (``gpt-oss:120b:cloud``) is never pulled: the local
server proxies it to ollama.com. A model that cannot chat (an embedding model...) is refused
before anything is sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generator, Iterable, Iterator, Mapping, Optional, Sequence, Union

from . import _client, models
from .cancel import CancelToken
from .errors import (InvalidRequest, ModelNotFound, NotAChatModel, OllamaError,
                     OllamaUnavailable, PullCancelled, PullFailed)
from .names import ModelName, parse_name
from .pull import pull_model
from .pull.progress import Clock
from .types import ChatDone, ChatEvent, ContentDelta, ThinkingDelta, non_chat_kind

log = logging.getLogger("contextpilot")

THINK_LEVELS = ("low", "medium", "high", "max")
"What ``think`` takes besides True/False (gpt-oss; Ollama maps max to high for it)."
Think = Union[bool, str, None]


def think_levels(model: str, family: str = "") -> tuple[str, ...]:
    """The levels ``model`` takes for ``think`` (the gpt-oss family: low, medium, high;
    Ollama maps max to high for it); () for models that only think or not.

    >>> think_levels("gpt-oss:120b-cloud"), think_levels("qwen3:0.6b")
    (('low', 'medium', 'high'), ())
    """
    base = model.rpartition("/")[2].split(":", 1)[0].lower()
    if base.startswith("gpt-oss") or family.lower() in ("gptoss", "gpt-oss"):
        return THINK_LEVELS[:3]
    return ()


def think_value(think: object) -> Think:
    """Validate ``think``: None (the model's default), True/False, or a level.

    >>> think_value("High"), think_value(False), think_value(None)
    ('high', False, None)
    >>> think_value("hard")
    Traceback (most recent call last):
    ...
    contextpilot.errors.InvalidRequest: think must be True, False or one of low, medium, high, max (not 'hard').
    """
    if think is None or think is True or think is False:
        return think
    if isinstance(think, str) and think.strip().lower() in THINK_LEVELS:
        return think.strip().lower()
    shown = repr(think)[:40]
    raise InvalidRequest(f"think must be True, False or one of {', '.join(THINK_LEVELS)} "
                         f"(not {shown}).")


def chat_stream(
    model: Union[str, ModelName],
    messages: Sequence[Mapping[str, Any]],
    *,
    system: Optional[str] = None,
    options: Optional[Mapping[str, Any]] = None,
    think: Think = None,
    auto_pull: bool = True,
    host: Optional[str] = None,
    stall_timeout: Optional[float] = None,
    keep_alive: Optional[Any] = None,
    cancel: Optional[CancelToken] = None,
    clock: Clock = time.monotonic,
    detach_pull: bool = False,
) -> Iterator[ChatEvent]:
    """Yield PullProgress while a missing model downloads, then ContentDelta/ThinkingDelta as
    the answer streams, then one ChatDone. ``messages`` are Ollama chat messages
    (role, content, optionally images); ``system`` is prepended as a system message.
    A ``cancel`` token ends the stream (and closes it to Ollama) from another thread.
    ``think``: True/False, or a level ("low", "medium", "high", "max") for models that take
    one (gpt-oss); None leaves it to the model. A cloud model is never downloaded.
    ``detach_pull``: a download this chat starts goes on when the chat is closed or its
    token ``leave()``s (a closed page), as ``pull_model(detach=True)``; ``cancel()`` stops it
    unless someone else keeps it.
    """
    parsed = parse_name(model)  # invalid names never reach Ollama; parsed once, here
    think = think_value(think)
    url = _client.resolve_host(host)
    payload = _messages(messages, system)
    pull_args = dict(host=url, stall_timeout=stall_timeout, cancel=cancel, clock=clock,
                     detach=detach_pull)
    answer = (url, parsed, payload, options, think, keep_alive, cancel, clock)
    have = None if parsed.is_cloud else models.installed(parsed, url)
    if not parsed.is_cloud and have is None:
        if not auto_pull:
            raise ModelNotFound(parsed.display, installed_only=True)
        if not (yield from _auto_pull(parsed, pull_args, cancel)):
            return
    elif have is not None:
        check_chat_model(parsed.display, have.capabilities)
    try:
        yield from _answer(*answer)
    except ModelNotFound:
        if not auto_pull or parsed.is_cloud:  # a cloud 404 is an answer, not a pull trigger
            raise
        yield from _after_404(parsed, answer, pull_args, cancel)


def check_chat_model(name: str, capabilities: Sequence[str]) -> None:
    """Raise NotAChatModel when Ollama's capabilities (known: not empty) lack "completion"."""
    if non_chat_kind(capabilities):
        raise NotAChatModel(name, tuple(capabilities))


def _after_404(parsed: ModelName, answer: tuple, pull_args: dict,
               cancel: Optional[CancelToken]) -> Iterator[ChatEvent]:
    """Ollama said 404 to the chat: look at what is installed again before any download. A
    model still listed is asked once more (a spurious 404: servers before 0.34.4, on large
    libraries); one really gone is pulled again, then asked once more."""
    url = answer[0]
    models.invalidate_cache(url)
    if models.model_exists(parsed, url):
        log.info("Ollama answered 404 for '%s', which it lists as installed; asking again",
                 parsed.display)
        try:
            yield from _answer(*answer)
        except ModelNotFound as exc:
            raise OllamaError("not found", 404, parsed.display, message=(
                f"Ollama answered that '{parsed.display}' is not there, though it lists it "
                f"as installed, twice. Nothing was downloaded. Try again in a moment; "
                f"Ollama 0.34.4 and later fixed this (https://ollama.com/download).")) from exc
        return
    if not (yield from _auto_pull(parsed, pull_args, cancel)):
        return
    log.info("Model '%s' pulled successfully, retrying request...", parsed.display)
    yield from _answer(*answer)


def _messages(messages: Iterable[Mapping[str, Any]], system: Optional[str]) -> list[dict]:
    # A caller's typo (None, a bare string, a list of strings) is ours to explain, not a
    # TypeError from dict().
    items = None if isinstance(messages, (str, bytes, Mapping)) or not isinstance(
        messages, Iterable) else list(messages)
    if items is None or not all(isinstance(m, Mapping) for m in items):
        raise InvalidRequest("messages must be a list of chat messages like "
                             "[{'role': 'user', 'content': 'Hello'}].")
    out = [dict(m) for m in items]
    if system:
        out.insert(0, {"role": "system", "content": system})
    return out


def _auto_pull(parsed: ModelName, pull_args: dict, cancel: Optional[CancelToken]
               ) -> Generator[ChatEvent, None, bool]:
    """Pull ``parsed``; True when it is there, False when our own consumer cancelled (the chat
    then ends quietly, as a stopped answer does). Someone else's cancel_pull() raises."""
    name = parsed.display
    log.info("Pulling Ollama model '%s'... This may take a few minutes.", name)
    try:
        yield from pull_model(parsed, **pull_args)
        return True
    except PullCancelled:
        if cancel and cancel.cancelled:
            return False
        raise
    except ModelNotFound as exc:
        raise ModelNotFound(name, auto=True) from exc
    except PullFailed as exc:  # the library's own words: its kind and advice, said once
        raise PullFailed(name, exc.reason, auto=True, kind=exc.kind,
                         advice=exc.advice) from exc


def _answer(url: str, name: ModelName, payload: list[dict], options, think, keep_alive,
            cancel: Optional[CancelToken], clock: Clock) -> Iterator[ChatEvent]:
    try:
        yield from _stream_answer(url, name, payload, options, think, keep_alive, cancel, clock)
    except OllamaError as exc:
        # Asking a model without the capability to think is a 400 before any output: answer
        # without thinking rather than fail the message.
        if not (think and exc.status_code == 400 and "support thinking" in exc.reason):
            raise
        log.info("Model '%s' does not support thinking; answering without it", name.display)
        yield from _stream_answer(url, name, payload, options, None, keep_alive, cancel, clock)


def _stream_answer(url: str, name: ModelName, payload: list[dict], options, think,
                   keep_alive, cancel: Optional[CancelToken], clock: Clock
                   ) -> Iterator[ChatEvent]:
    client = _client.get_client(url, streaming=True)
    stream = _client.Stream(lambda: client.chat(
        model=name.display, messages=payload, stream=True, options=options, think=think,
        keep_alive=keep_alive))
    unregister = cancel.on_cancel(lambda: stream.abort("cancelled")) if cancel else None
    finished = False
    timer = _ThinkTimer(clock)
    try:
        for part in stream:
            message = part.message
            if message is not None:
                if message.thinking:
                    yield ThinkingDelta(message.thinking, timer.thought())
                if message.content:
                    timer.answered()
                    yield ContentDelta(message.content)
            if part.done:
                finished = True
                timer.answered()
                yield _done(name.display, part, timer.seconds)
        if not finished and not stream.aborted:  # closed cleanly, but the answer never ended
            raise OllamaUnavailable(url, during="answer")
    except OllamaUnavailable:
        raise
    except Exception as exc:
        if stream.aborted:  # the consumer asked to stop: end quietly
            return
        raise _client.chat_error(exc, url, name, stream) from exc
    finally:
        if unregister:
            unregister()


class _ThinkTimer:
    """How long the model thought: from its first thought to the first word of the answer."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._start: Optional[float] = None
        self.seconds: Optional[float] = None

    def thought(self) -> float:
        now = self._clock()
        if self._start is None:
            self._start = now
        return now - self._start

    def answered(self) -> None:
        if self._start is not None and self.seconds is None:
            self.seconds = self._clock() - self._start


def _done(name: str, part: Any, thinking_seconds: Optional[float]) -> ChatDone:
    return ChatDone(
        thinking_seconds=thinking_seconds,
        model=name,
        done_reason=part.done_reason or "",
        eval_count=part.eval_count or 0,
        prompt_eval_count=part.prompt_eval_count or 0,
        total_duration=part.total_duration or 0,
        load_duration=part.load_duration or 0,
        prompt_eval_duration=part.prompt_eval_duration or 0,
        eval_duration=part.eval_duration or 0,
    )
