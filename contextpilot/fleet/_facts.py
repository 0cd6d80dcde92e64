"""What each host has (``/api/tags``) and runs (``/api/ps``), kept briefly per host.

A chat asks for the facts of the reachable hosts: fresh ones come from here at once; stale
ones are used as they are while one background call refreshes them (the route is a hint,
and a chat on a host that lost the model pulls it again, as one host does); missing ones
are fetched in parallel, the wait bounded. A pull, delete, load or unload on a host forgets
its facts. ``fresh`` (the model list, the status) always asks every host.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

from ..types import ModelInfo
from ._parallel import Result, run_all

TTL = 3.0
"Seconds a host's facts are used without asking again in the background."

Clock = Callable[[], float]


@dataclass(frozen=True)
class Facts:
    """One host's models: installed (by the names' keys, in Ollama's order) and loaded."""

    installed: Mapping[str, ModelInfo]
    loaded: Mapping[str, str] = field(default_factory=dict)
    "Keys of the models in memory -> their names as /api/ps lists them."
    at: float = 0.0


class FactsCache:
    """Facts per host name, with the fetch to use (which reports a host that fails)."""

    def __init__(self, fetch: Callable[[str], Facts], clock: Clock = time.monotonic,
                 ttl: float = TTL) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._facts: dict[str, Facts] = {}
        self._generation: dict[str, int] = {}  # bumped by invalidate: late answers are dropped
        self._refreshing: set[str] = set()

    def get(self, names: Sequence[str], timeout: Optional[float]) -> dict[str, Facts]:
        """The facts of ``names`` that are known or arrive within ``timeout``."""
        now = self._clock()
        out: dict[str, Facts] = {}
        missing = []
        with self._lock:
            for name in names:
                facts = self._facts.get(name)
                if facts is None:
                    missing.append(name)
                    continue
                out[name] = facts
                if now - facts.at >= self._ttl and name not in self._refreshing:
                    self._refreshing.add(name)
                    threading.Thread(target=self._refresh, args=(name,), daemon=True,
                                     name=f"facts {name}").start()
        for name, result in self.fresh(missing, timeout).items():
            if result.value is not None:
                out[name] = result.value
        return out

    def fresh(self, names: Sequence[str], timeout: Optional[float]
              ) -> dict[str, Result[Facts]]:
        """Ask every host in ``names`` now, in parallel (``timeout`` bounds the wait)."""
        if not names:
            return {}
        return run_all({name: functools.partial(self._fetch_and_keep, name)
                        for name in names}, timeout)

    def invalidate(self, name: str) -> None:
        with self._lock:
            self._facts.pop(name, None)
            self._generation[name] = self._generation.get(name, 0) + 1

    def note_loaded(self, name: str, key: str, model: str) -> None:
        """An answer just came from ``name``: the model is in its memory now."""
        with self._lock:
            facts = self._facts.get(name)
            if facts is not None and key not in facts.loaded:
                loaded = {**facts.loaded, key: model}
                self._facts[name] = Facts(facts.installed, loaded, facts.at)

    def _refresh(self, name: str) -> None:
        try:
            self._fetch_and_keep(name)
        except Exception:  # noqa: BLE001 - the fetch reported the host; the old facts stay
            pass
        finally:
            with self._lock:
                self._refreshing.discard(name)

    def _fetch_and_keep(self, name: str) -> Facts:
        with self._lock:
            generation = self._generation.get(name, 0)
        facts = self._fetch(name)
        facts = Facts(facts.installed, facts.loaded, self._clock())
        with self._lock:
            if self._generation.get(name, 0) == generation:
                self._facts[name] = facts
        return facts
