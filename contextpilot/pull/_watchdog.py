"""The stall watchdog: liveness, not a deadline.

No new bytes (nor a new step) for ``limit`` seconds while downloading ends the pull. Verifying
a big blob sends nothing for minutes and is not a stall. The watchdog sleeps on the job's
``finished`` event for the time left (at most a quarter of the limit, so a stall is seen
within 1.25 limits), so it wakes a handful of times per limit and never on a short tick.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

Clock = Callable[[], float]


class StallWatchdog:
    """Calls ``on_stall(reason)`` once when nothing moved for ``limit`` seconds."""

    def __init__(self, limit: float, bytes_now: Callable[[], Optional[int]],
                 finished: threading.Event, on_stall: Callable[[str], None],
                 clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._bytes_now = bytes_now  # the newest byte count, read without a lock
        self._finished = finished
        self._on_stall = on_stall
        self._clock = clock
        self._last_change = clock()
        self.watching = True  # False while verifying/writing: silence is expected then

    def touch(self, watching: bool) -> None:
        """A new step arrived (from the pull thread): the stall clock restarts."""
        self._last_change = self._clock()
        self.watching = watching

    def run(self) -> None:
        seen: Optional[int] = None
        quarter = max(self.limit / 4, 0.01)
        wait = quarter
        while not self._finished.wait(wait):
            now = self._clock()
            completed = self._bytes_now()
            if completed != seen:  # new bytes of the current layer since the last look
                seen, self._last_change = completed, now
            left = self._last_change + self.limit - now
            if self.watching and left <= 0:
                self._on_stall(f"stalled: no new data for {self.limit:g} s")
                return
            wait = min(max(left, 0.01), quarter) if self.watching else quarter
