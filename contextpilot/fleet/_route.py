"""Routing a chat, as pure data: the facts of each reachable host in, the order to try them
out. No I/O, no clock, no lock: ``tests/test_fleet_route.py`` checks each rule.

The rules, in order, among reachable hosts:

1. hosts where the model is installed (names compared as Ollama compares them);
2. of those, a host where it is loaded now (``/api/ps``) — unless this process already
   streams ``busy_after`` answers from it: then a host where it is installed but not loaded
   takes the next one, rather than queueing behind a full host (a model loaded on one host
   would otherwise never spread to the others);
3. then the host that answered this session's previous turn (its KV cache is warm);
4. then the fewest answers in flight from this process;
5. then the configured order.

No host has it: the model is downloaded on the host rules 3 -> 4 -> 5 pick. A cloud model
runs on ollama.com, so any reachable host will do (3 -> 4 -> 5). A host the session's
previous turn failed on mid-answer goes last (the user asked to retry elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

BUSY_AFTER = 4
"Answers in flight from one host before 'loaded there' stops outranking 'installed here'."


@dataclass(frozen=True)
class Candidate:
    """What the router knows of one reachable host, for one chat."""

    name: str
    order: int
    "Its place in OLLAMA_HOSTS."
    installed: bool = False
    loaded: bool = False
    last: bool = False
    "It answered this session's previous turn."
    avoid: bool = False
    "This session's previous turn failed on it mid-answer."
    in_flight: int = 0


@dataclass(frozen=True)
class Plan:
    """The hosts to try, best first; ``pull``: none has the model, the first downloads it."""

    names: tuple[str, ...]
    pull: bool = False


def plan(candidates: Sequence[Candidate], *, cloud: bool = False,
         busy_after: int = BUSY_AFTER) -> Plan:
    """The order to try ``candidates`` in, by the rules above.

    >>> a, b = Candidate("gpu1", 0, installed=True), Candidate("gpu2", 1, installed=True,
    ...                                                        loaded=True)
    >>> plan([a, b])
    Plan(names=('gpu2', 'gpu1'), pull=False)
    >>> plan([Candidate("gpu1", 0, in_flight=2), Candidate("gpu2", 1)])
    Plan(names=('gpu2', 'gpu1'), pull=True)
    """
    have = list(candidates) if cloud else [c for c in candidates if c.installed]
    if have:
        def rank(c: Candidate) -> tuple:
            warm = c.loaded and c.in_flight < busy_after and not cloud
            return (c.avoid, not warm, not c.last, c.in_flight, c.order)
        return Plan(tuple(c.name for c in sorted(have, key=rank)))
    return Plan(empty_order(candidates), pull=bool(candidates))


def empty_order(candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """Where a model no host has goes (rules 3 -> 4 -> 5): the download's host first."""
    return tuple(c.name for c in sorted(
        candidates, key=lambda c: (c.avoid, not c.last, c.in_flight, c.order)))
