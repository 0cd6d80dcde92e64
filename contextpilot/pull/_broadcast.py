"""The fan-out of one pull to its consumers: the step log plus the newest value.

Ollama's events of one layer are cumulative, so only the newest one matters: the pull thread
stores it raw (one attribute store per event, no lock, no clock) and a consumer folds it when
it asks. Every change of step or layer is folded at once and kept in ``steps``, handed to
every consumer in order, so none is ever skipped; a consumer slower than Ollama gets the
newest value instead of a growing backlog.

Consumers wait on a condition and are woken when the value changes, never on a timer: a
waiting consumer raises ``_waiting`` (under the lock), and the pull thread, which reads that
flag after each store, takes the lock to notify only then. A pull with nobody waiting costs
the pull thread one attribute read per event; a consumer waiting through minutes of silence
costs nothing.

Lock order: ``Broadcast._lock`` is the innermost lock of the pull engine. Nothing is called
while it is held except the fold (pure math); in particular the registry is never entered
under it (the registry may take it: ``Registry._lock`` -> ``Broadcast._lock``, never the
reverse).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from ..types import PullProgress

END = object()
"next() returns it when the pull is over (its outcome is the job's)."
CANCELLED = object()
"next() returns it when that consumer's cancel token fired."

Fold = Callable[[Any], PullProgress]


class Cursor:
    """Where one consumer is in a broadcast."""

    __slots__ = ("step_index", "seen", "cancelled", "keep")

    def __init__(self, keep: bool = False) -> None:
        self.step_index = 0  # next entry of steps to hand out
        self.seen = -1  # sequence number of the newest event this consumer has
        self.cancelled = False
        self.keep = keep  # detached: the pull outlives this consumer until it withdraws


class Broadcast:
    """One pull's values for any number of consumers; also who they are (membership)."""

    def __init__(self, fold: Fold) -> None:
        self._fold_event = fold
        self._lock = threading.Lock()  # innermost: Registry._lock may be held, nothing taken after
        self._cond = threading.Condition(self._lock)
        self.steps: list[tuple[int, PullProgress]] = []
        self.latest: Optional[PullProgress] = None
        # (seq, raw event): the newest byte-only event. The pull thread replaces it without
        # the lock (one atomic store); it is folded, under the lock, when it is newer than
        # the last event folded.
        self._pending: Optional[tuple[int, Any]] = None
        self._folded = -1
        self._latest_seq = -1
        self._waiting = False  # a consumer may be in wait(): the next store must notify
        self._cursors: list[Cursor] = []
        self._keepers = 0  # detached consumers that joined and did not withdraw
        self.sealed = False  # nobody may join any more (the pull is ending)
        self.closed = False  # the pull is over: every consumer gets END

    # -- the pull thread ---------------------------------------------------------------------

    def publish(self, seq: int, event: Any) -> None:
        """The hot path: more bytes of the current layer."""
        self._pending = (seq, event)
        if self._waiting:  # read after the store: see next() for why no wake-up is lost
            self._wake()

    def step(self, seq: int, event: Any) -> tuple[Optional[PullProgress], PullProgress]:
        """A new status, layer or size: folded now and kept for every consumer.
        Returns (the value before, the new value)."""
        with self._cond:
            self._fold_pending()
            previous = self.latest
            value = self._fold(seq, event)
            if previous is None or previous.status != value.status:
                self.steps.append((seq, value))
            self._waiting = False
            self._cond.notify_all()
        return previous, value

    def close(self) -> None:
        """The pull is over: fold the last event, wake everyone to END."""
        with self._cond:
            self._fold_pending()
            self.sealed = self.closed = True
            self._cond.notify_all()

    def pending_completed(self) -> Optional[int]:
        """The byte count of the newest raw event (read without the lock: the watchdog's)."""
        pending = self._pending
        return pending[1].completed if pending is not None else None

    def _wake(self) -> None:
        with self._cond:
            self._waiting = False
            self._cond.notify_all()

    def _fold(self, seq: int, event: Any) -> PullProgress:
        value = self._fold_event(event)
        self.latest, self._latest_seq, self._folded = value, seq, seq
        return value

    def _fold_pending(self) -> None:
        """Fold the newest raw event if it is new (call with the lock held)."""
        pending = self._pending
        if pending is not None and pending[0] > self._folded:
            self._fold(*pending)

    # -- consumers ---------------------------------------------------------------------------

    def subscribe(self, keep: bool = False) -> Optional[Cursor]:
        """A cursor at the current position (a late joiner starts from where the pull is
        now), or None when the pull is ending and a new one must start instead."""
        with self._cond:
            if self.sealed:
                return None
            cursor = Cursor(keep)
            if self.steps:
                cursor.step_index = len(self.steps)
                cursor.seen = self.steps[-1][0] - 1
                self._fold_pending()
                cursor.seen = min(cursor.seen, self._latest_seq - 1)
            self._cursors.append(cursor)
            self._keepers += keep
            return cursor

    def leave(self, cursor: Cursor, withdraw: bool = False) -> bool:
        """Remove a consumer (``withdraw``: and what it detached: it asked to stop). True
        when it was the last one of a pull nobody keeps: the caller must then cancel it
        (sealed here, so nobody joins it in between)."""
        with self._cond:
            if cursor in self._cursors:
                self._cursors.remove(cursor)
            if withdraw and cursor.keep:
                cursor.keep = False
                self._keepers -= 1
            orphaned = not self._cursors and not self._keepers and not self.sealed
            if orphaned:
                self.sealed = True
            return orphaned

    def seal(self) -> None:
        with self._cond:
            self.sealed = True

    def next(self, cursor: Cursor) -> object:
        """The next value for ``cursor``: a step it has not seen, else the newest value, else
        wait for a change. ``END`` when the pull is over, ``CANCELLED`` when cancelled."""
        with self._cond:
            while True:
                value = self._next_ready(cursor)
                if value is not None:
                    return value
                # Raise the flag before the last look: the pull thread stores, then reads the
                # flag; we set the flag, then look. One of us sees the other's write.
                self._waiting = True
                value = self._next_ready(cursor)
                if value is not None:
                    return value
                self._cond.wait()

    def _next_ready(self, cursor: Cursor) -> object:
        if cursor.cancelled:
            return CANCELLED
        while cursor.step_index < len(self.steps):
            seq, value = self.steps[cursor.step_index]
            cursor.step_index += 1
            if seq > cursor.seen:
                cursor.seen = seq
                return value
        self._fold_pending()
        if self._latest_seq > cursor.seen:
            cursor.seen = self._latest_seq
            return self.latest
        return END if self.closed else None

    def cancel(self, cursor: Cursor) -> None:
        """From any thread: that consumer's next() returns CANCELLED."""
        with self._cond:
            cursor.cancelled = True
            self._cond.notify_all()

    def snapshot(self, model: str) -> PullProgress:
        """The newest value, folded now: with no consumer (a detached pull whose page was
        closed) nothing else folds the byte-only updates."""
        with self._cond:
            self._fold_pending()
            return self.latest or PullProgress(model=model, status="starting")
