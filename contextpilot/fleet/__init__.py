"""A fleet: several Ollama hosts used as one (the public face).

Each Ollama server stays an independent worker and the source of truth about itself
(``/api/tags``, ``/api/ps``, ``/api/version``); a ``Fleet`` routes over them. A chat goes,
among the hosts that answer, to one that has the model, preferably one where it is loaded,
else the host of the conversation's last turn, else the least busy, else the first in
OLLAMA_HOSTS (``_route``); a host that fails before the first token is skipped for the next
and ``Routed`` says so (``_chat``); a host that fails to answer is skipped for a while and
probed in the background (``_health``). Pulls go to the hosts named, one per (host, model),
merged (``_pulls``); views and management run on the hosts at once (``_manage``).

The package, by concern: ``_config`` (hosts by name), ``_route`` (pure routing), ``_health``
(up or down, the prober), ``_facts`` (what each host has and runs, kept briefly),
``_parallel`` (calls to several hosts at once), ``_core`` (one fleet's state and words).
"""

from __future__ import annotations

import time
from typing import Any, Hashable, Iterator, Mapping, Optional, Sequence, Union

from .. import chat
from ..cancel import CancelToken
from ..names import ModelName, parse_name
from ..types import (ChatEvent, HostStatus, ModelDetails, ModelInfo, PullOutcome, PullProgress,
                     RunningModel)
from . import _config, _manage, _pulls
from ._chat import chat_on_fleet
from ._config import Choice, Hosts
from ._core import Core
from ._facts import TTL
from ._health import BACKOFF, Clock
from ._pulls import pull_on
from ._route import BUSY_AFTER

Name = Union[str, ModelName]


