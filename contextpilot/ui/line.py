"""The line for answers: at most ``slots`` answers stream at once; the chats beyond them wait
here, in order, told their place, for at most ``patience`` seconds.

Gradio's own queue would hold them too, but when it is full it refuses a message outright: the
page drops the visitor's text and marks every output "Error". Waiting here instead, inside the
chat handler, the message stays in the chat and the visitor reads why it waits, or that the
app is busy and to send it again in a moment. Gradio's queue (``max_size``) stays the bound
behind this one, for a flood of requests.

Only the event loop's thread uses a line (the chat handler is a coroutine), so its counts
need no lock; the Condition is made for the loop that first waits (a relaunched app runs on
a new loop, and gets a new one).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator, Optional


class AnswerLine:
    def __init__(self, slots: int, patience: float) -> None:
        self.slots = slots
        self.patience = patience
        self.running = 0
        self._waiting: deque[object] = deque()
        self._cond: Optional[asyncio.Condition] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:
            # a new loop: the app was relaunched, and what waited or ran on the old one
            # (its tasks gone with it) must not hold slots or places here
            self._cond, self._loop = asyncio.Condition(), loop
            self.running = 0
            self._waiting.clear()
        return self._cond

    async def wait(self, report_every: float = 1.0) -> AsyncIterator[int]:
        """Wait for a slot, yielding how many wait ahead in the line (0: next), at once and
        then every ``report_every`` s, or sooner when the line moves; nothing when a slot is
        free at once. Ends when a slot is taken (``release`` it after the answer); raises
        ``LineFull`` past ``patience``. A caller that stops iterating (a closed tab) leaves
        the line."""
        cond = self._condition()
        ticket = object()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        async with cond:
            self._waiting.append(ticket)
        try:
            while True:
                async with cond:
                    if self._turn(ticket):
                        self._waiting.popleft()
                        self.running += 1
                        return
                    ahead = self._waiting.index(ticket)
                left = deadline - loop.time()
                if left <= 0:
                    raise LineFull(self.running, len(self._waiting) - 1)
                yield ahead
                try:
                    async with cond:
                        # the line may have moved while the place was being shown: a wake-up
                        # missed then would cost a whole report_every
                        if not self._turn(ticket):
                            await asyncio.wait_for(cond.wait(), min(report_every, left))
                except asyncio.TimeoutError:
                    pass
        finally:
            if ticket in self._waiting:  # gave up, timed out or was cancelled
                self._waiting.remove(ticket)
                await self._wake()

    def _turn(self, ticket: object) -> bool:
        """``ticket`` is first in line and a slot is free (asked under the Condition)."""
        return self._waiting[0] is ticket and self.running < self.slots

    async def release(self) -> None:
        self.running = max(0, self.running - 1)
        await self._wake()

    async def _wake(self) -> None:
        cond = self._condition()
        async with cond:
            cond.notify_all()


class LineFull(Exception):
    """Waited ``patience`` seconds without a slot."""

    def __init__(self, running: int, waiting: int) -> None:
        super().__init__(f"{running} answering, {waiting} waiting")
        self.running = running
        self.waiting = waiting
