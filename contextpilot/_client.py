"""The talker: the one place that talks to Ollama — host resolution, the client factory,
quick calls, and streams that another thread can abort. Every error it meets goes through the
one error table (``_errortable.map_error``).

Why abortable streams: a thread blocked reading a silent socket (a model loading, a stalled
download) cannot be interrupted from Python; shutting the socket down from another thread can.
An httpx trace records each stream's socket as it connects, so that ``Stream.abort()`` ends
the read at once and the server sees the disconnect.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import httpx
import ollama
from ollama._client import _parse_host

from . import netaddr, settings
from ._errortable import Context, keep_error_body, map_error, redact
from .errors import InvalidRequest
from .names import ModelName

log = logging.getLogger("contextpilot")

DEFAULT_HOST = settings.DEFAULT_OLLAMA_HOST
# Connecting must fail fast (refused or silently dropped packets): CONTEXTPILOT_CONNECT_TIMEOUT.
# Reading has no limit, because a 40 GB pull may take an hour: our stall limit watches
# liveness instead. Quick calls (list, show, ps, version) that hang mean a stuck server:
# they give up after CONTEXTPILOT_READ_TIMEOUT. Streams and loads have no read limit (a
# model can take minutes to load). Both are read when a client is made (see settings).

BUSY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
"Seconds to wait before each retry of a 503 busy answer (nothing received yet): 3 retries."

_clients: dict[tuple[str, bool, float, float], ollama.Client] = {}
_clients_lock = threading.Lock()
_capture = threading.local()  # the stream whose request is being sent (see _trace_stream)
T = TypeVar("T")


def resolve_host(host: Optional[str] = None) -> str:
    """argument > OLLAMA_HOST > http://localhost:11434, normalised like the ollama client.

    >>> resolve_host("127.0.0.1:9999"), resolve_host("::1")
    ('http://127.0.0.1:9999', 'http://[::1]:11434')
    """
    raw = (host or "").strip() or settings.text("OLLAMA_HOST") or DEFAULT_HOST
    if raw.count(":") > 1 and "[" not in raw and "://" not in raw and netaddr.ip_of(raw):
        raw = f"[{raw}]"  # a bare IPv6 address, as `ollama serve` reads OLLAMA_HOST=::1
    try:
        return _parse_host(raw)
    except ValueError as exc:  # "http://[::1" (urllib: Invalid IPv6 URL), a bad port
        raise InvalidRequest(
            f"{raw[:200]!r} is not an Ollama address ({exc}). Use host:port or "
            f"http://host:port, e.g. http://localhost:11434 (check OLLAMA_HOST).") from exc


def get_client(host: Optional[str] = None, *, streaming: bool = False) -> ollama.Client:
    """One ``ollama.Client`` per host (and kind), shared by all threads.

    The streaming kind keeps no idle connections: each stream opens its own, so that its
    socket is known from the moment it connects (see ``Stream``) and can be shut down even
    before Ollama sends a header (a model still loading). It has no read limit; the other
    kind gives up after CONTEXTPILOT_READ_TIMEOUT seconds of silence.
    """
    url = resolve_host(host)
    connect = settings.seconds("CONTEXTPILOT_CONNECT_TIMEOUT")
    read_limit = settings.seconds("CONTEXTPILOT_READ_TIMEOUT")
    with _clients_lock:
        client = _clients.get((url, streaming, connect, read_limit))
        if client is None:
            hooks: dict[str, list] = {"response": [keep_error_body]}
            extra: dict[str, Any] = {"event_hooks": hooks}
            if streaming:
                hooks["request"] = [_trace_stream]
                extra["limits"] = httpx.Limits(max_keepalive_connections=0)
            read = None if streaming else read_limit
            client = ollama.Client(
                host=url, timeout=httpx.Timeout(read, connect=connect), **extra)
            _clients[(url, streaming, connect, read_limit)] = client
        return client


def _trace_stream(request: httpx.Request) -> None:
    stream = getattr(_capture, "stream", None)
    if stream is not None:
        request.extensions["trace"] = stream._trace


class Stream:
    """A streaming call whose socket can be shut down from any thread.

    Iterate it in one thread; call ``abort(reason)`` from another to end the read at once.
    After an abort the iteration raises, and ``aborted`` says why. ``call`` must use a client
    from ``get_client(host, streaming=True)``.
    """

    def __init__(self, call: Callable[[], Iterator[Any]],
                 delays: Optional[Sequence[float]] = None) -> None:
        self._call = call
        self._delays = delays
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._aborted_event = threading.Event()
        self.aborted: Optional[str] = None
        self.busy_retries = 0
        "How many 503 busy answers were retried before the stream started."

    def _trace(self, event: str, info: dict) -> None:
        # TLS wraps the TCP socket (the plain one is detached): take the wrapped one then.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete") and (
                info.get("return_value") is not None):
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                self._sock = sock
                if self.aborted:
                    _shutdown(sock)

    def abort(self, reason: str) -> None:
        with self._lock:
            if self.aborted is None:
                self.aborted = reason
            _shutdown(self._sock)
        self._aborted_event.set()  # also ends a back-off wait at once

    def __iter__(self) -> Iterator[Any]:
        if self.aborted:
            return
        iterator, first = self._start()
        if first is _END:
            return
        yield first
        # After abort() the socket is shut down, so the next read fails even on a server
        # that keeps talking; only lines already buffered are still parsed.
        yield from iterator


    def _start(self) -> tuple[Iterator[Any], Any]:
        """Open the stream and read its first value. 503 busy (nothing received yet) is
        retried after each of the back-off delays; an abort ends the wait at once."""
        waits = list(BUSY_DELAYS if self._delays is None else self._delays)
        while True:
            _capture.stream = self
            try:
                iterator = self._call()
                return iterator, next(iterator, _END)
            except ollama.ResponseError as exc:
                if exc.status_code != 503 or not waits:
                    raise
                self.busy_retries += 1
                log.info("Ollama is busy (503); retrying in %g s", waits[0])
                if self._aborted_event.wait(waits.pop(0)):
                    raise
            finally:
                _capture.stream = None


_END = object()


def _shutdown(sock: Optional[socket.socket]) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def mapping(ctx: Context) -> Iterator[None]:
    """Map any error raised inside to ours (``raise ... from exc``)."""
    try:
        yield
    except Exception as exc:
        raise map_error(exc, ctx) from exc


def translating(host: str, *, model: Optional[str] = None, during: Optional[str] = None):
    """The table for a quick call, as a context manager (the older name of ``mapping``)."""
    return mapping(Context(host, model=model, during=during))


def call(fn: Callable[[], T], ctx: Context, delays: Optional[Sequence[float]] = None) -> T:
    """Run a quick call: 503 busy is retried after each of ``delays`` (default BUSY_DELAYS),
    every other error is mapped at once."""
    waits = list(BUSY_DELAYS if delays is None else delays)
    with mapping(ctx):
        while True:
            try:
                return fn()
            except ollama.ResponseError as exc:
                if exc.status_code != 503 or not waits:
                    raise
                log.info("Ollama is busy (503); retrying in %g s", waits[0])
                time.sleep(waits.pop(0))


def installed_list(url: str) -> list[tuple[Any, dict]]:
    """/api/tags as (the client's typed entry, the raw entry) pairs: ollama-python 0.6.3
    drops remote_model, remote_host, capabilities and details.context_length, which
    today's server sends (api.ListModelResponse), so the raw body is read too."""
    ctx = Context(url, during="listing")
    raw = call(lambda: get_client(url)._request_raw("GET", "/api/tags").json(), ctx)
    rows = [r for r in (raw.get("models") if isinstance(raw, dict) else None) or []
            if isinstance(r, dict)]
    with mapping(ctx):
        typed = ollama.ListResponse.model_validate({"models": rows}).models
    return list(zip(typed, rows))


def status_error(status: str, name: ModelName) -> Exception:
    """A pull line whose status is "error: ..." (the newer registry client's way)."""
    reason = status.split(":", 1)[1].strip() if ":" in status else status
    return map_error(ollama.ResponseError(reason), _context("", "pull", name))


def pull_error(exc: BaseException, host: str, name: ModelName, stream: "Stream") -> Exception:
    """The exception a pull ends with, given what went wrong."""
    return map_error(exc, _context(host, "pull", name, stream=stream))


def chat_error(exc: BaseException, host: str, name: ModelName,
               stream: Optional["Stream"] = None) -> Exception:
    """The exception a chat stream ends with."""
    return map_error(exc, _context(host, "chat", name, "answer", stream))


def model_context(host: str, name: ModelName, op: str = "call",
                  during: Optional[str] = None) -> Context:
    """The context of a call about one model (show, delete, load...)."""
    return _context(host, op, name, during)


def _context(host: str, op: str, name: ModelName, during: Optional[str] = None,
             stream: Optional["Stream"] = None) -> Context:
    return Context(host, op, name.display, during, stream, cloud=name.is_cloud)


__all__ = ["BUSY_DELAYS", "Context", "DEFAULT_HOST", "Stream", "call", "chat_error",
           "get_client", "installed_list", "map_error", "mapping", "model_context",
           "pull_error", "redact", "resolve_host", "status_error", "translating"]
