"""A fleet's state, per ``Fleet`` instance: its hosts, which are up, what each has and runs,
the answers in flight from each, and the host each session's last turn went to. Also the
fleet's words: what happened to a host as a phrase, and an error made to name its host.

Nothing here is shared between two ``Fleet`` objects, and nothing is kept but what the hosts
report (each Ollama stays the source of truth about itself) and what this process did.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
from typing import Hashable, Iterator, Optional, Sequence, TypeVar

from .. import models, netaddr, settings
from ..errors import (ContextPilotError, InvalidModelName, InvalidRequest, ModelNotFound,
                      NoHostAvailable, NotAllowed, OllamaBusy, OllamaUnavailable, PullFailed)
from ..names import ModelName, listed_key
from . import _route
from ._config import Host, Roster
from ._facts import TTL, Facts, FactsCache
from ._health import BACKOFF, Clock, Health

FACTS_MARGIN = 0.5
"Seconds past the connect timeout a chat waits for the facts of a host it knows nothing of."
SESSIONS = 10_000
"Sessions remembered (the host of their last turn), least recently used forgotten first."
E = TypeVar("E", bound=BaseException)

_WHY = {"refused": "refused the connection", "connect timeout": "timed out connecting"}


def why(exc: BaseException) -> str:
    """What a host did, as a phrase after its name: "refused the connection"..."""
    if isinstance(exc, OllamaBusy):
        return "was busy"
    if isinstance(exc, OllamaUnavailable):
        return _WHY.get(exc.kind, "stopped answering" if exc.kind == "lost" else "did not answer")
    return "did not answer"


def skip_reason(exc: BaseException) -> str:
    """Why a chat went on to the next host (``Routed.skipped``)."""
    if isinstance(exc, OllamaBusy):
        return "was busy"
    if isinstance(exc, OllamaUnavailable) and exc.kind == "lost":
        return "stopped before answering"
    return "did not answer"


class Core:
    """The state behind one ``Fleet``."""

    def __init__(self, hosts: tuple[Host, ...], *, clock: Clock = time.monotonic,
                 backoff: Sequence[float] = BACKOFF, facts_ttl: float = TTL,
                 busy_after: int = _route.BUSY_AFTER) -> None:
        self.roster = Roster(hosts)
        self.busy_after = busy_after
        self.health = Health(self.roster.names, self._probe, clock=clock, backoff=backoff,
                             on_change=self._changed)
        self.facts = FactsCache(self._fetch, clock, facts_ttl)
        self._lock = threading.Lock()
        self._flights: collections.Counter[str] = collections.Counter()
        self._told: dict[Hashable, set[tuple[str, float]]] = {}  # outages said, per session
        self._sessions: collections.OrderedDict[Hashable, tuple[str, str]] = (
            collections.OrderedDict())  # session -> (last host, host to avoid)
        self._addresses = _address_patterns(hosts)

    # -- talking to a host -------------------------------------------------------------------

    def url(self, name: str) -> str:
        return self.roster.find(name).url

    def _fetch(self, name: str) -> Facts:
        url = self.url(name)
        try:
            installed = models.installed_by_key(url)
            loaded = _loaded(url)
        except OllamaUnavailable as exc:
            self.health.mark_down(name, why(exc))
            raise
        self.health.mark_up(name)
        return Facts(installed, loaded)

    def _probe(self, name: str) -> Optional[str]:
        """The prober's question (its answer refreshes the facts): None when it answers."""
        error = self.facts.fresh([name], None)[name].error
        return why(error) if isinstance(error, OllamaUnavailable) else None

    def _changed(self, name: str, up: bool) -> None:
        if not up:  # what it had is unknown until it answers again
            self.facts.invalidate(name)

    @staticmethod
    def bound() -> float:
        """How long a quick call to one host may take at most (connect + read limits)."""
        return (settings.seconds("CONTEXTPILOT_CONNECT_TIMEOUT")
                + settings.seconds("CONTEXTPILOT_READ_TIMEOUT"))

    @staticmethod
    def facts_wait() -> float:
        """How long a chat waits for a host's first facts: long enough to see it refuse or
        time out connecting; a host that connects and then says nothing is routed as if
        it had nothing (its facts arrive later, for the next turn)."""
        return settings.seconds("CONTEXTPILOT_CONNECT_TIMEOUT") + FACTS_MARGIN

    def up(self, exclude: Sequence[str] = ()) -> list[Host]:
        return [h for h in self.roster.hosts
                if h.name not in exclude and not self.health.is_down(h.name)]

    # -- routing -----------------------------------------------------------------------------

    def plan(self, parsed: ModelName, session: Optional[Hashable],
             exclude: Sequence[str] = ()) -> _route.Plan:
        """The hosts to try for a chat with ``parsed``, best first (see ``_route``)."""
        return self.plan_turn(parsed, session, exclude)[0]

    def plan_turn(self, parsed: ModelName, session: Optional[Hashable],
                  exclude: Sequence[str] = (), claim: bool = False
                  ) -> tuple[_route.Plan, list[str]]:
        """(the plan, the hosts found down while asking what they have: this turn's news).
        With ``claim``, the first host's answer is counted in flight at once, in the same
        step as the counts are read: a burst of chats spreads instead of all seeing zeros."""
        up = self.up(exclude)
        facts = self.facts.get([h.name for h in up], self.facts_wait()) if up else {}
        last, avoid = self.session(session)
        key = parsed.key
        up_now = self.up(exclude)  # again: a fetch may have found one down
        with self._lock:
            candidates = [_route.Candidate(
                h.name, h.order, installed=h.name in facts and key in facts[h.name].installed,
                loaded=h.name in facts and key in facts[h.name].loaded, last=h.name == last,
                avoid=h.name == avoid, in_flight=self._flights[h.name]) for h in up_now]
            plan = _route.plan(candidates, cloud=parsed.is_cloud, busy_after=self.busy_after)
            if claim and plan.names:
                self._flights[plan.names[0]] += 1
        still = {c.name for c in candidates}
        return plan, [h.name for h in up if h.name not in still]

    def states(self, tried: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """Each host's state, for NoHostAvailable: what it did in this request, else why it
        is skipped, else that it answers."""
        done = dict(tried)
        return [(h.name, self.health.why(h.name) or done.get(h.name) or "answers")
                for h in self.roster.hosts]

    def no_host(self, tried: Sequence[tuple[str, str]] = ()) -> NoHostAvailable:
        return NoHostAvailable(self.states(tried))

    # -- what this process does --------------------------------------------------------------

    def in_flight(self, name: str) -> int:
        with self._lock:
            return self._flights[name]

    @contextlib.contextmanager
    def flight(self, name: str, claimed: bool = False) -> Iterator[None]:
        """Count an answer in flight from ``name`` while inside (``claimed``: already
        counted by ``plan_turn``)."""
        if not claimed:
            with self._lock:
                self._flights[name] += 1
        try:
            yield
        finally:
            with self._lock:
                self._flights[name] -= 1

    def flight_done(self, name: str) -> None:
        """A claimed answer that will not be tried after all."""
        if name:
            with self._lock:
                self._flights[name] -= 1

    def session(self, session: Optional[Hashable]) -> tuple[str, str]:
        """(the host of the session's last turn, a host its last turn failed on)."""
        if session is None:
            return "", ""
        with self._lock:
            entry = self._sessions.get(session)
            if entry is not None:
                self._sessions.move_to_end(session)
            return entry or ("", "")

    def news(self, session: Optional[Hashable], known: Sequence[str] = ()) -> list[tuple[str, str]]:
        """Hosts down now that this session has not been told about yet (each outage once
        per session), other than ``known`` (said already): a conversation's next answer
        says so even when something else (a page listing the models) found it down first."""
        if session is None:
            return []
        out = []
        with self._lock:
            told = self._told.setdefault(session, set())
            for name, since in self.health.outages():
                if (name, since) not in told and name not in known:
                    out.append((name, "did not answer"))
                told.add((name, since))
            while len(self._told) > SESSIONS:
                self._told.pop(next(iter(self._told)))
        return out

    def remember(self, session: Optional[Hashable], last: str = "", avoid: str = "") -> None:
        if session is None:
            return
        with self._lock:
            self._sessions[session] = (last, avoid)
            self._sessions.move_to_end(session)
            while len(self._sessions) > SESSIONS:
                self._sessions.popitem(last=False)

    # -- words -------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every host's address replaced by its name."""
        for pattern, name in self._addresses:
            text = pattern.sub(name, text)
        return text

    def pull_advice(self, text: str, model: str, name: str) -> str:
        """``text`` with its "ollama pull MODEL" (which would go to OLLAMA_HOST, not to
        this host) made the command that pulls on host ``name``."""
        return text.replace(f"ollama pull {model}", pull_command(model, name))

    def on_host(self, exc: E, name: str, extra: str = "") -> E:
        """``exc`` (same type, same facts) with a message that starts with the host's name,
        never shows its address, and ends with ``extra``; ``host_name`` says which host."""
        if isinstance(exc, (InvalidRequest, InvalidModelName, NotAllowed)) or (
                isinstance(exc, ContextPilotError) and exc.host_name):
            return exc
        text = self.redact(str(exc))
        model = getattr(exc, "model", None)
        if isinstance(exc, (PullFailed, ModelNotFound)) and model:
            text = self.pull_advice(text, model, name)
        new = type(exc).__new__(type(exc))
        new.__dict__.update(exc.__dict__)
        new.args = (f"{name}: {text}" + (f" {extra}" if extra else ""),)
        if isinstance(new, ContextPilotError):
            new.host_name = name
        new.__cause__ = exc.__cause__
        return new


def pull_command(model: str, name: str) -> str:
    """The command that pulls ``model`` on the fleet's host ``name``."""
    return f"python -m contextpilot pull {model} --host {name}"


def _address_patterns(hosts: Sequence[Host]) -> list[tuple[re.Pattern, str]]:
    """What ``redact`` replaces, in order: each host's address, with or without its scheme
    ("http://10.0.0.5:11434", "10.0.0.5:11434"), then its bare name or IP ("gpu-box", in a
    TLS error) -- by the host's name when only that host has it, else by "a host". A bare
    name that is loopback, or part of a host's name (hosts named by host:port), is left."""
    out = []
    for h in sorted(hosts, key=lambda h: -len(h.url)):
        bare = h.url.split("://", 1)[-1]
        out.append((re.compile(r"(?:https?://)?" + re.escape(bare) + r"/?", re.I), h.name))
    owners: dict[str, list[str]] = {}
    for h in hosts:
        bare_host = netaddr.host_of(h.url)
        if bare_host and not netaddr.is_loopback(bare_host) and not any(
                bare_host in other.name.lower() for other in hosts):
            owners.setdefault(bare_host, []).append(h.name)
    for bare_host, names in owners.items():
        edge = r"(?<![\w.-])" + re.escape(bare_host) + r"(?![\w-]|\.\w)"
        out.append((re.compile(edge, re.I), names[0] if len(names) == 1 else "a host"))
    return out


def _loaded(url: str) -> dict[str, str]:
    """The keys of the models in a host's memory -> their names; {} when it will not say
    (a router in front may not pass /api/ps on)."""
    try:
        running = models.running_models(url)
    except OllamaUnavailable:
        raise
    except ContextPilotError:
        return {}
    return {k: m.name for m in running if (k := listed_key(m.name))}
