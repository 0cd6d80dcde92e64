"""A fleet's views and management: each host's status, the models merged over the hosts,
what runs where, and delete / load / unload on one host or several. Calls to several hosts
run at once, each bounded by the client's timeouts; a host already known to be down is
reported from what is known of it, not asked again (the prober does that)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional, Sequence, TypeVar

from .. import models
from ..errors import ContextPilotError, ModelNotFound, OllamaUnavailable
from ..names import ModelName
from ..types import HostStatus, ModelDetails, ModelInfo, RunningModel
from ._config import Choice, Host
from ._core import Core, why
from ._facts import Facts
from ._parallel import Result, run_all

T = TypeVar("T")


def status(core: Core, timeout: Optional[float] = None) -> list[HostStatus]:
    """One HostStatus per host, in the configured order."""
    up = core.up()
    limit = core.bound() if timeout is None else timeout
    results = run_all({h.name: functools.partial(_status_of, core, h) for h in up}, limit)
    out = []
    for h in core.roster.hosts:
        result = results.get(h.name)
        if result is not None and result.value is not None:
            out.append(result.value)
            continue
        error = result.error if result is not None else None
        state = core.health.why(h.name) or (why(error) if error else (
            f"did not answer within {limit:g} s"))
        out.append(HostStatus(h.name, h.url, False, error=f"{h.name} {state}",
                              in_flight=core.in_flight(h.name)))
    return out


def _status_of(core: Core, host: Host) -> HostStatus:
    result = core.facts.fresh([host.name], None)[host.name]
    if isinstance(result.error, OllamaUnavailable):
        raise result.error  # marked down by the fetch; status() says how it failed
    facts = result.value
    server = models.server_status(host.url)  # never raises
    return HostStatus(
        host.name, host.url, True, version=server.version,
        error=core.on_host(result.error, host.name).args[0] if result.error else "",
        installed=tuple(m.name for m in facts.installed.values()) if facts else (),
        loaded=tuple(facts.loaded.values()) if facts else (),
        in_flight=core.in_flight(host.name), cloud=server.cloud)


def list_models(core: Core) -> list[ModelInfo]:
    """The models installed on the hosts that answer, each once (as the first host in order
    lists it), with ``hosts`` and ``loaded_on``."""
    up = core.up()
    results = core.facts.fresh([h.name for h in up], core.bound())
    answered = [(h.name, r.value) for h in up if (r := results.get(h.name)) and r.value]
    if not answered:
        raise core.no_host()
    return merge(answered)


def merge(facts: Sequence[tuple[str, Facts]]) -> list[ModelInfo]:
    """Models by key over the hosts, in order: the first host's info, every host's name.
    A name that runs on ollama.com on any host (a cloud copy, ``remote_host``) is listed as
    one: a shared app's cloud rule must see it, whichever host a visitor picks."""
    first: dict[str, ModelInfo] = {}
    where: dict[str, list[str]] = {}
    loaded: dict[str, list[str]] = {}
    for name, f in facts:
        for key, info in f.installed.items():
            have = first.setdefault(key, info)
            if info.remote_host and not have.remote_host:
                first[key] = dataclasses.replace(have, remote_host=info.remote_host,
                                                 remote_model=info.remote_model)
            where.setdefault(key, []).append(name)
            if key in f.loaded:
                loaded.setdefault(key, []).append(name)
    return [dataclasses.replace(info, hosts=tuple(where[k]), loaded_on=tuple(loaded.get(k, ())))
            for k, info in first.items()]


def running_models(core: Core, hosts: Choice) -> list[RunningModel]:
    """What runs on ``hosts`` (None: every host that answers), each with its host's name."""
    targets = core.up() if hosts is None else core.roster.select(hosts)
    if not targets:
        raise core.no_host()
    done, failed = _each(core, targets, lambda h: models.running_models(h.url))
    if failed and (hosts is not None or not done):
        raise _several(core, failed, [n for n, _ in done], "Listing the running models")
    return [dataclasses.replace(m, host=name) for name, running in done for m in running]


