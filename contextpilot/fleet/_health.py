"""Which hosts are up: a host that failed to answer is skipped for a while and probed again
in the background, never on a request's path; when a probe finds it answering again it takes
traffic again.

State per host: unknown (never failed: it is tried), up, or down (since when, why, how many
probes failed since). The prober is one daemon thread, started when a host goes down and
ended when none is down (or at ``close``). It sleeps on a condition until the next probe is
due, with back-off between probes of the same host; ``poke`` wakes it (a test that moves an
injected clock, a caller that knows better). Probes of several hosts run at once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ._parallel import run_all

log = logging.getLogger("contextpilot")

BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 15.0)
"Seconds before each probe of a host that is down; the last repeats."
MAX_SLEEP = 5.0
"The prober looks at the clock at least this often (an injected clock may jump)."

Clock = Callable[[], float]
Probe = Callable[[str], Optional[str]]
"Probe a host by name: None when it answers, else why not (a phrase: 'refused the connection')."


@dataclass
class _State:
    down: bool = False
    why: str = ""
    since: float = 0.0
    failures: int = 0
    next_probe: float = 0.0


class Health:
    """Up/down state of a fleet's hosts, with a background prober for the ones down."""

    def __init__(self, names: Sequence[str], probe: Probe, *, clock: Clock = time.monotonic,
                 backoff: Sequence[float] = BACKOFF,
                 on_change: Callable[[str, bool], None] = lambda name, up: None) -> None:
        self._probe = probe
        self._clock = clock
        self._backoff = tuple(backoff) or BACKOFF
        self._on_change = on_change
        self._states = {name: _State() for name in names}
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    # -- what callers ask ----------------------------------------------------------------

    def is_down(self, name: str) -> bool:
        with self._cond:
            return self._states[name].down

    def why(self, name: str) -> str:
        """A down host's state as a phrase ("refused the connection (for 12 s)"); "" when
        it is not down."""
        with self._cond:
            state = self._states[name]
            if not state.down:
                return ""
            ago = max(0.0, self._clock() - state.since)
            return f"{state.why} ({_ago(ago)})"

    def outages(self) -> list[tuple[str, float]]:
        """(name, since when) of every host down now."""
        with self._cond:
            return [(n, st.since) for n, st in self._states.items() if st.down]

    # -- what callers report -------------------------------------------------------------

    def mark_down(self, name: str, why: str) -> None:
        """``name`` failed to answer: skip it until a probe finds it answering."""
        with self._cond:
            state = self._states[name]
            was_up = not state.down
            if was_up:
                state.down, state.since, state.failures = True, self._clock(), 0
                log.warning("Ollama host %s %s; skipped until it answers again", name, why)
            state.why = why
            state.next_probe = self._clock() + self._backoff[0]
            self._start()
            self._cond.notify_all()
        if was_up:
            self._on_change(name, False)

    def mark_up(self, name: str) -> None:
        with self._cond:
            was_down = self._states[name].down
            self._states[name] = _State()
            self._cond.notify_all()
        if was_down:
            log.info("Ollama host %s answers again", name)
            self._on_change(name, True)

    def poke(self) -> None:
        """Wake the prober now (it probes whatever is due by the clock)."""
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (bounded) until ``predicate()`` holds after some change of state."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- the prober ----------------------------------------------------------------------

    def _start(self) -> None:  # with the lock held
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="fleet prober", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._due()
                while due is not None and not due:
                    self._cond.wait(self._sleep())
                    due = self._due()
                if due is None:  # nothing down, or closed: the thread ends
                    self._thread = None
                    return
            self._probe_all(due)

    def _due(self) -> Optional[list[str]]:
        """Hosts to probe now; [] when some are down but none is due; None when done."""
        down = {n: s for n, s in self._states.items() if s.down}
        if self._closed or not down:
            return None
        now = self._clock()
        return [n for n, s in down.items() if s.next_probe <= now]

    def _sleep(self) -> float:
        now = self._clock()
        nxt = min(s.next_probe for s in self._states.values() if s.down)
        return min(max(nxt - now, 0.001), MAX_SLEEP)

    def _probe_all(self, names: list[str]) -> None:
        results = run_all({n: functools.partial(self._probe, n) for n in names})
        for name in names:
            result = results.get(name)
            why = result.value if result and result.error is None else "did not answer"
            if why is None:
                self.mark_up(name)
                continue
            with self._cond:
                state = self._states[name]
                state.failures += 1
                step = self._backoff[min(state.failures, len(self._backoff) - 1)]
                state.why, state.next_probe = why, self._clock() + step


def _ago(seconds: float) -> str:
    if seconds < 1:
        return "just now"
    if seconds < 120:
        return f"for {seconds:.0f} s"
    return f"for {seconds / 60:.0f} min"
