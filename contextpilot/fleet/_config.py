"""A fleet's hosts: names and addresses, from ``Fleet(hosts)`` or the environment
(OLLAMA_HOSTS through ``settings.hosts()``, else OLLAMA_HOST as a fleet of one), and the one
place that turns what a caller or a visitor names ("gpu1", ["gpu1", "gpu2"], "all", "auto")
into hosts, refusing anything else before a request is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

from .. import _client, settings
from ..errors import InvalidRequest, SettingError

Hosts = Union[Mapping[str, str], Sequence[str]]
"What ``Fleet(hosts)`` takes: name -> address, or addresses (each named by its host:port)."
Choice = Union[str, Sequence[str], None]
"A name, several names, or 'all' (``hosts=`` of a pull or a delete)."

AUTO = "auto"
ALL = "all"


@dataclass(frozen=True)
class Host:
    """One host of a fleet: its name, its address (normalised like the ollama client) and
    its place in the configured order."""

    name: str
    url: str
    order: int


def from_argument(hosts: Hosts) -> tuple[Host, ...]:
    """Hosts from ``Fleet(hosts)``; InvalidRequest (a ValueError) names a bad entry."""
    if isinstance(hosts, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in hosts.items()]
    elif isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise InvalidRequest("hosts must be a mapping of name -> address, or a list of "
                             "addresses, e.g. {'gpu1': 'http://10.0.0.5:11434'}.")
    else:
        pairs = [(settings.host_port(str(u)), str(u).strip()) for u in hosts]
    for i, (name, url) in enumerate(pairs):
        problem = settings.host_problem(name, url, [n for n, _ in pairs[:i]])
        if problem:
            raise InvalidRequest(f"The host {name[:60]!r} ({url[:120]!r}) {problem}.")
    return _resolved(pairs, InvalidRequest)


def from_env() -> tuple[Host, ...]:
    """OLLAMA_HOSTS, else OLLAMA_HOST (or the default) as a fleet of one."""
    pairs = settings.hosts()
    if not pairs:
        url = _client.resolve_host(None)
        return (Host(settings.host_port(url) or url, url, 0),)
    return _resolved(pairs, lambda text: SettingError(
        settings.HOSTS, settings.text(settings.HOSTS), text))


def _resolved(pairs: list[tuple[str, str]], error) -> tuple[Host, ...]:
    if not pairs:
        raise InvalidRequest("A fleet needs at least one host.")
    out = []
    for i, (name, address) in enumerate(pairs):
        try:
            out.append(Host(name, _client.resolve_host(address), i))
        except InvalidRequest as exc:
            raise error(f"The host {name!r}: {exc}") from None
    return tuple(out)


class Roster:
    """The configured hosts, looked up by name (case-insensitively), in order."""

    def __init__(self, hosts: tuple[Host, ...]) -> None:
        self.hosts = hosts
        self._by_name = {h.name.lower(): h for h in hosts}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    def find(self, name: object) -> Host:
        """The host called ``name``; InvalidRequest (before any request) for anything else:
        an address, an unknown name, a path, a value that is not text."""
        host = self._by_name.get(name.strip().lower()) if isinstance(name, str) else None
        if host is None:
            raise InvalidRequest(f"There is no host {_shown(name)} here: choose one of "
                                 f"{', '.join(self.names)} (or auto).")
        return host

    def pick(self, name: object) -> Optional[Host]:
        """``None`` for "auto" or nothing (the router chooses), else the named host."""
        if name is None or (isinstance(name, str) and name.strip().lower() in (AUTO, "")):
            return None
        return self.find(name)

    def select(self, choice: Choice) -> list[Host]:
        """Hosts for ``choice``: a name, a list of names, or "all" (every host, in order)."""
        if isinstance(choice, str) and choice.strip().lower() == ALL:
            return list(self.hosts)
        if isinstance(choice, str):
            return [self.find(choice)]
        if not isinstance(choice, Sequence) or isinstance(choice, bytes) or not choice:
            raise InvalidRequest(f"hosts must be a host's name, a list of names or 'all' "
                                 f"(one of {', '.join(self.names)}), not {_shown(choice)}.")
        chosen = {self.find(name).name: self.find(name) for name in choice}
        return sorted(chosen.values(), key=lambda h: h.order)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"
