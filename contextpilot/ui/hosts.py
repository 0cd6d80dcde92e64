"""The app's Ollama hosts: one (OLLAMA_HOST), or several used as one (OLLAMA_HOSTS, a
``cp.Fleet``). ``Hosts`` answers the app's questions the same way for both — what is
installed, where to chat, where to download, what runs — with the fleet's routing and
failover when there are several. With one host every call goes to it directly, exactly as
before fleets existed.

Nothing here applies the app's rules: ``Service`` checks the policy and makes texts public
(which includes naming hosts a visitor may see by their labels, never their addresses).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterator, Optional

import contextpilot as cp
from contextpilot import settings
from contextpilot.ui.host import Host, Models

AUTO = "auto"
ALL = "all"


class Hosts:
    """The app's hosts, by name, in the configured order."""

    def __init__(self, fleet: cp.Fleet, preload: bool = True) -> None:
        self.fleet = fleet
        self.by_name = {name: Host(url, preload, name=name) for name, url in fleet.urls().items()}
        self.names: tuple[str, ...] = fleet.names

    @classmethod
    def of(cls, host: Any = None, preload: bool = True) -> "Hosts":
        """From ``build_app``'s argument: a Fleet, an address (a fleet of one), or None
        (OLLAMA_HOSTS, else OLLAMA_HOST)."""
        if isinstance(host, Hosts):
            return host
        if isinstance(host, cp.Fleet):
            return cls(host, preload)
        if host is None:
            return cls(cp.Fleet.from_env(), preload)
        return cls(cp.Fleet([str(host)]), preload)

    @property
    def multi(self) -> bool:
        """Several hosts: the app shows the fleet (a host chooser, where each model is)."""
        return len(self.names) > 1

    @property
    def primary(self) -> Host:
        """The first host (the only one, for a fleet of one)."""
        return self.by_name[self.names[0]]

    def derived(self, name: str) -> bool:
        """The host was configured by its address alone: its name *is* its host:port."""
        host = self.by_name.get(name)
        return host is not None and name == settings.host_port(host.url or "")

    def pick(self, choice: object) -> Optional[str]:
        """A host's name from what a caller chose: None for "auto" (or nothing); the
        configured name for a name (any case); InvalidRequest, before any request, for
        anything else."""
        if choice is None or (isinstance(choice, str) and choice.strip().lower() in ("", AUTO)):
            return None
        self.fleet.url(choice if isinstance(choice, str) else repr(choice))  # refuses others
        return next(n for n in self.names if n.lower() == str(choice).strip().lower())

    def host(self, name: Optional[str]) -> Host:
        return self.primary if name is None else self.by_name[name]

    def target(self, model: str, choice: Optional[str] = None,
               session: Optional[Hashable] = None) -> Host:
        """Where ``model`` goes: the chosen host, else (several) the router's first pick."""
        if choice is not None or not self.multi:
            return self.host(choice)
        return self.by_name[self.fleet.route(model, session=session)[0]]

    # -- what the hosts have -------------------------------------------------------------

    def models(self, with_capabilities: bool = True,
               may_pull: Optional[Callable[[str], bool]] = None) -> Models:
        if not self.multi:
            return self.primary.models(with_capabilities, may_pull)
        return Models(self.primary, may_pull).refresh(  # each model asked on its first host
            with_capabilities, listing=self.fleet.list_models,
            host_of=lambda m: self.by_name[m.hosts[0]] if m.hosts else None)

    def statuses(self) -> list[cp.HostStatus]:
        return self.fleet.status()

    def where(self, model: str) -> tuple[str, ...]:
        """The hosts where ``model`` is installed (several hosts; () for one)."""
        if not self.multi:
            return ()
        key = cp.parse_name(model).key
        try:
            found = self.fleet.list_models()
        except cp.ContextPilotError:
            return ()
        return next((m.hosts for m in found if cp.parse_name(m.name).key == key), ())

    def installed(self, model: str, choice: Optional[str] = None) -> bool:
        if choice is not None or not self.multi:
            return self.host(choice).installed(model)
        return bool(self.where(model))

    def pulling(self, model: str) -> bool:
        key = cp.parse_name(model).key
        return any(cp.parse_name(p.model).key == key for p in self.active_pulls())

    # -- chat, pull, and what runs -------------------------------------------------------

    def chat_stream(self, name: str, messages: list, *, choice: Optional[str],
                    session: Optional[Hashable], **kw: Any) -> Iterator[cp.ChatEvent]:
        if not self.multi:
            return cp.chat_stream(name, messages, host=self.primary.url, **kw)
        return self.fleet.chat_stream(name, messages, host=choice, session=session, **kw)

    def pull(self, name: str, choice: Optional[str], *, every: bool = False,
             **kw: Any) -> Iterator[cp.PullProgress]:
        """A pull to the chosen host, to every host (``every``), or where a chat would go."""
        if not self.multi:
            return cp.pull_model(name, self.primary.url, **kw)
        return self.fleet.pull_model(name, hosts=ALL if every else choice, **kw)

    def active_pulls(self) -> list[cp.PullProgress]:
        if not self.multi:
            return cp.active_pulls(self.primary.url)
        return self.fleet.active_pulls()

    def recent_pulls(self) -> list[cp.PullOutcome]:
        if not self.multi:
            return cp.recent_pulls(self.primary.url)
        return self.fleet.recent_pulls()

    def running(self) -> list[cp.RunningModel]:
        if not self.multi:
            return cp.running_models(self.primary.url)
        return self.fleet.running_models()

    # -- management: one host, or every host that has the model -------------------------

    def delete(self, name: cp.ModelName, choice: str = ALL) -> list[str]:
        if not self.multi:
            self.primary.delete(name)
            return []
        return self.fleet.delete_model(name, hosts=choice)

    def load(self, name: cp.ModelName, choice: Optional[str] = None) -> str:
        if not self.multi:
            self.primary.load(name)
            return ""
        return self.fleet.load_model(name, host=choice)

    def unload(self, name: cp.ModelName, choice: Optional[str] = None) -> list[str]:
        if not self.multi:
            self.primary.unload(name)
            return []
        return self.fleet.unload_model(name, hosts=choice)

    def cancel(self, name: cp.ModelName, choice: str = ALL) -> list[str]:
        if not self.multi:
            return [self.names[0]] if cp.cancel_pull(name, self.primary.url) else []
        return self.fleet.cancel_pull(name, hosts=choice)


__all__ = ["ALL", "AUTO", "Hosts"]
