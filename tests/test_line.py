"""The answer line (contextpilot.ui.line): first come, first answered; a waiter that leaves
frees its place; past its patience a waiter is told the app is busy; a relaunch on a new event
loop starts with an empty line. Every wait is bounded by asyncio.wait_for."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from contextpilot.ui.line import AnswerLine, LineFull

BOUND = 5.0  # no step of these tests may take longer


async def take(line: AnswerLine, places: list) -> None:
    async with contextlib.aclosing(line.wait(report_every=0.05)) as waiting:
        async for ahead in waiting:
            places.append(ahead)


def test_first_come_first_answered():
    async def main():
        line = AnswerLine(slots=1, patience=BOUND)
        await asyncio.wait_for(take(line, []), BOUND)  # a free slot: taken at once
        order, places = [], {1: [], 2: []}

        async def chat(n):
            await take(line, places[n])
            order.append(n)

        first = asyncio.create_task(chat(1))
        await asyncio.sleep(0)  # let it queue first (ordering, not synchronisation)
        second = asyncio.create_task(chat(2))
        while not (places[1] and places[2]):
            await asyncio.sleep(0.01)
        assert places[1][0] == 0 and places[2][0] == 1  # next in line, one ahead
        await line.release()
        await asyncio.wait_for(first, BOUND)
        assert order == [1] and not second.done()
        await line.release()
        await asyncio.wait_for(second, BOUND)
        assert order == [1, 2] and places[2][-1] == 0  # moved up when the first went in

    asyncio.run(main())


def test_a_waiter_that_leaves_frees_its_place():
    async def main():
        line = AnswerLine(slots=1, patience=BOUND)
        await take(line, [])
        gone_places, places = [], []
        gone = asyncio.create_task(take(line, gone_places))
        while not gone_places:
            await asyncio.sleep(0.01)
        staying = asyncio.create_task(take(line, places))
        while not places:
            await asyncio.sleep(0.01)
        assert places[-1] == 1
        gone.cancel()  # a closed tab
        with pytest.raises(asyncio.CancelledError):
            await gone
        await line.release()
        await asyncio.wait_for(staying, BOUND)
        assert line.running == 1

    asyncio.run(main())


def test_past_its_patience_a_waiter_is_told_busy():
    async def main():
        line = AnswerLine(slots=1, patience=0.2)
        await take(line, [])
        with pytest.raises(LineFull) as full:
            await asyncio.wait_for(take(line, []), BOUND)
        assert (full.value.running, full.value.waiting) == (1, 0)
        assert line.running == 1 and not line._waiting

    asyncio.run(main())


def test_a_new_event_loop_starts_with_an_empty_line():
    line = AnswerLine(slots=1, patience=0.2)
    asyncio.run(take(line, []))  # took the slot, then that loop (the old app) ended
    places = []
    asyncio.run(asyncio.wait_for(take(line, places), BOUND))
    assert places == [] and line.running == 1


def test_a_slot_freed_while_the_next_waiter_reports_is_taken_at_once():
    # The next in line is away (its place shown to the page) when the slot frees: the
    # wake-up it missed must not cost it a whole report interval (here 60 s).
    async def main():
        line = AnswerLine(slots=1, patience=120)
        await asyncio.wait_for(take(line, []), BOUND)  # the one answering
        waiting = line.wait(report_every=60)
        assert await asyncio.wait_for(anext(waiting), BOUND) == 0  # next, shown
        await line.release()  # meanwhile, the answer ends
        with pytest.raises(StopAsyncIteration):  # the slot: at once, not in 60 s
            await asyncio.wait_for(anext(waiting), BOUND)
        assert line.running == 1
        await waiting.aclose()

    asyncio.run(main())
