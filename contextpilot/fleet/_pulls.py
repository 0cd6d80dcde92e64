"""A fleet's pulls: one pull per (host, model) through the one-host pull engine (shared pulls,
stall limit, disk guard, resume: all as today), several merged into one generator whose
values carry their host's name.

A pull never moves to another host on its own (a partial lives on one host): a host that
fails is named in the error, with what to do; the other hosts' pulls go on to their end.
Cancelling (the ``cancel`` token, or closing the generator) stops all of them.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Iterator, Optional, Sequence

from .. import pull
from ..cancel import CancelToken
from ..errors import ContextPilotError, OllamaUnavailable, PullCancelled, PullFailed
from ..names import ModelName
from ..types import PullOutcome, PullProgress
from ._config import Host
from ._core import Core, why

_DONE = object()
DRAIN = 10.0
"Seconds a closed merge waits for its pulls to stop (each stops at once when cancelled)."


def pull_on(core: Core, parsed: ModelName, targets: Sequence[Host], kw: dict
            ) -> Iterator[PullProgress]:
    """Pull ``parsed`` to every host of ``targets`` (at once when there are several)."""
    if len(targets) == 1:
        return _one(core, parsed, targets[0], kw)
    return _merged(core, parsed, targets, kw)


def _tag(value: PullProgress, host: str) -> PullProgress:
    return PullProgress._fast({**value.__dict__, "host": host})


def _one(core: Core, parsed: ModelName, host: Host, kw: dict) -> Iterator[PullProgress]:
    try:
        for value in pull.pull_model(parsed, host.url, **kw):
            yield _tag(value, host.name)
    except ContextPilotError as exc:
        raise _named(core, host.name, exc) from exc
    finally:
        core.facts.invalidate(host.name)


def _named(core: Core, name: str, exc: ContextPilotError) -> ContextPilotError:
    """A host's pull error, naming the host and what to do."""
    if isinstance(exc, OllamaUnavailable):
        core.health.mark_down(name, why(exc))
        return core.on_host(exc, name, "Nothing was downloaded there: start Ollama on "
                                       f"{name}, or pull to another host.")
    if isinstance(exc, PullFailed) and not isinstance(exc, PullCancelled) and (
            exc.kind != "router"):
        return core.on_host(exc, name, f"The partial download stays on {name}: pull it again "
                                       f"there to resume.")
    return core.on_host(exc, name)


def _merged(core: Core, parsed: ModelName, targets: Sequence[Host], kw: dict
            ) -> Iterator[PullProgress]:
    outer: Optional[CancelToken] = kw.pop("cancel", None)
    tokens = {h.name: CancelToken() for h in targets}

    def stop_all() -> None:
        for token in tokens.values():
            token.cancel()

    unregister = outer.on_cancel(stop_all) if outer else None
    # Small: a slow consumer holds the pull threads back, and the engine then hands each of
    # them the newest value rather than a backlog (no step is ever dropped).
    inbox: queue.Queue = queue.Queue(maxsize=4 * len(targets))
    for host in targets:
        threading.Thread(target=_work, args=(parsed, host, tokens[host.name], kw, inbox),
                         name=f"pull {parsed.display} on {host.name}", daemon=True).start()
    left, done, failed = len(targets), [], []
    try:
        while left:
            host, value, error = inbox.get()
            if value is _DONE or error is not None:
                left -= 1
                (done.append(host.name) if error is None else failed.append((host, error)))
                continue
            yield _tag(value, host.name)
    finally:
        stop_all()  # closed early, or an error: every pull stops; ended ones ignore it
        if unregister:
            unregister()
        _drain(inbox, left)
        for host in targets:
            core.facts.invalidate(host.name)
    if outer is not None and outer.cancelled:
        raise PullCancelled(parsed.display)
    if failed:
        raise _failures(core, parsed, failed, done)


def _work(parsed: ModelName, host: Host, token: CancelToken, kw: dict,
          inbox: queue.Queue) -> None:
    try:
        for value in pull.pull_model(parsed, host.url, cancel=token, **kw):
            inbox.put((host, value, None))
        inbox.put((host, _DONE, None))
    except Exception as exc:  # every failure reaches the consumer, which names the host
        inbox.put((host, None, exc))


def _drain(inbox: queue.Queue, left: int) -> None:
    """Read until every pull thread has said it ended (they were cancelled), so that none
    stays blocked on a full inbox; bounded."""
    while left:
        try:
            _, value, error = inbox.get(timeout=DRAIN)
        except queue.Empty:
            return
        if value is _DONE or error is not None:
            left -= 1


def _failures(core: Core, parsed: ModelName, failed: list, done: list[str]
              ) -> ContextPilotError:
    """One error for the hosts whose pull failed: the first one's type, every host named."""
    named = [(h.name, _named(core, h.name, e if isinstance(e, ContextPilotError)
                             else PullFailed(parsed.display, f"{type(e).__name__}: {e}")))
             for h, e in failed]
    first = named[0][1]
    if len(named) > 1 or done:
        text = " ".join(str(e) for _, e in named)
        ok = f" It is ready on {', '.join(done)}." if done else ""
        first.args = (f"Downloading '{parsed.display}' failed on "
                      f"{', '.join(n for n, _ in named)}. {text}{ok}",)
    first.failures = tuple(named)
    return first


# -- the downloads of this process, by host name ----------------------------------------------

def active(core: Core) -> list[PullProgress]:
    """Every pull running in this process to one of the fleet's hosts, with its host's name."""
    return [_tag(p, h.name) for h in core.roster.hosts for p in pull.active_pulls(h.url)]


def recent(core: Core) -> list[PullOutcome]:
    """How the pulls to the fleet's hosts ended (the last hour, newest first), each naming
    its host by name, its message without the host's address."""
    names = {h.url: h.name for h in core.roster.hosts}
    return [dataclasses.replace(o, host=names[o.host], message=core.pull_advice(
        core.redact(o.message), o.model, names[o.host])) for o in pull.recent_pulls()
        if o.host in names]


def cancel(core: Core, parsed: ModelName, targets: Sequence[Host]) -> list[str]:
    """Stop the running pulls of ``parsed`` to ``targets``; the names where one ran."""
    return [h.name for h in targets if pull.cancel_pull(parsed, h.url)]
