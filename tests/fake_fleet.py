"""Fakes for a fleet of Ollama hosts, built on tests/fake_ollama.py without changing it:

- ``LimitedOllama``: a fake Ollama that answers at most ``parallel`` chats at once and
  queues the rest (like OLLAMA_NUM_PARALLEL), and can be slow to list its models
  (``list_delay``), for the fleet's benchmark and tests;
- ``FakeRouter``: a router in front of Ollama (Olla-like) that serves chats but answers 501
  to pull, show and delete;
- ``silent_host()``: an address that accepts no connection and refuses none (the SYN is
  dropped), so connecting times out; ``mute_host()``: one that accepts and never answers;
- ``make_host(models, remote)``: a started fake with its own models and fault switches.

Each fake is a real HTTP server on 127.0.0.1 speaking Ollama's NDJSON, driven through the
real ``ollama`` client. The handler subclasses are swapped in on the server object after it
starts, so the base fake's own code stays as it is.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Iterator, Sequence

from tests.fake_ollama import FakeModel, FakeOllama, _Handler


class _LimitedHandler(_Handler):
    def h_tags(self, body):
        if self.fake.list_delay:
            time.sleep(self.fake.list_delay)
        return _Handler.h_tags(self, body)

    def h_chat(self, body):
        if not (body.get("messages") or []):  # a load: no answer slot needed
            return _Handler.h_chat(self, body)
        with self.fake.slots:  # Ollama queues what its parallel slots cannot take
            with self.fake._lock:
                self.fake.answering += 1
                self.fake.most_at_once = max(self.fake.most_at_once, self.fake.answering)
            try:
                return _Handler.h_chat(self, body)
            finally:
                with self.fake._lock:
                    self.fake.answering -= 1


class _RouterHandler(_Handler):
    NOT_IMPLEMENTED = "not implemented: this endpoint is not proxied"

    def _refuse(self, body):
        self._error(501, self.NOT_IMPLEMENTED)

    h_pull = h_show = h_delete = _refuse


class _Swapped(FakeOllama):
    """A fake whose server uses ``handler`` (re-applied after a refuse window)."""

    handler: type = _Handler

    def _set_listening(self, on: bool):
        super()._set_listening(on)
        if self._httpd is not None:
            self._httpd.RequestHandlerClass = self.handler


class LimitedOllama(_Swapped):
    """Answers at most ``parallel`` chats at once; the others wait their turn."""

    handler = _LimitedHandler

    def __init__(self, parallel: int = 1, **kw):
        super().__init__(**kw)
        self.slots = threading.BoundedSemaphore(parallel)
        self.answering = 0
        self.most_at_once = 0
        self.list_delay = 0.0


class FakeRouter(_Swapped):
    """A router in front of Ollama: chats, lists and /api/ps pass; pull, show, delete: 501."""

    handler = _RouterHandler


@contextlib.contextmanager
def silent_host() -> Iterator[str]:
    """An address where connecting times out: a listening socket whose accept queue is full
    (Linux then drops further SYNs) and that never accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (backlog 0 still takes one or two)
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in fillers:
            s.close()
        server.close()


@contextlib.contextmanager
def mute_host() -> Iterator[str]:
    """An address that accepts connections and never answers (a hung server): the kernel
    completes the handshakes, nobody ever reads."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def make_host(models: Sequence[FakeModel] = (), remote: Sequence[FakeModel] = (),
              cls: type = FakeOllama, **kw) -> FakeOllama:
    """A started fake with ``models`` installed and ``remote`` pullable."""
    fake = cls(**kw)
    for m in models:
        fake.add_installed(m)
    for m in remote:
        fake.add_remote(m)
    return fake.start()
