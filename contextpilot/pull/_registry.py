"""Which pulls run in this process (one per model and host), and how the recent ones ended.

Lock order of the pull engine, outermost first:

    Registry._lock  ->  Broadcast._lock (a job's)

``join`` subscribes to a job while holding the registry lock, so that nobody joins a pull
between "the last consumer left" and its cancel. The reverse never happens: a job leaves
the registry (``remove``) with none of its own locks held, from the pull thread, the stall
watchdog, ``cancel_pull`` or the last consumer. A new job is built under the registry lock and
takes only leaf locks then (the client factory's, the partials'). ``Outcomes._lock`` is a leaf:
nothing else is taken under it.
"""

from __future__ import annotations

import collections
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable, Generic, Optional, Protocol, TypeVar

from ..types import PullOutcome
from ._broadcast import Broadcast, Cursor

Key = tuple[str, str]  # (host URL, canonical model key)


class _Job(Protocol):
    broadcast: Broadcast

    def start(self) -> None: ...


J = TypeVar("J", bound=_Job)


class Registry(Generic[J]):
    """Running pulls by (host, model). A job is anything with ``broadcast`` and ``start()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # outermost: may take a job's Broadcast._lock, never after it
        self._jobs: dict[Key, J] = {}

    def join(self, key: Key, make: Callable[[], J], keep: bool = False) -> tuple[J, Cursor]:
        """(job, cursor): the running pull of ``key``, or a new one, started here. The
        cursor is subscribed before the job starts, so the first consumer sees every value."""
        with self._lock:
            running = self._jobs.get(key)
            cursor = running.broadcast.subscribe(keep) if running is not None else None
            if running is not None and cursor is not None:
                return running, cursor
            job = self._jobs[key] = make()  # none, or one that is ending: a new pull
            cursor = job.broadcast.subscribe(keep)
            assert cursor is not None  # nobody else has seen this job yet
        job.start()
        return job, cursor

    def remove(self, key: Key, job: J) -> None:
        """``job`` leaves (a newer pull of the same model may have taken its place)."""
        with self._lock:
            if self._jobs.get(key) is job:
                del self._jobs[key]

    def get(self, key: Key) -> Optional[J]:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self, host: Optional[str] = None) -> list[J]:
        with self._lock:
            return [j for (h, _), j in self._jobs.items() if host is None or h == host]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Outcomes:
    """How the pulls of the last ``keep`` ended (at most ``limit`` of them), newest first."""

    def __init__(self, now: Callable[[], datetime] = _utc_now,
                 keep: timedelta = timedelta(hours=1), limit: int = 200) -> None:
        self.now = now
        self.keep = keep
        self._lock = threading.Lock()  # a leaf
        self._items: collections.deque[PullOutcome] = collections.deque(maxlen=limit)

    def record(self, model: str, host: str, outcome: str, message: str, completed: int,
               total: int) -> PullOutcome:
        item = PullOutcome(model=model, host=host, outcome=outcome, message=message,
                           ended_at=self.now(), completed=completed, total=total)
        with self._lock:
            self._items.appendleft(item)
        return item

    def recent(self, host: Optional[str] = None) -> list[PullOutcome]:
        oldest = self.now() - self.keep
        with self._lock:
            while self._items and self._items[-1].ended_at < oldest:
                self._items.pop()
            return [o for o in self._items if host is None or o.host == host]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