class Fleet:
    """Several Ollama hosts used as one.

    ``hosts`` is a mapping name -> address (``{"gpu1": "http://10.0.0.5:11434"}``) or a list
    of addresses (each named by its ``host:port``); ``Fleet.from_env()`` reads OLLAMA_HOSTS,
    else OLLAMA_HOST as a fleet of one. Hosts are named by name in every message (never by
    address); a name a caller gives that is not configured is refused before any request.
    ``probe_backoff`` (seconds between probes of a host that is down), ``facts_ttl`` and
    ``clock`` are for tuning and tests; ``busy_after`` is the number of answers in flight
    from one host after which a host where the model is installed but not loaded goes first.
    """

    def __init__(self, hosts: Hosts, *, clock: Clock = time.monotonic,
                 probe_backoff: Sequence[float] = BACKOFF, facts_ttl: float = TTL,
                 busy_after: int = BUSY_AFTER) -> None:
        self._core = Core(_config.from_argument(hosts), clock=clock, backoff=probe_backoff,
                          facts_ttl=facts_ttl, busy_after=busy_after)

    @classmethod
    def from_env(cls, *, clock: Clock = time.monotonic,
                 probe_backoff: Sequence[float] = BACKOFF, facts_ttl: float = TTL,
                 busy_after: int = BUSY_AFTER) -> "Fleet":
        """OLLAMA_HOSTS (a SettingError names a bad entry), else OLLAMA_HOST as one host."""
        fleet = cls.__new__(cls)
        fleet._core = Core(_config.from_env(), clock=clock, backoff=probe_backoff,
                           facts_ttl=facts_ttl, busy_after=busy_after)
        return fleet

    # -- the hosts ---------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The hosts' names, in the configured order."""
        return self._core.roster.names

    def urls(self) -> dict[str, str]:
        """name -> address, for an operator (a shared app shows names only: see ``redact``)."""
        return {h.name: h.url for h in self._core.roster.hosts}

    def url(self, host: str) -> str:
        """The address of the host called ``host`` (InvalidRequest for any other name)."""
        return self._core.url(host)

    def redact(self, text: str) -> str:
        """``text`` with every host's address (with or without its scheme) replaced by the
        host's name: what a shared app shows."""
        return self._core.redact(text)

    def status(self, *, timeout: Optional[float] = None) -> list[HostStatus]:
        """Each host: reachable, version, installed and loaded models, answers in flight
        from this process. The hosts are asked at once; one that has not answered within
        ``timeout`` seconds (default: the connect and read limits) is reported as not
        answering. A host known to be down is not asked again here (the prober does)."""
        return _manage.status(self._core, timeout)

    def route(self, model: Name, *, session: Optional[Hashable] = None) -> tuple[str, ...]:
        """The hosts a chat with ``model`` would try now, best first (the first downloads it
        when none has it). Raises NoHostAvailable when no host answers."""
        plan = self._core.plan(parse_name(model), session)
        if not plan.names:
            raise self._core.no_host()
        return plan.names

    # -- models ------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """The models installed on the hosts that answer, each once, with ``hosts`` (where
        it is installed) and ``loaded_on`` (where it is in memory)."""
        return _manage.list_models(self._core)

    def running_models(self, *, hosts: Choice = None) -> list[RunningModel]:
        """Models in memory on ``hosts`` (None: every host that answers), each with ``host``."""
        return _manage.running_models(self._core, hosts)

    def delete_model(self, model: Name, *, hosts: Choice) -> list[str]:
        """Delete ``model`` on ``hosts``: a name, a list of names, or "all" (every host that
        has it). Returns the names of the hosts it was deleted on."""
        parsed = parse_name(model)
        self._core.roster.select(hosts)  # a bad name is refused before anything is sent
        return _manage.delete_model(self._core, parsed, hosts)

    def load_model(self, model: Name, *, host: Optional[str] = None,
                   keep_alive: Union[str, float, None] = None) -> str:
        """Load ``model`` into memory on ``host`` (None: where a chat would go); returns the
        host's name."""
        parsed = parse_name(model)
        chosen = self._core.roster.pick(host)
        if chosen is None:
            route = self.route(parsed)
            chosen = self._core.roster.find(route[0])
        return _manage.load_model(self._core, parsed, chosen, keep_alive)

    def unload_model(self, model: Name, *, hosts: Choice = None) -> list[str]:
        """Free ``model``'s memory on ``hosts`` (None: every host where it is loaded now);
        returns the names of the hosts it was unloaded on."""
        parsed = parse_name(model)
        if hosts is not None:
            self._core.roster.select(hosts)
        return _manage.unload_model(self._core, parsed, hosts)

    def pull_model(self, model: Name, *, hosts: Choice = None,
                   stall_timeout: Optional[float] = None, cancel: Optional[CancelToken] = None,
                   detach: bool = False, check_disk: bool = True,
                   insecure: bool = False) -> Iterator[PullProgress]:
        """Download ``model`` to ``hosts``: a name, a list of names, or "all"; None: the
        host a chat would go to. One pull per (host, model), in parallel; every value
        carries ``host``. A host whose pull fails is named in the error, with what to do;
        the others go on. Closing the generator or ``cancel`` stops all of them."""
        parsed = parse_name(model)
        targets = None if hosts is None else self._core.roster.select(hosts)
        kw = dict(stall_timeout=stall_timeout, cancel=cancel, detach=detach,
                  check_disk=check_disk, insecure=insecure)
        return self._pull(parsed, targets, kw)

    def _pull(self, parsed: ModelName, targets: Optional[list[_config.Host]], kw: dict
              ) -> Iterator[PullProgress]:
        if targets is None:  # decided on the first next(), like any pull
            targets = [self._core.roster.find(self.route(parsed)[0])]
        yield from pull_on(self._core, parsed, targets, kw)

    def active_pulls(self) -> list[PullProgress]:
        """The latest value of every pull running in this process to one of the hosts (any
        caller's: a chat's auto-pull, another user's), each with ``host``."""
        return _pulls.active(self._core)

    def recent_pulls(self) -> list[PullOutcome]:
        """How the pulls to the hosts ended in the last hour, newest first; ``host`` is the
        host's name and the message never shows its address."""
        return _pulls.recent(self._core)

    def cancel_pull(self, model: Name, *, hosts: Choice = "all") -> list[str]:
        """Stop the running pull of ``model`` on ``hosts`` (every consumer's); returns the
        names of the hosts where one was running. The partial stays on each host."""
        parsed = parse_name(model)
        return _pulls.cancel(self._core, parsed, self._core.roster.select(hosts))

    def model_details(self, model: Name, *, host: Optional[str] = None) -> ModelDetails:
        """``cp.model_details`` from ``host`` (None: the first host, in order, that has it)."""
        return _manage.details(self._core, parse_name(model), self._core.roster.pick(host))

    # -- chat --------------------------------------------------------------------------------

    def chat_stream(self, model: Name, messages: Sequence[Mapping[str, Any]], *,
                    session: Optional[Hashable] = None, host: Optional[str] = None,
                    system: Optional[str] = None, options: Optional[Mapping[str, Any]] = None,
                    think: chat.Think = None, auto_pull: bool = True,
                    stall_timeout: Optional[float] = None, keep_alive: Optional[Any] = None,
                    cancel: Optional[CancelToken] = None, clock: Clock = time.monotonic,
                    detach_pull: bool = False) -> Iterator[ChatEvent]:
        """``cp.chat_stream`` over the fleet: first one ``Routed`` (which host answers, and
        which were skipped before it), then that host's events (a ``PullProgress`` and the
        ``ChatDone`` carry its name). ``host``: a host's name, or None / "auto" for the
        router; ``session``: any key of the conversation (its next turns prefer the host
        that answered this one). The model name, ``host`` and ``think`` are checked here,
        before anything is sent."""
        parsed = parse_name(model)
        chosen = self._core.roster.pick(host)
        kw = dict(system=system, options=options, think=chat.think_value(think),
                  auto_pull=auto_pull, stall_timeout=stall_timeout, keep_alive=keep_alive,
                  cancel=cancel, clock=clock, detach_pull=detach_pull)
        return chat_on_fleet(self._core, parsed, messages, session=session, host=chosen, kw=kw)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the background prober (it also ends by itself when no host is down)."""
        self._core.health.close()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Fleet({', '.join(self.names)})"


__all__ = ["Fleet"]
