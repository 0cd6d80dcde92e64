"""A fleet's chat: routed over the hosts (or on the one named), failing over only before the
first token, and saying so; never after it.

Each host is tried with the one-host ``chat.chat_stream`` (auto-pull, the 404 retry, the
quiet busy retries: all as today). Before its first event, a host that refuses the connection,
times out connecting, drops the connection, or stays busy (503) after those retries is
skipped for the next one in the plan, and ``Routed.skipped`` says so. After it, nothing is
re-run: the consumer keeps what it received, and the error names the host and offers to
send the message again (the next turn of that session avoids the host).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generator, Hashable, Iterator, Mapping, Optional, Sequence

from .. import chat
from ..errors import (ContextPilotError, ModelNotFound, OllamaBusy, OllamaUnavailable,
                      PullCancelled, PullFailed)
from ..names import ModelName
from ..types import ChatDone, ChatEvent, ContentDelta, PullProgress, Routed, ThinkingDelta
from ._config import Host
from ._core import Core, pull_command, skip_reason, why
from ._route import Plan

FAILOVER = (OllamaUnavailable, OllamaBusy)
"Failures before the first token that send a chat on to the next host."
ELSEWHERE = "Send the message again to have another host answer."
CHOSEN = "Send the message again, or choose another host."
_FAILED = object()


def chat_on_fleet(core: Core, parsed: ModelName, messages: Sequence[Mapping[str, Any]], *,
                  session: Optional[Hashable], host: Optional[Host],
                  kw: dict) -> Iterator[ChatEvent]:
    """Routed() once the answering host is known, then that host's events (a PullProgress
    and the ChatDone carry its name)."""
    return _Turn(core, parsed, messages, session, host, kw).run()


def tag(event: ChatEvent, host: str) -> ChatEvent:
    """The event with the host's name, where the event has a place for it."""
    if isinstance(event, PullProgress):
        return PullProgress._fast({**event.__dict__, "host": host})
    if isinstance(event, ChatDone):
        return dataclasses.replace(event, host=host)
    return event


class _Turn:
    """One chat turn over the fleet."""

    def __init__(self, core: Core, parsed: ModelName, messages: Sequence[Mapping[str, Any]],
                 session: Optional[Hashable], host: Optional[Host], kw: dict) -> None:
        self.core, self.parsed, self.messages = core, parsed, messages
        self.session, self.host, self.kw = session, host, kw
        self.tried: list[tuple[str, str]] = []
        self.claimed = ""  # the host plan_turn counted in flight for us

    def run(self) -> Iterator[ChatEvent]:
        if self.host is not None:  # the caller chose: no failover
            yield from self._on(self.host)
            return
        while True:
            for name in self._plan().names:
                if (yield from self._on(self.core.roster.find(name))) is not _FAILED:
                    return

    def _plan(self) -> Plan:
        """The hosts not tried yet, best first; raises when none is left."""
        plan, down = self.core.plan_turn(self.parsed, self.session, [n for n, _ in self.tried],
                                         claim=True)
        self.claimed = plan.names[0] if plan.names else ""
        self.tried += [(name, "did not answer") for name in down]
        self.tried += self.core.news(self.session, [n for n, _ in self.tried])
        if not plan.names:
            raise self.core.no_host(self.tried)
        if plan.pull and not self.kw.get("auto_pull", True) and not self.parsed.is_cloud:
            self.core.flight_done(self.claimed)
            raise self._not_installed(plan)
        return plan

    def _not_installed(self, plan: Plan) -> ModelNotFound:
        name = self.parsed.display
        tried = "".join(f"; {n} {why}" for n, why in self.tried)
        error = ModelNotFound(name, installed_only=True)
        error.args = (f"Model '{name}' is not installed on any host that answers "
                      f"({', '.join(plan.names)}{tried}). Please pull it first: "
                      f"{pull_command(name, plan.names[0])}",)
        return error

    def _on(self, host: Host) -> Generator[ChatEvent, None, object]:
        """Try ``host``: its events, or _FAILED (returned) when it failed before the first."""
        events = chat.chat_stream(self.parsed, self.messages, host=host.url, **self.kw)
        claimed, self.claimed = host.name == self.claimed, ""
        with self.core.flight(host.name, claimed):
            try:
                try:
                    first = next(events)
                except StopIteration:  # our own consumer cancelled it: a quiet end
                    return None
                except FAILOVER as exc:
                    return self._failed(host, exc)
                except ContextPilotError as exc:
                    raise self.core.on_host(exc, host.name) from exc
                yield from self._stream(host, first, events)
            finally:
                getattr(events, "close")()  # a generator: closing it closes the stream
        return None

    def _failed(self, host: Host, exc: Exception) -> object:
        if isinstance(exc, OllamaUnavailable):
            self.core.health.mark_down(host.name, why(exc))
        if self.host is not None:
            raise self.core.on_host(exc, host.name) from exc
        self.tried.append((host.name, skip_reason(exc)))
        return _FAILED

    def _stream(self, host: Host, first: ChatEvent, events: Iterator[ChatEvent]
                ) -> Iterator[ChatEvent]:
        self.core.remember(self.session, last=host.name)
        self.core.health.mark_up(host.name)  # it answered (a host named while marked down)
        yield Routed(host.name, tuple(self.tried), pull=isinstance(first, PullProgress))
        wrote = False
        event = first
        try:
            while True:
                wrote = wrote or isinstance(event, (ContentDelta, ThinkingDelta))
                yield tag(event, host.name)
                event = next(events)
        except StopIteration:
            pass
        except ContextPilotError as exc:
            raise self._broken(host, exc, wrote) from exc
        self.core.facts.note_loaded(host.name, self.parsed.key, self.parsed.display)

    def _broken(self, host: Host, exc: ContextPilotError, wrote: bool) -> Exception:
        """The error for a host that failed after its first event (the consumer keeps what
        it received): it names the host and says what to do."""
        name = host.name
        if isinstance(exc, OllamaUnavailable):
            self.core.health.mark_down(name, "stopped answering")
        if not wrote:  # its download failed: the partial stays there, and so does the turn
            resume = isinstance(exc, PullFailed) and not isinstance(exc, PullCancelled)
            return self.core.on_host(exc, name, (
                f"The partial download stays on {name}: send the message again to resume "
                f"it there.") if resume else "")
        self.core.remember(self.session, avoid=name)
        extra = ELSEWHERE if self.host is None else CHOSEN
        if not isinstance(exc, OllamaUnavailable):
            return self.core.on_host(exc, name, extra)
        error = OllamaUnavailable(name, during="answer", kind=exc.kind, message=(
            f"{name} stopped answering in the middle of the answer (the connection was "
            f"lost); what it wrote so far is kept. {extra}"))
        error.host_name = name
        return error
