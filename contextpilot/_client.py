"""The one place that talks to Ollama: host resolution, the client factory, error translation,
and streams that another thread can abort.

Why abortable streams: a thread blocked reading a silent socket (a model loading, a stalled
download) cannot be interrupted from Python; shutting the socket down from another thread can.
An httpx trace records each stream's socket as it connects, so that ``Stream.abort()`` ends
the read at once and the server sees the disconnect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
from typing import Any, Callable, Iterator, Optional

import httpx
import ollama
from ollama._client import _parse_host

from .errors import (
    ContextPilotError,
    InvalidRequest,
    ModelNotFound,
    OllamaError,
    OllamaUnavailable,
    PullCancelled,
    PullFailed,
)

log = logging.getLogger("contextpilot")

DEFAULT_HOST = "http://localhost:11434"
# Connecting must fail fast (refused or silently dropped packets); reading has no limit,
# because a 40 GB pull may take an hour: our stall limit watches liveness instead.
CONNECT_TIMEOUT = float(os.environ.get("CONTEXTPILOT_CONNECT_TIMEOUT", "3"))
# Quick calls (list, show, ps, version) that hang mean a stuck server: give up after this.
# Streams and loads have no read limit (a model can take minutes to load).
READ_TIMEOUT = float(os.environ.get("CONTEXTPILOT_READ_TIMEOUT", "30"))

_clients: dict[tuple[str, bool], ollama.Client] = {}
_clients_lock = threading.Lock()
_capture = threading.local()


def resolve_host(host: Optional[str] = None) -> str:
    """argument > OLLAMA_HOST > http://localhost:11434, normalised like the ollama client.

    >>> resolve_host("127.0.0.1:9999")
    'http://127.0.0.1:9999'
    """
    raw = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
    return _parse_host(raw)


def get_client(host: Optional[str] = None, *, streaming: bool = False) -> ollama.Client:
    """One ``ollama.Client`` per host (and kind), shared by all threads.

    The streaming kind keeps no idle connections: each stream opens its own, so that its
    socket is known from the moment it connects (see ``Stream``) and can be shut down even
    before Ollama sends a header (a model still loading). It has no read limit; the other
    kind gives up after READ_TIMEOUT seconds of silence.
    """
    url = resolve_host(host)
    with _clients_lock:
        client = _clients.get((url, streaming))
        if client is None:
            extra: dict[str, Any] = {}
            if streaming:
                extra = dict(limits=httpx.Limits(max_keepalive_connections=0),
                             event_hooks={"request": [_trace_stream]})
            read = None if streaming else READ_TIMEOUT
            client = ollama.Client(
                host=url, timeout=httpx.Timeout(read, connect=CONNECT_TIMEOUT), **extra)
            _clients[(url, streaming)] = client
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

    def __init__(self, call: Callable[[], Iterator[Any]]) -> None:
        self._call = call
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self.aborted: Optional[str] = None

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

    def __iter__(self) -> Iterator[Any]:
        if self.aborted:
            return
        _capture.stream = self
        try:
            iterator = self._call()
            first = next(iterator, _END)
        finally:
            _capture.stream = None
        if first is _END:
            return
        yield first
        # After abort() the socket is shut down, so the next read fails even on a server
        # that keeps talking; only lines already buffered are still parsed.
        yield from iterator


_END = object()


def _shutdown(sock: Optional[socket.socket]) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------------------------------------
# Error translation: every ollama/httpx error becomes one of ours, here and nowhere else.

_TRANSPORT_LOST = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                   ConnectionAbortedError)
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, ConnectionError,
                httpx.TransportError)
# An absolute path where Go puts one: after the start, a space or a quote (so neither a URL's
# "//" nor "user/model" matches), up to the ": " that ends it in "op path: reason", a quote,
# ", " or the end. Spaces inside the path ("/Users/John Smith/...") are part of it.
_PATH = re.compile(r"""(?:(?<=^)|(?<=[\s"'(]))(?:[A-Za-z]:\\|/)(?!/)[^"'\n]*?(?=: |["']|, |$)""")


def redact(text: str) -> str:
    """Hide the server's filesystem paths in an error text.

    >>> redact("write /root/.ollama/models/blobs/sha256-ab-partial: no space left on device")
    'write <path>: no space left on device'
    >>> redact("open /Users/John Smith/.ollama/id: permission denied")
    'open <path>: permission denied'
    >>> redact('"user/model:tag" does not support vision')
    '"user/model:tag" does not support vision'
    >>> redact("requires a newer version of Ollama: https://ollama.com/download")
    'requires a newer version of Ollama: https://ollama.com/download'
    >>> redact(r"write C:\\Users\\me\\.ollama\\blob: There is not enough space on the disk.")
    'write <path>: There is not enough space on the disk.'
    """
    return _PATH.sub("<path>", text)


def status_error(status: str, model: str) -> Exception:
    """A pull line whose status is "error: ..." (the newer registry client's way)."""
    reason = redact(status.split(":", 1)[1].strip() if ":" in status else status)
    if "not found" in reason or "file does not exist" in reason:
        return ModelNotFound(model)
    return PullFailed(model, reason)


def _reason(exc: ollama.ResponseError) -> str:
    return redact(str(exc.error).strip()) or f"HTTP {exc.status_code}"


@contextlib.contextmanager
def translating(host: str, *, model: Optional[str] = None, during: Optional[str] = None):
    """Map ollama/httpx errors to ours for a non-pull call."""
    try:
        yield
    except ollama.ResponseError as exc:
        if exc.status_code == 404 and model:
            raise ModelNotFound(model, installed_only=True) from exc
        raise OllamaError(_reason(exc), exc.status_code, model) from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
        raise OllamaError(f"Ollama at {host} did not answer within {READ_TIMEOUT:g} s; it may be "
                          f"busy (loading a model). Try again in a moment") from exc
    except _TRANSPORT_LOST as exc:
        raise OllamaUnavailable(host, during=during or "request") from exc
    except _UNREACHABLE as exc:
        raise OllamaUnavailable(host) from exc
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        raise OllamaError(f"unexpected answer from Ollama ({type(exc).__name__})") from exc


def pull_error(exc: BaseException, host: str, model: str, stream: Stream) -> Exception:
    """The exception a pull ends with, given what went wrong."""
    if stream.aborted == "cancelled":
        return PullCancelled(model)
    if stream.aborted:
        return PullFailed(model, stream.aborted)
    if isinstance(exc, ContextPilotError):  # already ours: keep its words
        return exc
    if isinstance(exc, ollama.ResponseError):
        reason = _reason(exc)
        if "file does not exist" in reason or exc.status_code == 404:
            return ModelNotFound(model)
        if exc.status_code in (400,) and "invalid" in reason:
            return OllamaError(reason, exc.status_code, model)
        return PullFailed(model, reason)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError)):
        return OllamaUnavailable(host)
    if isinstance(exc, ConnectionError) and "Failed to connect" in str(exc):
        return OllamaUnavailable(host)
    if isinstance(exc, (*_TRANSPORT_LOST, ConnectionError, httpx.TimeoutException)):
        return PullFailed(model, "connection lost: Ollama closed the stream")
    if isinstance(exc, httpx.TransportError):
        return OllamaUnavailable(host)
    if isinstance(exc, json.JSONDecodeError):
        return PullFailed(model, "Ollama sent a malformed progress line")
    return PullFailed(model, f"{type(exc).__name__}: {exc}")


def chat_error(exc: BaseException, host: str, model: str) -> Exception:
    """The exception a chat stream ends with."""
    if isinstance(exc, ContextPilotError):
        return exc
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return ModelNotFound(model, installed_only=True)
        return OllamaError(_reason(exc), exc.status_code, model)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return OllamaUnavailable(host)
    if isinstance(exc, ConnectionError) and "Failed to connect" in str(exc):
        return OllamaUnavailable(host)
    if isinstance(exc, (*_TRANSPORT_LOST, ConnectionError, httpx.TimeoutException)):
        return OllamaUnavailable(host, during="answer")
    if isinstance(exc, httpx.TransportError):
        return OllamaUnavailable(host)
    if isinstance(exc, json.JSONDecodeError):
        return OllamaError("Ollama sent a malformed line", None, model)
    if isinstance(exc, (ValueError, TypeError)):  # the client refused our request itself
        return InvalidRequest(f"The message could not be sent: {exc}")
    return OllamaError(f"{type(exc).__name__}: {exc}", None, model)
