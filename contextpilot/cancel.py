"""A cancel token: lets another thread (a Stop button, an async front end) end a stream."""

from __future__ import annotations

import threading
from typing import Callable


class CancelToken:
    """Call ``cancel()`` from any thread; the generator that was given this token ends soon
    after (a pull raises ``PullCancelled``, a chat just stops) and its stream to Ollama closes.

    ``leave()`` ends it the same way, but says the consumer went away (a closed page) rather
    than asked to stop: a detached pull it joined (``pull_model(detach=True)``) goes on. A
    ``cancel()`` then, or instead, withdraws that too (``stopped``): a detached pull nobody
    else keeps is cancelled.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._withdraw: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.stopped = False
        "``cancel()`` was called: what the consumer detached is withdrawn too."

    @property
    def cancelled(self) -> bool:
        """Ended, by ``cancel()`` or ``leave()``."""
        return self._event.is_set()

    @property
    def left(self) -> bool:
        """Ended by ``leave()`` only: what the consumer detached goes on."""
        return self._event.is_set() and not self.stopped

    def leave(self) -> None:
        """The consumer went away: end its streams, but keep what it detached."""
        self._end()

    def cancel(self) -> None:
        """Stop: end its streams, and withdraw what it detached (even after ``leave()``)."""
        with self._lock:
            self.stopped = True
            withdraw, self._withdraw = self._withdraw, []
        self._end()
        for callback in withdraw:
            callback()

    def _end(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when it ends (now, if it has); returns an unregister."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._discard(self._callbacks, callback)
        callback()
        return lambda: None

    def on_withdraw(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on ``cancel()`` (now, if it was), not on ``leave()``: a consumer
        that left a detached pull withdraws it when it is stopped after all."""
        with self._lock:
            if not self.stopped:
                self._withdraw.append(callback)
                return lambda: self._discard(self._withdraw, callback)
        callback()
        return lambda: None

    def _discard(self, callbacks: list, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in callbacks:
                callbacks.remove(callback)
