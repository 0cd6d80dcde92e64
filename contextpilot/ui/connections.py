"""Idle and half-open connections, bounded, so thousands of them never lock visitors out.

uvicorn (which Gradio runs) closes a keep-alive connection idle after an answer, but waits
for ever for the first request of a new one, and a connection that trickles a request head
(a byte every few seconds) resets even the keep-alive clock: each holds a socket, and past
the process's file limit nobody else gets in. So every connection of the app's server:

- must send a whole request head within HEAD_TIMEOUT seconds of opening, or of its last
  answer (the clock is not reset by a trickle);
- counts among the connections waiting with no request in progress, of which there are at
  most ``max_idle`` (a quarter of the file limit, at most MAX_IDLE): past that, the one that
  has waited longest is closed (a client whose idle keep-alive connection is closed opens
  another).

A request in progress (a streaming answer, an upload) is never closed here; its body has
its own deadline (``ui.gate``). ``App.launch`` serves the app this way, however it is
launched (``python app.py``, ``python -m contextpilot serve``, a Space, a notebook): Gradio
builds its own uvicorn Config, so while it launches, its server class is ``GuardedServer``.
A mounted app runs in the operator's own uvicorn: pass ``http=guarded_protocol()`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import threading
from collections import OrderedDict
from typing import Any, Iterator, Optional

from contextpilot.policy import hosted_environment

HEAD_TIMEOUT = 10.0
"Seconds a connection may take to send a request head (after opening, or after an answer)."
KEEP_ALIVE = 5
"Seconds an idle keep-alive connection is kept after its answer (uvicorn's default)."
MAX_IDLE = 1024
SPACE_PROXIES = "127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
"""On a Space, the proxies in front of the app (private addresses): the visitor's address is
the last public one in X-Forwarded-For, so one a visitor writes there themselves is not."""


def max_idle() -> int:
    """Connections allowed to wait without a request: a quarter of the file limit."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ValueError, OSError):
        return MAX_IDLE
    return max(16, min(MAX_IDLE, soft // 4)) if soft > 0 else MAX_IDLE


class _Idle:
    """The connections of one server with no request in progress, oldest first (the event
    loop's thread only)."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self.waiting: OrderedDict[Any, asyncio.TimerHandle] = OrderedDict()

    def wait(self, conn: Any) -> None:
        """``conn`` now waits for a request head: its clock starts."""
        self.done(conn)
        loop = asyncio.get_running_loop()
        self.waiting[conn] = loop.call_later(self.timeout, _close, conn)
        while len(self.waiting) > self.limit:
            oldest, timer = self.waiting.popitem(last=False)
            timer.cancel()
            _close(oldest)

    def done(self, conn: Any) -> None:
        """``conn`` has a request in progress, or is gone."""
        timer = self.waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()


def _close(conn: Any) -> None:
    transport = getattr(conn, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


def _busy(conn: Any) -> bool:
    cycle = getattr(conn, "cycle", None)
    return cycle is not None and not cycle.response_complete


def guarded_protocol(base: Optional[type] = None, limit: Optional[int] = None,
                     timeout: float = HEAD_TIMEOUT) -> type:
    """uvicorn's HTTP protocol (``base``: the one uvicorn would choose) with the bounds of
    the module docstring; one idle list per class, so make one class per server."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol
    idle = _Idle(max_idle() if limit is None else limit, timeout)

    class Guarded(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            idle.wait(self)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if _busy(self):
                idle.done(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not _busy(self):
                idle.wait(self)

        def connection_lost(self, exc: Optional[Exception]) -> None:
            idle.done(self)
            super().connection_lost(exc)

    Guarded.idle = idle  # type: ignore[attr-defined]
    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def guard_config(config: Any) -> None:
    """Give a uvicorn Config, before it is loaded, the guarded protocol and the keep-alive
    bound; on a Space, trust the Space's proxies (SPACE_PROXIES) for the visitor's address,
    so per-address limits see visitors, not the proxy."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base = config.http
    if isinstance(base, str):
        base = import_from_string(HTTP_PROTOCOLS.get(base, base))
    if not getattr(base, "idle", None):
        config.http = guarded_protocol(base)
    config.timeout_keep_alive = min(config.timeout_keep_alive, KEEP_ALIVE)
    on_space = hosted_environment() == "a Hugging Face Space"
    if on_space and "FORWARDED_ALLOW_IPS" not in os.environ:
        config.forwarded_allow_ips = SPACE_PROXIES


_launching = threading.Lock()


@contextlib.contextmanager
def guarded_launch() -> Iterator[None]:
    """While Gradio launches a server (``Blocks.launch``), the server it makes is guarded."""
    from gradio import http_server

    with _launching:
        plain = http_server.Server

        class GuardedServer(plain):  # type: ignore[misc, valid-type]
            def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
                guard_config(config)
                super().__init__(config, *args, **kwargs)

        http_server.Server = GuardedServer  # type: ignore[misc]
        try:
            yield
        finally:
            http_server.Server = plain  # type: ignore[misc]


__all__ = ["HEAD_TIMEOUT", "KEEP_ALIVE", "guard_config", "guarded_launch", "guarded_protocol",
           "max_idle"]
