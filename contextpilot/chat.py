"""chat_stream(): auto-pull a missing model (yielding PullProgress), then stream the answer
as typed deltas, then the stats. Ollama answering 404 to the chat itself (the model was
removed between the check and the call) pulls and retries once.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generator, Iterable, Iterator, Mapping, Optional, Sequence

from . import _client, models
from .cancel import CancelToken
from .errors import ModelNotFound, OllamaError, OllamaUnavailable, PullCancelled, PullFailed
from .names import parse_name
from .progress import Clock
from .pull import pull_model
from .types import ChatDone, ChatEvent, ContentDelta, ThinkingDelta

log = logging.getLogger("contextpilot")


def chat_stream(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    system: Optional[str] = None,
    options: Optional[Mapping[str, Any]] = None,
    think: Optional[bool] = None,
    auto_pull: bool = True,
    host: Optional[str] = None,
    stall_timeout: Optional[float] = None,
    keep_alive: Optional[Any] = None,
    cancel: Optional[CancelToken] = None,
    clock: Clock = time.monotonic,
) -> Iterator[ChatEvent]:
    """Yield PullProgress while a missing model downloads, then ContentDelta/ThinkingDelta as
    the answer streams, then one ChatDone. ``messages`` are Ollama chat messages
    (role, content, optionally images); ``system`` is prepended as a system message.
    A ``cancel`` token ends the stream (and closes it to Ollama) from another thread.
    """
    name = parse_name(model).display  # invalid names never reach Ollama
    url = _client.resolve_host(host)
    payload = _messages(messages, system)
    pull_args = dict(host=url, stall_timeout=stall_timeout, cancel=cancel, clock=clock)
    if not models.model_exists(name, url):
        if not auto_pull:
            raise ModelNotFound(name, installed_only=True)
        if not (yield from _auto_pull(name, pull_args, cancel)):
            return
    try:
        yield from _answer(url, name, payload, options, think, keep_alive, cancel)
    except ModelNotFound:
        if not auto_pull:
            raise
        # Removed between our check and the call: pull it again, then retry once.
        models.invalidate_cache(url)
        if not (yield from _auto_pull(name, pull_args, cancel)):
            return
        log.info("Model '%s' pulled successfully, retrying request...", name)
        yield from _answer(url, name, payload, options, think, keep_alive, cancel)


def _messages(messages: Iterable[Mapping[str, Any]], system: Optional[str]) -> list[dict]:
    out = [dict(m) for m in messages]
    if system:
        out.insert(0, {"role": "system", "content": system})
    return out


def _auto_pull(name: str, pull_args: dict, cancel: Optional[CancelToken]
               ) -> Generator[ChatEvent, None, bool]:
    """Pull ``name``; True when it is there, False when our own consumer cancelled (the chat
    then ends quietly, as a stopped answer does). Someone else's cancel_pull() raises."""
    log.info("Pulling Ollama model '%s'... This may take a few minutes.", name)
    try:
        yield from pull_model(name, **pull_args)
        return True
    except PullCancelled:
        if cancel and cancel.cancelled:
            return False
        raise
    except ModelNotFound as exc:
        raise ModelNotFound(name, auto=True) from exc
    except PullFailed as exc:
        raise PullFailed(name, exc.reason, auto=True) from exc


def _answer(url: str, name: str, payload: list[dict], options, think, keep_alive,
            cancel: Optional[CancelToken]) -> Iterator[ChatEvent]:
    try:
        yield from _stream_answer(url, name, payload, options, think, keep_alive, cancel)
    except OllamaError as exc:
        # Asking a model without the capability to think is a 400 before any output: answer
        # without thinking rather than fail the message.
        if not (think and exc.status_code == 400 and "support thinking" in exc.reason):
            raise
        log.info("Model '%s' does not support thinking; answering without it", name)
        yield from _stream_answer(url, name, payload, options, None, keep_alive, cancel)


def _stream_answer(url: str, name: str, payload: list[dict], options, think, keep_alive,
                   cancel: Optional[CancelToken]) -> Iterator[ChatEvent]:
    client = _client.get_client(url, streaming=True)
    stream = _client.Stream(lambda: client.chat(
        model=name, messages=payload, stream=True, options=options, think=think,
        keep_alive=keep_alive))
    unregister = cancel.on_cancel(lambda: stream.abort("cancelled")) if cancel else None
    finished = False
    try:
        for part in stream:
            message = part.message
            if message is not None:
                if message.thinking:
                    yield ThinkingDelta(message.thinking)
                if message.content:
                    yield ContentDelta(message.content)
            if part.done:
                finished = True
                yield _done(name, part)
        if not finished and not stream.aborted:  # closed cleanly, but the answer never ended
            raise OllamaUnavailable(url, during="answer")
    except OllamaUnavailable:
        raise
    except Exception as exc:
        if stream.aborted:  # the consumer asked to stop: end quietly
            return
        raise _client.chat_error(exc, url, name) from exc
    finally:
        if unregister:
            unregister()


def _done(name: str, part: Any) -> ChatDone:
    return ChatDone(
        model=name,
        done_reason=part.done_reason or "",
        eval_count=part.eval_count or 0,
        prompt_eval_count=part.prompt_eval_count or 0,
        total_duration=part.total_duration or 0,
        load_duration=part.load_duration or 0,
        prompt_eval_duration=part.prompt_eval_duration or 0,
        eval_duration=part.eval_duration or 0,
    )
