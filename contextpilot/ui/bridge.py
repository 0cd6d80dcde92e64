"""The async bridge: a library generator (sync, blocking) consumed from Gradio's event loop.

A worker thread iterates the generator and appends each value to a deque; it wakes the
event loop (``call_soon_threadsafe``) only when the async side is waiting for data, so a
100k-event pull costs one deque append per event, not one thread hop. The async side drains
whole batches and yields them at most every ``interval`` seconds; the first batch and the
end are never held back. Closing or cancelling the async generator (Stop button, closed tab)
cancels the library's token, which closes the stream to Ollama at once. The two are told
apart: Stop cancels the handler's task (``CancelledError`` where it waits), so the token is
``cancel()``ed; a closed tab closes the generator (``GeneratorExit``), so the token
``leave()``s, and a download the handler detached goes on (see ``CancelToken``).

A closed tab needs one more thing: Gradio notices the closed connection at once (it marks the
job dead), but it closes a handler's generator only when that generator next yields. While
Ollama is silent (a model loading, a stalled download) nothing would be yielded, so
``batches()`` yields an empty list after ``HEARTBEAT`` seconds of silence; the handlers answer
it with a no-op update, Gradio sees the dead job and closes the generator, and its ``finally``
cancels the token.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import AsyncIterator, Callable, Iterator, Optional, TypeVar, Union

from ..cancel import CancelToken
from ..types import PullProgress

T = TypeVar("T")
Interval = Union[float, Callable[[object], float]]

HEARTBEAT = 0.25  # seconds of silence before an empty batch (a closed tab is noticed then)


class _End:
    __slots__ = ("error",)

    def __init__(self, error: Optional[BaseException]) -> None:
        self.error = error


class _Pump:
    """Runs ``make(token)`` in a daemon thread, feeding a deque the event loop drains."""

    def __init__(self, make: Callable[[CancelToken], Iterator[T]]) -> None:
        self.token = CancelToken()
        self.items: collections.deque = collections.deque()
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        self.waiting = False
        self._make = make
        threading.Thread(target=self._run, name="contextpilot-bridge", daemon=True).start()

    def _run(self) -> None:
        end = _End(None)
        gen = None
        try:
            gen = self._make(self.token)
            append = self.items.append
            for item in gen:
                append(item)
                if self.waiting:
                    self._wake()
                if self.token.cancelled:
                    break
        except BaseException as exc:  # handed to the async side, raised there
            end = _End(exc)
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
            self.items.append(end)
            self._wake()

    def _wake(self) -> None:
        self.waiting = False
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:  # the loop is gone (app shutting down)
            pass

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Return True once at least one item is in the deque; False after ``timeout``
        seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.items:
            self.ready.clear()
            self.waiting = True
            if self.items:  # appended before the flag was seen: no wake-up will come
                self.waiting = False
                break
            if deadline is None:
                await self.ready.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                self.waiting = False
                return False
            try:
                await asyncio.wait_for(self.ready.wait(), left)
            except asyncio.TimeoutError:
                pass
        return True

    async def linger(self, seconds: float) -> None:
        """Let values pile up for ``seconds`` (the worker does not wake us for them), but
        return early when the generator ends, so the last value is never held back."""
        self.ready.clear()
        try:
            await asyncio.wait_for(self.ready.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def drain(self) -> list:
        items = self.items
        return [items.popleft() for _ in range(len(items))]


async def batches(make: Callable[[CancelToken], Iterator[T]], interval: Interval = 0.1,
                  heartbeat: Optional[float] = HEARTBEAT) -> AsyncIterator[list[T]]:
    """Yield lists of the values ``make(token)`` produces, at most one list per ``interval``
    (a float, or a function of the newest value), the first and the last without delay.
    After ``heartbeat`` seconds without a value, yield an empty list (None: never), so a
    consumer that has gone away is noticed while the library is silent.
    The library's exception, if any, is raised after the values before it were yielded.
    """
    pump = _Pump(make)
    try:
        last_yield = None
        while True:
            if not await pump.wait(heartbeat):
                yield []
                continue
            if last_yield is not None:
                wait = _interval(interval, pump.items[-1]) - (time.monotonic() - last_yield)
                if wait > 0 and not isinstance(pump.items[-1], _End):
                    await pump.linger(wait)
            batch = pump.drain()
            end = batch.pop() if batch and isinstance(batch[-1], _End) else None
            if batch:
                yield batch
                last_yield = time.monotonic()
            if end is not None:
                if end.error is not None:
                    raise end.error
                return
    except GeneratorExit:  # the tab closed (or reloaded): detached downloads go on
        pump.token.leave()
        raise
    finally:
        if not pump.token.left:  # Stop, an error, or the end: close the stream to Ollama
            pump.token.cancel()


def _interval(interval: Interval, newest: object) -> float:
    return interval(newest) if callable(interval) else interval


def keep_pull_updates(batch: list) -> list:
    """From a batch of values, keep the last value of each run of one status (so every new
    step or layer shows) and the final one; the byte-only updates in between are dropped,
    since the newer value supersedes them."""
    kept: list = []
    for item in batch:
        last = kept[-1] if kept else None
        if (isinstance(item, PullProgress) and isinstance(last, PullProgress)
                and last.status == item.status and not last.done):
            kept[-1] = item
        else:
            kept.append(item)
    return kept