def delete_model(core: Core, parsed: ModelName, hosts: Choice) -> list[str]:
    """Delete on ``hosts`` ("all": every host that has it); the names where it was deleted."""
    every = isinstance(hosts, str) and hosts.strip().lower() == "all"
    targets = core.roster.select(hosts)
    done, failed = _each(core, targets, lambda h: models.delete_model(parsed, h.url))
    if every:  # "nothing to delete" on a host that never had it is not a failure
        failed = [(n, e) for n, e in failed if not isinstance(e, ModelNotFound)]
        if not done and not failed:
            raise ModelNotFound(parsed.display, installed_only=True)
    if failed:
        raise _several(core, failed, [n for n, _ in done], f"Deleting '{parsed.display}'")
    return [n for n, _ in done]


def details(core: Core, parsed: ModelName, host: Optional[Host]) -> ModelDetails:
    """What ``host`` (None: the first host in order that has the model) says of it."""
    if host is None:
        up = core.up()
        facts = core.facts.get([h.name for h in up], core.facts_wait())
        host = next((h for h in up if h.name in facts
                     and parsed.key in facts[h.name].installed), None)
        if host is None:
            error = ModelNotFound(parsed.display, installed_only=True)
            error.args = (f"Model '{parsed.display}' is not installed on any host that "
                          f"answers ({', '.join(h.name for h in up) or 'none does'}).",)
            raise error
    try:
        return models.model_details(parsed, host.url)
    except ContextPilotError as exc:
        raise core.on_host(exc, host.name) from exc


def load_model(core: Core, parsed: ModelName, host: Host, keep_alive) -> str:
    try:
        models.load_model(parsed, keep_alive, host.url)
    except ContextPilotError as exc:
        raise core.on_host(exc, host.name) from exc
    finally:
        core.facts.invalidate(host.name)
    return host.name


def unload_model(core: Core, parsed: ModelName, hosts: Optional[Choice]) -> list[str]:
    """Free the model's memory on ``hosts`` (None: wherever it is loaded now)."""
    if hosts is None:
        fresh = core.facts.fresh([h.name for h in core.up()], core.bound())
        targets = [h for h in core.roster.hosts if (r := fresh.get(h.name)) and r.value
                   and parsed.key in r.value.loaded]
    else:
        targets = core.roster.select(hosts)
    done, failed = _each(core, targets, lambda h: models.unload_model(parsed, h.url))
    if failed:
        raise _several(core, failed, [n for n, _ in done], f"Unloading '{parsed.display}'")
    return [n for n, _ in done]


def _each(core: Core, targets: Sequence[Host], call: Callable[[Host], T]
          ) -> tuple[list[tuple[str, T]], list[tuple[str, BaseException]]]:
    """Run ``call`` on every host at once: (name, value) that worked, (name, error) not."""
    results: dict[str, Result[T]] = run_all(
        {h.name: functools.partial(call, h) for h in targets}, core.bound())
    done, failed = [], []
    for h in targets:
        core.facts.invalidate(h.name)
        r = results.get(h.name)
        if r is not None and r.error is None:
            done.append((h.name, r.value))
            continue
        error = r.error if r is not None else OllamaUnavailable(h.name, message=(
            f"{h.name} did not answer within {core.bound():g} s."))
        if isinstance(error, OllamaUnavailable):
            core.health.mark_down(h.name, why(error))
        failed.append((h.name, error))
    return done, failed  # type: ignore[return-value]


def _several(core: Core, failed: list[tuple[str, BaseException]], done: list[str],
             what: str) -> ContextPilotError:
    named = [(n, core.on_host(e if isinstance(e, ContextPilotError)
                              else ContextPilotError(f"{type(e).__name__}: {e}"), n))
             for n, e in failed]
    first = named[0][1]
    if len(named) > 1 or done:
        ok = f" It worked on {', '.join(done)}." if done else ""
        first.args = (f"{what} failed on {', '.join(n for n, _ in named)}. "
                      + " ".join(str(e) for _, e in named) + ok,)
    first.failures = tuple(named)
    return first
